/* rta.js: page views (SPA navigation too), rta.track(name, props), UTM capture, a session id, batching.
   <script src="https://your-rta/rta.js" data-key="WRITE_KEY" defer></script>
   data-session-minutes="30": a visit ends after this long without an event (the stream's session gap). */
(function (w, d) {
  "use strict";
  var script = d.currentScript || d.querySelector("script[data-key]");
  var key = script && script.getAttribute("data-key");
  var host = (script && script.getAttribute("data-host")) || (script ? new URL(script.src).origin : "");
  var queue = [], timer = null, lastPath = null;
  var store = function (s, k, v) { try { if (v === undefined) return s.getItem(k); s.setItem(k, v); } catch (e) {} return v; };
  var uuid = function () {
    return w.crypto && w.crypto.randomUUID ? w.crypto.randomUUID()
      : "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
          var r = Math.random() * 16 | 0; return (c === "x" ? r : (r & 3 | 8)).toString(16); });
  };
  var anonymousId = store(w.localStorage, "rta_aid") || store(w.localStorage, "rta_aid", uuid());
  var userId = store(w.localStorage, "rta_uid");
  var gapMs = 60000 * (Number(script && script.getAttribute("data-session-minutes")) || 30);
  function sessionId() {  // context.sessionId, kept across tabs and reloads; a new one after gapMs of quiet
    var now = Date.now(), kept = (store(w.localStorage, "rta_sid") || "").split(".");
    var id = kept.length === 2 && now - Number(kept[1]) < gapMs ? kept[0] : uuid();
    store(w.localStorage, "rta_sid", id + "." + now);
    return id;
  }
  function campaign() {
    var q = new URLSearchParams(w.location.search), found = {}, any = false;
    ["source", "medium", "campaign", "term", "content"].forEach(function (k) {
      var v = q.get("utm_" + k); if (v) { found[k === "campaign" ? "name" : k] = v; any = true; }
    });
    if (any) store(w.sessionStorage, "rta_utm", JSON.stringify(found));
    var kept = store(w.sessionStorage, "rta_utm");
    return kept ? JSON.parse(kept) : undefined;
  }
  function context() {
    return {
      library: { name: "rta.js", version: "1" }, userAgent: navigator.userAgent, locale: navigator.language,
      page: { path: w.location.pathname, referrer: d.referrer, search: w.location.search, title: d.title, url: w.location.href },
      campaign: campaign()
    };
  }
  function enqueue(message) {
    message.messageId = uuid();
    message.timestamp = new Date().toISOString();
    message.anonymousId = anonymousId;
    if (userId) message.userId = userId;
    message.context = context();
    message.context.sessionId = sessionId();
    queue.push(message);
    if (queue.length >= 20) flush(false); else if (!timer) timer = setTimeout(function () { flush(false); }, 2000);
  }
  function flush(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!queue.length || !key) return;
    var body = JSON.stringify({ batch: queue.splice(0, queue.length), sentAt: new Date().toISOString() });
    var url = host + "/v1/batch?writeKey=" + encodeURIComponent(key);
    if (leaving && navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    fetch(url, { method: "POST", body: body, headers: { "Content-Type": "text/plain" }, keepalive: true }).catch(function () {});
  }
  function page() {
    if (w.location.pathname + w.location.search === lastPath) return;
    lastPath = w.location.pathname + w.location.search;
    enqueue({ type: "page", name: d.title, properties: { path: w.location.pathname, url: w.location.href, title: d.title } });
  }
  ["pushState", "replaceState"].forEach(function (name) {
    var original = history[name];
    history[name] = function () { var result = original.apply(this, arguments); setTimeout(page, 0); return result; };
  });
  w.addEventListener("popstate", page);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") flush(true); });
  w.addEventListener("pagehide", function () { flush(true); });
  w.rta = {
    track: function (name, properties) { enqueue({ type: "track", event: String(name), properties: properties || {} }); },
    page: function () { lastPath = null; page(); },
    identify: function (id, traits) { userId = store(w.localStorage, "rta_uid", String(id)); enqueue({ type: "identify", userId: userId, traits: traits || {} }); },
    flush: function () { flush(false); }
  };
  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", page); else page();
})(window, document);
