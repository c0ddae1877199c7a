"The Voila dashboard in a headless browser: served as `make dashboard` serves it, offline, with a fast model."
import json, os, re, time, urllib.error, urllib.request

import pandas as pd

import pytest
from lstm_forecast.config import DEFAULT_NOTE
from lstm_forecast.report import build_report
from lstm_forecast.store import read_summary, report_files

from lstm_forecast.testing import ARTIFACTS, CACHE_VAR, CHROMIUM, CHROMIUM_ARGS, OFFLINE, ROOT, free_port, import_stock, make_dashboard_args, start_server
from lstm_forecast.testing import FAST_SERIAL as FAST
OTHER = "MSFT"  # a ticker whose report ran another model than the page's (a smaller LSTM)
OTHER_MODEL = {**FAST, "model.hidden": 4}
LONG = 180_000  # ms: a kernel start and the notebook's imports take 10-20 s on a busy 2-core machine


def status(url: str) -> int:
    "The HTTP status of GET `url` after redirects."
    try:
        with urllib.request.urlopen(url, timeout=60) as r: return r.status
    except urllib.error.HTTPError as e: return e.code


@pytest.fixture(scope="module")
def reports(module_cache, tmp_path_factory):
    "A reports directory holding a fast report of the whole ^GSPC sample (the prices the dashboard loads), folds a year apart."
    out = tmp_path_factory.mktemp("reports")
    build_report("^GSPC", out, overrides={**FAST, "walk_forward.test": 252, "walk_forward.step": 252}, progress=False, benchmark="none")
    assert report_files("^GSPC", out).run.exists() and read_summary("^GSPC", out).model_key
    # ... and a report of OTHER (its last 500 days, one fold) by another model: the page must not show its record as its own
    import_stock(OTHER, 500, tmp_path_factory.mktemp("csv"))
    build_report(OTHER, out, overrides={**OTHER_MODEL, "walk_forward.test": 252, "walk_forward.step": 252}, progress=False, benchmark="none")
    assert read_summary(OTHER, out).model_key != read_summary("^GSPC", out).model_key
    return out


@pytest.fixture(scope="module")
def server(reports, tmp_path_factory):
    "The dashboard served by voila on a free port; yields its URL and stops it afterwards."
    port, log, cache = free_port(), tmp_path_factory.mktemp("voila") / "voila.log", tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:  # OTHER's prices in the page's own cache: it loads them offline
        mp.setenv(CACHE_VAR, str(cache))
        import_stock(OTHER, 500, tmp_path_factory.mktemp("csv"))
    env = {**os.environ, **OFFLINE, "LSTM_FORECAST_CACHE": str(cache),
           "LSTM_FORECAST_REPORTS": str(reports), "LSTM_FORECAST_OVERRIDES": json.dumps(FAST)}
    url = f"http://127.0.0.1:{port}/"
    try:
        with start_server(make_dashboard_args(port), url + "voila/files/ping.png", env, log, timeout=60, cwd=ROOT):
            yield url  # ping.png answers 404 without starting a kernel
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard_voila.log").write_text(log.read_text())


def test_only_the_dashboard_and_reports_are_served(server):
    for path in ["tree", "voila/tree", "voila/render/nbs/dashboard.ipynb", "api/contents", "api/kernels", "api/sessions",
                 "voila/files/nbs/dashboard.ipynb", "voila/files/settings.ini", "voila/files/reports/x.json",
                 "voila/files/reports/../settings.ini"]:
        assert status(server + path) in (403, 404), path


def plots(page) -> list[list[str]]:
    "The trace types of each plotly chart on the page."
    return page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(d => (d.data || []).map(t => t.type))")


# The close trace's first and last day (YYYY-MM-DD; the x are ms since 1970, maybe base64) of the forecast chart (the plotly chart without a candlestick) and
# the candlestick's first day; null for a chart not drawn.
SPANS = """() => {
  const xs = x => x && x.bdata ? new Float64Array(Uint8Array.from(atob(x.bdata), c => c.charCodeAt(0)).buffer) : x;  // plotly's base64 'f8'
  const day = x => new Date(x).toISOString().slice(0, 10);
  const charts = [...document.querySelectorAll('.js-plotly-plot')].map(d => d.data || []).filter(ts => ts.length);
  const fc = charts.find(ts => !ts.some(t => t.type === 'candlestick')), mk = charts.find(ts => ts.some(t => t.type === 'candlestick'));
  const close = fc && xs(fc[0].x), candles = mk && xs(mk[0].x);
  return {forecast: fc ? [day(close[0]), day(close[close.length - 1])] : null, market: mk ? day(candles[0]) : null};
}"""


def days(span) -> int: return (pd.Timestamp(span[1]) - pd.Timestamp(span[0])).days


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard_{name}.png"), full_page=True)


def test_dashboard_in_a_browser(server, reports):
    from playwright.sync_api import sync_playwright, expect
    blocked, requests, sockets, t0 = [], [], [], time.perf_counter()
    origin = server.rstrip("/")  # http://127.0.0.1:<port>
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(width=1400, height=2600))
            local = re.compile(r"^https?://(localhost|127\.0\.0\.1)(:\d+)?/")
            def route(r):
                if local.match(r.request.url): r.continue_()
                else: blocked.append(r.request.url); r.abort()
            page.route("**/*", route)
            page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))  # every request, before any routing
            page.on("websocket", lambda ws: sockets.append(ws.url))
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(LONG)
            page.goto(server, timeout=LONG)

            # the market view: a candlestick with its moving averages and volume, and the source stripped
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(d => (d.data || []).some(t => t.type === 'candlestick'))", timeout=LONG)
            assert ["candlestick", "scatter", "scatter", "bar"] in plots(page)
            expect(page.locator(".lf-card").first).to_contain_text("last close")
            expect(page.get_by_text("AttnLSTM: 2 × LSTM(8)")).to_be_visible()
            expect(page.locator("body")).to_contain_text("Preset custom (anchor-stop with model.seq_len=20, model.hidden=8, model.epochs=2): anchored at no change, early stopping")  # which model runs
            expect(page.locator("body")).to_contain_text(DEFAULT_NOTE)  # and, plainly, that it does not beat no change
            expect(page.locator("body")).to_contain_text("the model does")  # the report's walk-forward skill summary
            assert "def dashboard_config" not in page.content()
            # the footer names this page's address, its port, not make dashboard's 8866
            expect(page.locator("body")).to_contain_text(f"This page: {server}")
            expect(page.locator(f'a[href="{server}"]')).to_have_count(1)
            expect(page.locator('a[href*=":8866"]')).to_have_count(0)
            shot(page, "1_loaded")

            # a 7-day forecast: chart with path and band, a 7-row table, the band's note
            readout = page.locator(".widget-slider", has_text="Horizon").locator(".widget-readout")
            readout.click(); page.keyboard.press("Control+A"); page.keyboard.type("7"); page.keyboard.press("Enter")
            expect(readout).to_have_text("7")
            t1 = time.perf_counter()
            page.get_by_role("button", name="Generate forecast").click()
            rows = page.locator("table.forecast-table tbody tr")
            expect(rows).to_have_count(7, timeout=LONG)
            forecast_seconds = time.perf_counter() - t1
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].length >= 2")
            chart = [t for t in plots(page) if "candlestick" not in t]
            assert chart and chart[0].count("scatter") == 7, plots(page)  # close, 2 bands x 2 edges, the model's own path, the forecast
            expect(page.locator(".lf-caption")).to_contain_text("80 %/95 % bands from the errors of")
            expect(page.locator(".lf-caption")).to_contain_text(re.compile(r"Path: (the model's record gives its path no weight: "
                                                                           r"the forecast is no change|the path is the model's times)"))
            expect(page.locator("body")).to_contain_text("total return")
            expect(page.locator("body")).to_contain_text("Final model: trained on")
            cells = rows.locator("td").all_inner_texts()  # date, price, daily, cumulative, model's path, weight, 80 % low/high, 95 % low/high
            assert all(re.fullmatch(r"[\d,]+\.\d\d", c) for c in cells[6::10] + cells[9::10]), cells[:10]  # the band's prices
            assert all(re.fullmatch(r"[01]\.\d\d", c) for c in cells[5::10]), cells[:10]  # the weight
            for cell in cells[2::10] + cells[3::10]:
                assert re.fullmatch(r"[+-]\d+\.\d{3}%", cell), cell  # 3 decimals, as the cards: no row of "-0.00%"
            button = page.get_by_role("button", name="Generate forecast").bounding_box()
            status = page.get_by_text(re.compile(r"^7-day forecast from ")).bounding_box()
            assert 0 <= status["x"] - (button["x"] + button["width"]) < 40, (button, status)  # the status beside its button
            shot(page, "2_forecast")

            # the history slider sets the forecast chart's history too (and the market chart's): 365 days, then 60
            before = page.evaluate(SPANS)
            assert 350 <= days(before["forecast"]) <= 366, before
            hist = page.locator(".widget-slider", has_text="History").locator(".widget-readout")
            hist.click(); page.keyboard.press("Control+A"); page.keyboard.type("60"); page.keyboard.press("Enter")
            expect(hist).to_have_text("60")
            page.wait_for_function(f"() => {{ const s = ({SPANS})(); return s.forecast && s.market && s.forecast[0] !== {json.dumps(before['forecast'][0])} && s.market !== {json.dumps(before['market'])}; }}")
            after = page.evaluate(SPANS)
            assert after["forecast"][1] == before["forecast"][1] and 50 <= days(after["forecast"]) <= 60, (before, after)
            assert after["market"] > before["market"], (before, after)
            expect(rows).to_have_count(7)  # the same forecast, redrawn
            shot(page, "2b_history")

            # a bad ticker: its DataError sentence in the page, and the app still works
            box = page.get_by_label("Ticker")
            box.fill("NOSUCH"); box.press("Enter")
            err = page.locator(".lf-msg-error")
            expect(err).to_contain_text("Could not download 'NOSUCH'", timeout=LONG)
            expect(err.locator("code")).to_have_text("lstm-forecast import-csv FILE NOSUCH")  # a command as code, no backticks
            assert "`" not in err.inner_text()
            expect(page.locator("table.forecast-table")).to_have_count(0)
            expect(page.get_by_role("button", name="Generate forecast")).to_be_disabled()
            shot(page, "3_bad_ticker")
            box.fill("^GSPC"); box.press("Enter")
            expect(err).to_have_count(0, timeout=LONG)
            page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(d => (d.data || []).some(t => t.type === 'candlestick'))", timeout=LONG)
            expect(page.get_by_role("button", name="Generate forecast")).to_be_enabled()
            shot(page, "4_reloaded")

            # a ticker whose report ran another model: the sidebar says so and shows none of its numbers as this model's
            box.fill(OTHER); box.press("Enter")
            skill = page.locator(".lf-panel", has_text=re.compile(r"^Walk-forward"))
            expect(skill).to_contain_text("ran another model", timeout=LONG)
            expect(skill).to_contain_text("no walk-forward report of this model")
            expect(skill).to_contain_text("preset custom (anchor-stop with model.seq_len=20, model.hidden=4")  # the report's model, by preset
            expect(skill).to_contain_text(read_summary(OTHER, reports).model_key)
            for number in ("R² vs zero", "Diebold-Mariano", "hit rate", "Sharpe", "the model does"):
                expect(skill).not_to_contain_text(number)
            shot(page, "5_other_model")
            assert not errors, errors
        finally: browser.close()
    (ARTIFACTS / "dashboard_requests.txt").write_text(
        f"{len(requests)} requests of the page served at {server} (websockets: {sockets}):\n" + "\n".join(requests) + "\n")
    outside = [r for r in requests if not r.split(" ", 1)[1].startswith((server, "data:", "blob:"))]
    assert not outside and not blocked, (outside, blocked)  # nothing beyond its own origin: no CDN, no font, no telemetry
    assert sockets and all(u.startswith(origin.replace("http", "ws", 1) + "/") for u in sockets), sockets
    (ARTIFACTS / "dashboard_timing.txt").write_text(
        f"browser session {time.perf_counter() - t0:.1f} s, forecast click to table {forecast_seconds:.1f} s\n"
        f"blocked non-local requests: {blocked}\n")
