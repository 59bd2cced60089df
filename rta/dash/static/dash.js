// rta shared dashboard: draws the blocks of /d/NAME/data, refreshes them, drills down on click.
// Served by rta itself with Vega (no CDN). Filters live in the URL so a view can be shared:
// picking values or clicking a bar or a row adds f.<dim>=value; several values of one dimension match any.
// Every change loads at once: a newer load supersedes one still in flight (whose answer is never
// drawn), so a click made while the page loads or draws is never dropped.
(function () {
  "use strict";
  var root = document.getElementById("rta");
  var name = root.dataset.name, every = Number(root.dataset.refresh) * 1000;
  var header = document.getElementById("rta-header"), tiles = document.getElementById("rta-tiles"), grid = document.getElementById("rta-grid");
  var drawn = {}; // key -> JSON of what is drawn (charts and HTML)
  var views = {}; // key -> the Vega view drawn there (finalized when replaced: its listeners and timers go too)
  var renders = 0, latest = 0, inflight = null; // latest: the number of the newest load; inflight: its fetch

  function query() { return new URLSearchParams(location.search); }

  function go(params) {
    history.pushState(null, "", location.pathname + "?" + params.toString());
    load();
  }

  function drill(dim, value) {
    var p = query();
    if (p.getAll("f." + dim).join("\n") === value) return; // already narrowed to it
    p.delete(dim); // the plain spelling (?country=DE) is the same filter
    p.set("f." + dim, value);
    go(p);
  }

  function clear(dim) {
    var p = query();
    var filters = Object.keys(shownFilters);
    Array.from(p.keys()).forEach(function (k) {
      var d = k.indexOf("f.") === 0 ? k.slice(2) : filters.indexOf(k) >= 0 ? k : null;
      if (d !== null && (dim === "*" || d === dim)) p.delete(k);
    });
    go(p);
  }

  function section(block) {
    var id = "block-" + block.key, el = document.getElementById(id);
    if (!el) {
      el = document.createElement("section");
      el.id = id;
      (block.kpi ? tiles : grid).appendChild(el);
    }
    el.className = block.kpi ? "kpis" : "card" + (block.wide ? " wide" : "");
    return el;
  }

  function drawHtml(el, block) {
    var body = (block.kpi ? "" : "<h2>" + escapeHtml(block.title) + "</h2>") + block.html;
    if (drawn[block.key] === body) return Promise.resolve();
    drawn[block.key] = body;
    el.innerHTML = body;
    el.querySelectorAll("tr[data-value]").forEach(function (tr) {
      tr.addEventListener("click", function () { drill(tr.dataset.dim, tr.dataset.value); });
    });
    return Promise.resolve();
  }

  function drawChart(el, block, load) {
    var json = JSON.stringify(block.spec);
    if (drawn[block.key] === json) return Promise.resolve();
    // Draw off-screen, then swap: no blank frame while the new chart renders.
    var next = document.createElement("div");
    next.className = "chart";
    return vegaEmbed(next, block.spec, { renderer: "svg", actions: false }).then(function (result) {
      if (load !== latest) { result.finalize(); return; } // a newer load is drawing: this answer is out of date
      if (block.drill) {
        result.view.addEventListener("click", function (_, item) {
          if (item && item.datum && item.datum[block.drill] !== undefined) drill(block.drill, String(item.datum[block.drill]));
        });
      }
      if (views[block.key]) views[block.key].finalize();
      views[block.key] = result.view;
      el.innerHTML = "";
      el.appendChild(next);
      drawn[block.key] = json;
    });
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; });
  }

  var shownFilters = {};

  function render(data, load) {
    shownFilters = data.view.filters || {};
    // The address bar says the view in its one spelling (country=DE becomes f.country=DE), keeping the token.
    var p = query();
    var keep = ["token", "key"].filter(function (k) { return p.get(k); }).map(function (k) { return k + "=" + encodeURIComponent(p.get(k)); });
    var wanted = keep.concat(data.view.query ? [data.view.query] : []).join("&");
    if (location.search.slice(1) !== wanted) history.replaceState(null, "", location.pathname + "?" + wanted);
    document.body.dataset.view = data.view.query;
    header.innerHTML = data.header;
    header.querySelectorAll("[data-clear]").forEach(function (a) {
      a.addEventListener("click", function (ev) { ev.preventDefault(); clear(a.dataset.clear); });
    });
    var range = document.getElementById("rta-range"), grain = document.getElementById("rta-grain");
    range.value = data.view.last || "custom";
    grain.value = data.view.grain;
    document.getElementById("rta-by").value = data.view.by;
    document.querySelectorAll("select.rta-filter").forEach(function (picker) {
      var chosen = (data.view.filters || {})[picker.dataset.dim] || [];
      var offered = ((data.choices || {})[picker.dataset.dim] || []).filter(function (v) { return chosen.indexOf(v) < 0; });
      var options = '<option value="">add…</option>' + offered.map(function (v) {
        return '<option value="' + escapeHtml(v) + '">' + escapeHtml(v) + "</option>";
      }).join("");
      if (picker.dataset.drawn !== options) {
        picker.innerHTML = options;
        picker.dataset.drawn = options;
      }
      picker.value = "";
    });
    var shown = {};
    var work = data.blocks.map(function (block) {
      shown["block-" + block.key] = true;
      var el = section(block);
      return block.spec ? drawChart(el, block, load) : drawHtml(el, block);
    });
    Array.from(document.querySelectorAll("#rta-tiles > section, #rta-grid > section")).forEach(function (el) {
      if (shown[el.id]) return;
      var key = el.id.slice("block-".length);
      if (views[key]) { views[key].finalize(); delete views[key]; }
      delete drawn[key];
      el.remove();
    });
    return Promise.all(work).then(function () {
      if (load !== latest) return;
      renders += 1;
      document.body.dataset.renders = String(renders);
    });
  }

  function load() {
    var mine = ++latest;
    if (inflight) inflight.abort(); // superseded: its answer would show the view before this change
    var aborter = typeof AbortController === "function" ? new AbortController() : null;
    inflight = aborter;
    var url = "/d/" + encodeURIComponent(name) + "/data?" + query().toString();
    return fetch(url, { cache: "no-store", signal: aborter ? aborter.signal : undefined })
      .then(function (response) {
        return response.json().then(function (body) {
          if (mine !== latest) return;
          if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
          return render(body, mine);
        });
      })
      .then(function () {
        if (mine === latest) { document.getElementById("rta-error").textContent = ""; delete document.body.dataset.error; }
      })
      .catch(function (err) {
        if (mine !== latest) return; // aborted or superseded
        document.getElementById("rta-error").textContent = String(err.message || err);
        document.body.dataset.error = String(err.message || err);
      })
      .then(function () { if (mine === latest) inflight = null; });
  }

  document.getElementById("rta-range").addEventListener("change", function (ev) {
    var p = query();
    p.delete("start"); p.delete("end");
    p.set("last", ev.target.value);
    go(p);
  });
  document.getElementById("rta-grain").addEventListener("change", function (ev) {
    var p = query();
    p.set("grain", ev.target.value);
    go(p);
  });
  document.getElementById("rta-by").addEventListener("change", function (ev) {
    var p = query();
    if (ev.target.value) p.set("by", ev.target.value); else p.delete("by");
    go(p);
  });
  document.querySelectorAll("select.rta-filter").forEach(function (picker) {
    picker.addEventListener("change", function (ev) {
      var p = query(), key = "f." + picker.dataset.dim;
      if (ev.target.value && p.getAll(key).indexOf(ev.target.value) < 0) p.append(key, ev.target.value);
      go(p);
    });
  });
  window.addEventListener("popstate", load);
  load();
  setInterval(function () { if (!document.hidden && !inflight) load(); }, every); // a change in flight is newer already
})();
