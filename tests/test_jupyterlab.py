"""The notebooks in a real JupyterLab (issue 17): Lab on loopback with no internet, driven from
headless Chromium the way a person uses it.

The dashboard notebook runs top to bottom (Run > Run All Cells); then its widget is used with the
mouse: the range, the grain, a filter, a click on a bar, the breadcrumb, a table row. After each
step the breadcrumb, the KPI tiles, the table and the chart are read back from the page. While its
kernel lives (it holds the project's embedded store and serves it), the other notebooks run in the
same Lab: none may fail, and each asks the first kernel. Nothing the page logs may be an error or a
Vega warning, and nothing may be fetched from outside loopback.

The round trip of each interaction (the input event, until the widget's DOM shows the new view) is
printed (``pytest -s``), never asserted: performance is measured, not tested.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rta.dash.export import CHROMIUM_FLAGS, chromium_path
from tests.conftest import ROOT, require_module, require_service
from tests.ingest_helpers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.services]

WIDGET = ".rta-widget"
RUN_ALL = 900_000  # ms: the dashboard notebook loads 105K demo events into an empty store first
STEP = 120_000  # ms: one interaction, generous on a loaded 2-core machine

# Lab's own reads of the notebook (via the app JupyterLab exposes with expose_app_in_browser).
NOTEBOOK_JS = """name => {
  const panel = [...jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === name);
  if (!panel) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const joined = t => Array.isArray(t) ? t.join('') : (t || '');
  const cells = panel.content.widgets.filter(c => c.model.type === 'code').map(c => {
    const outputs = [];
    for (let i = 0; i < c.model.outputs.length; i++) {
      const o = c.model.outputs.get(i).toJSON();
      outputs.push({type: o.output_type, ename: o.ename || null, evalue: o.evalue || null,
                    text: joined(o.text) + joined(o.data && o.data['text/plain'])});
    }
    const prompt = c.node.querySelector('.jp-InputPrompt');
    const area = c.node.querySelector('.jp-OutputArea');
    return {source: c.model.sharedModel.getSource(), prompt: prompt ? prompt.textContent.trim() : '', outputs,
            shown: area ? area.innerText : ''};
  });
  return {kernel: kernel ? kernel.status : null, active: jupyterapp.shell.currentWidget === panel, cells};
}"""

# What the dashboard widget shows, read from its DOM as a person reads it.
WIDGET_JS = """() => {
  const w = document.querySelector('.rta-widget');
  if (!w) return null;
  const text = e => (e ? e.textContent.trim() : '');
  const selects = Object.fromEntries([...w.querySelectorAll('.widget-dropdown')].map(d =>
    [text(d.querySelector('label')), d.querySelector('select').value]));
  const filters = Object.fromEntries([...w.querySelectorAll('.widget-select-multiple')].map(d =>
    [text(d.querySelector('label')), [...d.querySelector('select').selectedOptions].map(o => o.value)]));
  const badge = w.querySelector('.badge');
  const crumbs = badge ? [...badge.closest('.widget-hbox').querySelectorAll(':scope > .widget-hbox button')].map(text) : [];
  const tiles = Object.fromEntries([...w.querySelectorAll('.tile')].map(t => [t.dataset.metric, text(t.querySelector('.value'))]));
  const tables = [...w.querySelectorAll('.widget-gridbox')].map(g => {
    const n = getComputedStyle(g).gridTemplateColumns.split(' ').length;
    const cells = [...g.children].map(text), rows = [];
    for (let i = 0; i < cells.length; i += n) rows.push(cells.slice(i, i + n));
    return rows;
  });
  const svg = w.querySelector('.vega-embed svg');
  const labels = sel => svg ? [...svg.querySelectorAll(sel)].map(p => p.getAttribute('aria-label')) : [];
  return {
    selects, filters, crumbs, tiles, tables, badge: text(badge),
    errors: [...w.querySelectorAll('.error')].map(text),
    bars: labels('.mark-rect.role-mark path[aria-label]'),
    xaxis: labels('.role-axis[aria-label^="X-axis"]')[0] || '',
    points: svg ? svg.querySelectorAll('.mark-symbol.role-mark path').length : 0,
    drawn: !!svg && !svg.dataset.rtaSeen,
  };
}"""

MARK_CHART_JS = "() => { const s = document.querySelector('.rta-widget .vega-embed svg'); if (s) s.dataset.rtaSeen = '1'; }"


@dataclass
class Lab:
    url: str
    token: str
    root: Path  # the notebooks' copy Lab serves (its root_dir)
    log: Path

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(self.url + path, method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Browser:
    page: Any
    phase: str = "opening JupyterLab"  # what the test is doing, for the messages below
    console: list[tuple[str, str, str]] = field(default_factory=list)  # (phase, type, text) of every message the page logged
    refused: list[str] = field(default_factory=list)  # requests for anything beyond loopback
    rounds: list[tuple[str, float, float]] = field(default_factory=list)  # (interaction, numbers shown s, chart drawn s)


def _settings(home: Path) -> Path:
    """Lab's user settings: no news or update checks (nothing to fetch offline); every cell in the DOM."""
    settings = home / "settings"
    for path, values in {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }.items():
        (settings / path).parent.mkdir(parents=True, exist_ok=True)
        (settings / path).write_text(json.dumps(values))
    return settings


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    for module in ("jupyterlab", "ipykernel", "ipywidgets", "playwright.sync_api"):
        require_module(module)
    chromium_path() or require_service("chromium")  # before Lab starts: a laptop without it skips
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "notebooks", base / "jupyter"
    root.mkdir()
    for book in (ROOT / "notebooks").glob("*.ipynb"):  # the notebooks only: never the repository's store
        shutil.copy(book, root)
    port, token = free_port(), secrets.token_hex(16)
    # The kernels inherit this: the notebooks open their own project (shop-demo in root), no test store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTA_")}
    for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ):
        env[name] = str(home / sub)
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
        f"--LabApp.user_settings_dir={_settings(home)}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    log = home / "lab.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    served = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                served.api("/api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {served.url} (exit code {process.poll()}):\n{served.tail()}")
                time.sleep(0.5)
        yield served
    finally:
        try:  # the kernels first (the dashboard's holds the store), then Lab itself, by its PID
            for kernel in served.api("/api/kernels"):
                served.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Browser]:
    page_api = require_module("playwright.sync_api")
    executable = chromium_path() or require_service("chromium")
    with page_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            seen = Browser(page)
            page.on("console", lambda message: seen.console.append((seen.phase, message.type, message.text)))
            page.on("pageerror", lambda error: seen.console.append((seen.phase, "pageerror", str(error))))

            def route(r: Any) -> None:
                if r.request.url.startswith((lab.url, "data:", "blob:")):
                    r.continue_()
                else:
                    seen.refused.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(f"{lab.url}/lab?token={lab.token}")
            page.wait_for_selector(".jp-DirListing-item", timeout=120_000)
            yield seen
            print(_round_trips(seen.rounds))
        finally:
            chromium.close()


# --- driving Lab ---------------------------------------------------------------------------------


def notebook(page: Any, name: str) -> dict[str, Any]:
    state = page.evaluate(NOTEBOOK_JS, name)
    assert state is not None, f"{name} is not open in JupyterLab"
    return dict(state)


def open_and_run_all(page: Any, name: str, timeout: float = RUN_ALL) -> dict[str, Any]:
    """Open ``name`` from the file browser (a double click), wait for its kernel, then Run > Run All
    Cells; returns the notebook once no cell is running (Lab stops at the first error)."""
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    page.wait_for_function(
        f"() => {{ const s = ({NOTEBOOK_JS})({json.dumps(name)}); return s && s.active && s.kernel === 'idle'; }}", timeout=120_000
    )
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    done = """s => s && s.cells.every(c => c.prompt !== '[*]:')
                 && (s.cells.every(c => /^\\[\\d+\\]:$/.test(c.prompt)) || s.cells.some(c => c.outputs.some(o => o.type === 'error')))"""
    page.wait_for_function(f"() => ({done})(({NOTEBOOK_JS})({json.dumps(name)}))", timeout=timeout, polling=500)
    return notebook(page, name)


def errors_of(state: dict[str, Any]) -> list[str]:
    """The error outputs (as Lab holds them) and any traceback shown, cell by cell."""
    found = []
    for i, cell in enumerate(state["cells"]):
        found += [f"cell {i}: {o['ename']}: {o['evalue']}" for o in cell["outputs"] if o["type"] == "error"]
        if "Traceback" in cell["shown"] and not any(o["type"] == "error" for o in cell["outputs"]):
            found.append(f"cell {i} shows a traceback: {cell['shown'][:500]}")
    return found


def shown(page: Any) -> dict[str, Any]:
    state = page.evaluate(WIDGET_JS)
    assert state is not None, "the dashboard widget is not on the page"
    return dict(state)


def interact(seen: Browser, name: str, action: Callable[[], None], expect: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Do ``action`` (a click, a choice) and wait until the widget shows what ``expect`` wants and the
    chart is drawn again; records how long the numbers and the chart took."""
    page = seen.page
    page.evaluate(MARK_CHART_JS)
    start = time.monotonic()
    action()
    numbers = drawn = None
    state = shown(page)
    while numbers is None or drawn is None:
        if time.monotonic() - start > STEP / 1000:
            pytest.fail(f"{name}: the widget did not show the new view within {STEP / 1000:.0f} s; it shows {_brief(state)}")
        time.sleep(0.02)
        state = shown(page)
        now = time.monotonic() - start
        if numbers is None and expect(state) and agrees(state):
            numbers = now
        if drawn is None and state["drawn"]:
            drawn = now
    state = shown(page)
    assert expect(state) and agrees(state), f"{name}: the widget moved on from the expected view: {_brief(state)}"
    seen.rounds.append((name, numbers, drawn))
    return state


def choose(page: Any, label: str, option: str) -> Callable[[], None]:
    """Pick ``option`` in the widget's dropdown ``label`` (a native select: its popup is not in the DOM)."""
    return lambda: page.locator(f"{WIDGET} .widget-dropdown:has(label:text-is('{label}')) select").select_option(label=option)


def click(locator: Any) -> Callable[[], None]:
    return lambda: locator.click()


# --- reading the widget ----------------------------------------------------------------------------


def number(text: str) -> float:
    """A number as the widget shows it: $36.7K, 709, 4.2K, 13.2%, $993, 1.2M."""
    match = re.fullmatch(r"\$?(-?[\d,.]+)([KMB]?)%?", text.strip())
    assert match, f"not a number as the widget shows one: {text!r}"
    return float(match[1].replace(",", "")) * {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}[match[2]]


def bars(state: dict[str, Any], dim: str) -> list[dict[str, str]]:
    """The bars of the breakdown by ``dim``, from their labels (``value: 7838.51; country: US; revenue: $7.84K``)."""
    parsed = [dict(part.split(": ", 1) for part in label.split("; ")) for label in state["bars"]]
    return [b for b in parsed if dim in b]


def table(state: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """The first table: header, rows, total row."""
    assert state["tables"], "the widget shows no table"
    header, *rows = state["tables"][0]
    total = rows.pop() if rows and rows[-1][0] == "Total" else []
    return header, rows, total


def agrees(state: dict[str, Any]) -> bool:
    """Whether the table's total row says what the KPI tiles say (both read the same view)."""
    header, _, total = table(state)
    return bool(total) and all(total[header.index(m)] == value for m, value in state["tiles"].items() if m in header)


def near(a: float, b: float, within: float = 0.05) -> bool:
    return abs(a - b) <= within * max(abs(a), abs(b), 1e-9)


def _brief(state: dict[str, Any]) -> str:
    keep = {k: state[k] for k in ("selects", "filters", "crumbs", "tiles", "errors", "xaxis", "points", "drawn")}
    keep["table"] = [*[r[:3] for r in state["tables"][0][:4]], state["tables"][0][-1]] if state["tables"] else []
    return json.dumps(keep)


def _round_trips(rounds: list[tuple[str, float, float]]) -> str:
    if not rounds:
        return "no dashboard interaction was measured"
    lines = ["dashboard interactions in JupyterLab, from the input event until the widget's DOM showed it:"]
    lines += [f"  {name:<44} numbers {numbers:6.2f} s   chart drawn {drawn:6.2f} s" for name, numbers, drawn in rounds]
    for what, values in (("numbers", [r[1] for r in rounds]), ("chart drawn", [r[2] for r in rounds])):
        lines.append(f"  {what}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} interactions")
    return "\n".join(lines)


# --- the tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(lab: Lab, browser: Browser) -> dict[str, Any]:
    """The dashboard notebook, run top to bottom; what its widget shows then."""
    browser.phase = "running dashboard.ipynb"
    state = open_and_run_all(browser.page, "dashboard.ipynb")
    assert errors_of(state) == [], f"the dashboard notebook failed:\n{lab.tail()}"
    page = browser.page
    page.locator(f"{WIDGET} .vega-embed svg").first.scroll_into_view_if_needed(timeout=60_000)
    page.wait_for_function(
        "() => { const w = document.querySelector('.rta-widget'); return w && w.querySelectorAll('.tile').length >= 4"
        " && w.querySelectorAll('.vega-embed svg .mark-rect.role-mark path').length > 0 && w.querySelector('.widget-gridbox'); }",
        timeout=STEP,
    )
    return shown(page)


def test_the_dashboard_notebook_runs_and_draws_its_widget(dashboard: dict[str, Any]) -> None:
    state = dashboard
    assert state["errors"] == [], state["errors"]
    assert state["selects"]["Range"] == "Last 7 days" and state["selects"]["Grain"] == "auto"
    assert state["crumbs"] == [] and all(v == [] for v in state["filters"].values())  # the notebook's board.clear()
    assert set(state["tiles"]) == {"revenue", "purchases", "visitors", "conversion"}
    assert all(number(v) > 0 for v in state["tiles"].values()), state["tiles"]
    assert len(bars(state, "country")) >= 5 and len(bars(state, "device")) >= 2
    header, rows, total = table(state)
    assert header[0] == "campaign" and len(rows) >= 5 and total and total[0] == "Total"
    assert agrees(state), (state["tiles"], total)
    assert state["points"] > 0 and "time (UTC)" in state["xaxis"]


def test_range_grain_filter_and_clicks_change_the_dashboard(dashboard: dict[str, Any], browser: Browser) -> None:
    page, first = browser.page, dashboard
    browser.phase = "using the dashboard"
    week = {k: number(v) for k, v in first["tiles"].items()}

    # 1. Range: the last 24 hours hold less than the last 7 days.
    day = interact(
        browser,
        "range 7d -> 24h",
        choose(page, "Range", "Last 24 hours"),
        lambda s: (
            s["selects"]["Range"] == "Last 24 hours"
            and number(s["tiles"]["revenue"]) < week["revenue"]
            and table(s)[2] != table(first)[2]
            and s["xaxis"] != first["xaxis"]
        ),
    )
    assert day["crumbs"] == [] and number(day["tiles"]["purchases"]) < week["purchases"]

    # 2. Grain: minutes draw many more points; the range's totals stay.
    minutes = interact(
        browser,
        "grain auto -> 1m",
        choose(page, "Grain", "1m"),
        lambda s: s["selects"]["Grain"] == "1m" and s["points"] > 5 * day["points"],
    )
    assert all(near(number(minutes["tiles"][k]), number(day["tiles"][k]), 0.03) for k in week) and minutes["crumbs"] == []

    # 3. and 4. The sequence after which a click on a bar used to be lost (issue 17, item 7).
    week_1m = interact(
        browser,
        "range 24h -> 7d (at 1m)",
        choose(page, "Range", "Last 7 days"),
        lambda s: (
            s["selects"]["Range"] == "Last 7 days"
            and s["points"] > minutes["points"]
            and number(s["tiles"]["revenue"]) > number(day["tiles"]["revenue"])
        ),
    )
    weekly = interact(
        browser,
        "grain 1m -> auto (7d)",
        choose(page, "Grain", "auto"),
        lambda s: s["selects"]["Grain"] == "auto" and s["points"] < week_1m["points"],
    )
    assert weekly["crumbs"] == []

    # 5. A filter: device = mobile, a click on it in the device list.
    mobile_option = page.locator(f"{WIDGET} .widget-select-multiple:has(label:text-is('device')) option[value='mobile']")
    mobile = interact(
        browser,
        "filter device = mobile",
        click(mobile_option),
        lambda s: (
            s["crumbs"] == ["device = mobile ×", "Clear all"]
            and number(s["tiles"]["revenue"]) < number(weekly["tiles"]["revenue"])
            and [b["device"] for b in bars(s, "device")] == ["mobile"]
        ),
    )
    assert mobile["filters"]["device"] == ["mobile"] and table(mobile)[2] != table(weekly)[2]
    assert number(mobile["tiles"]["visitors"]) < number(weekly["tiles"]["visitors"])

    # 6. A click on a bar of the country breakdown (the second one) drills down: its revenue becomes the tile's.
    picked = bars(mobile, "country")[1]
    country, revenue = picked["country"], float(picked["value"])
    bar = page.locator(f"{WIDGET} .vega-embed svg .mark-rect.role-mark path[aria-label*='country: {country};']")
    drilled = interact(
        browser,
        f"click the bar country = {country}",
        click(bar),
        lambda s: (
            s["crumbs"] == ["device = mobile ×", f"country = {country} ×", "Clear all"]
            and near(number(s["tiles"]["revenue"]), revenue)
            and [b["country"] for b in bars(s, "country")] == [country]
        ),
    )
    assert drilled["filters"]["country"] == [country] and drilled["filters"]["device"] == ["mobile"]
    assert near(number(table(drilled)[2][table(drilled)[0].index("revenue")]), revenue)

    # 7. The breadcrumb removes one filter.
    crumb = page.locator(f"{WIDGET} button", has_text="device = mobile ×")
    everywhere = interact(
        browser,
        "breadcrumb: remove device = mobile",
        click(crumb),
        lambda s: s["crumbs"] == [f"country = {country} ×", "Clear all"] and len(bars(s, "device")) > 1,
    )
    assert number(everywhere["tiles"]["revenue"]) > number(drilled["tiles"]["revenue"]) and everywhere["filters"]["device"] == []

    # 8. A click on a table row drills into that campaign.
    campaign = table(everywhere)[1][1][0]
    row = page.locator(f"{WIDGET} .widget-gridbox button", has_text=re.compile(f"^{re.escape(campaign)}$"))
    one = interact(
        browser,
        f"click the table row campaign = {campaign}",
        click(row),
        lambda s: (
            s["crumbs"] == [f"country = {country} ×", f"campaign = {campaign} ×", "Clear all"] and [r[0] for r in table(s)[1]] == [campaign]
        ),
    )
    assert number(one["tiles"]["purchases"]) <= number(everywhere["tiles"]["purchases"])

    # 9. Clear all: back to the whole week.
    cleared = interact(
        browser,
        "breadcrumb: clear all",
        click(page.locator(f"{WIDGET} button", has_text="Clear all")),
        lambda s: s["crumbs"] == [] and len(bars(s, "country")) > 1,
    )
    assert all(near(number(cleared["tiles"][k]), number(weekly["tiles"][k]), 0.03) for k in week), (cleared["tiles"], weekly["tiles"])
    assert cleared["errors"] == [] and all(v == [] for v in cleared["filters"].values())


def _owner(lab: Lab) -> dict[str, Any]:
    """Who published itself as holding the notebooks' project store."""
    owner = json.loads((lab.root / "shop-demo" / ".rta" / "run.json").read_text())
    assert owner["kind"] == "notebook", owner
    assert "ipykernel" in Path(f"/proc/{owner['pid']}/cmdline").read_bytes().decode(errors="replace"), owner
    return dict(owner)


# alerts.ipynb runs too, but its backtests take a minute or two either way: test_notebooks.py runs it.
@pytest.mark.parametrize("name", ["quickstart.ipynb", "custom-queries.ipynb"])
def test_another_notebook_runs_while_the_first_kernel_lives(name: str, lab: Lab, browser: Browser, dashboard: dict[str, Any]) -> None:
    owner = _owner(lab)  # the dashboard's kernel: it opened the store first and serves it
    browser.phase = f"running {name}"
    state = open_and_run_all(browser.page, name)
    assert errors_of(state) == [], f"{name} failed in a second kernel"
    assert all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in state["cells"]), [c["prompt"] for c in state["cells"]]
    connected = next(c for c in state["cells"] if "rta.connect(" in c["source"])
    assert f"asked through notebook (pid {owner['pid']})" in connected["shown"], connected["shown"][:2000]
    assert _owner(lab)["pid"] == owner["pid"]  # the first kernel still holds the store


def test_the_dashboard_still_answers_after_the_other_notebooks_ran(browser: Browser, dashboard: dict[str, Any]) -> None:
    page = browser.page
    browser.phase = "using the dashboard after the other notebooks"
    page.locator(".lm-TabBar-tab", has_text="dashboard.ipynb").first.click()
    page.locator(f"{WIDGET} .vega-embed svg").first.scroll_into_view_if_needed(timeout=60_000)
    before = shown(page)
    country = bars(before, "country")[0]["country"]
    crumbs = (
        [*before["crumbs"][:-1], f"country = {country} ×", "Clear all"] if before["crumbs"] else [f"country = {country} ×", "Clear all"]
    )
    bar = page.locator(f"{WIDGET} .vega-embed svg .mark-rect.role-mark path[aria-label*='country: {country};']")
    after = interact(browser, f"click the bar country = {country} (later)", click(bar), lambda s: s["crumbs"] == crumbs)
    assert [b["country"] for b in bars(after, "country")] == [country]


def test_nothing_logged_is_an_error_or_a_vega_warning_and_nothing_left_loopback(browser: Browser, dashboard: dict[str, Any]) -> None:
    """Runs last: everything the page logged while the notebooks ran and the widget was used."""
    errors = [f"{phase}: {kind}: {text}" for phase, kind, text in browser.console if kind in ("error", "pageerror")]
    vega = [f"{phase}: {text}" for phase, kind, text in browser.console if kind == "warning" and text.startswith("WARN")]
    assert browser.refused == [], f"the page asked for addresses beyond loopback: {browser.refused[:10]}"
    assert errors == [], "the browser console logged errors:\n" + "\n".join(errors[:20])
    counted = "\n".join(f"{vega.count(line)} x {line}" for line in dict.fromkeys(vega))
    assert vega == [], f"Vega warned {len(vega)} times while the notebooks drew charts:\n{counted}"
