"End-to-end checks of the research report: papermill, nbconvert, the CLI and a headless browser; the lessons live in nbs/12_report.ipynb."
import json, os, re, shutil, subprocess, time
from types import SimpleNamespace

import nbformat, pandas as pd, pytest
from lstm_forecast.config import Config
from lstm_forecast.data import DataError, check_history, load_prices
from lstm_forecast.report import ReportError, build_report, report_paths
from conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CLI, OFFLINE

FAST_ARGS = ["--start", "2016-01-01", "--set", "model.epochs=2"]  # 3 years of the sample: 4 folds of 2 epochs
SUMMARY_KEYS = {"ticker", "source", "start", "end", "rows", "data_sha256", "last_data_date", "config", "config_digest", "seed",
                "strategy_sharpe", "buy_hold_sharpe", "strategy_max_drawdown", "hit_rate", "r2_oos", "dm_p", "beat_zero",
                "beat_buy_hold", "generated_at"}


@pytest.fixture(scope="module")
def run(module_cache, tmp_path_factory):
    "`lstm-forecast report ^GSPC NOSUCH` with a fast config, offline, run once: ^GSPC succeeds, NOSUCH fails."
    out = tmp_path_factory.mktemp("reports")
    t0 = time.perf_counter()
    res = subprocess.run([str(CLI), "report", "^GSPC", "NOSUCH", *FAST_ARGS, "--out", str(out)], capture_output=True, text=True,
                         env={**os.environ, **OFFLINE}, timeout=900)
    seconds = time.perf_counter() - t0
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fast_report.txt").write_text(f"wall time {seconds:.1f} s\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
    return SimpleNamespace(out=out, res=res, seconds=seconds, paths=report_paths("^GSPC", out))


def _plotly_figures(nb) -> int:
    "How many plotly figures the executed notebook displays."
    return sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_cli_builds_the_good_ticker_and_reports_the_bad_one(run):
    assert run.res.returncode == 2, run.res.stderr
    errors = [l for l in run.res.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 2 and errors[0].startswith("error: NOSUCH: Could not download 'NOSUCH' from Yahoo Finance"), errors
    assert errors[1] == "error: 1 of 2 reports failed: NOSUCH"
    assert "Traceback" not in run.res.stderr
    assert f"report: {run.paths['html'].resolve()}" in run.res.stdout.splitlines()
    assert not report_paths("NOSUCH", run.out)["html"].exists()


def test_report_has_outputs_no_code_and_the_verdict(run):
    page = run.paths["html"].read_text()
    nb = nbformat.read(run.paths["ipynb"], as_version=4)
    cells = re.findall(r'<div class="(jp-Cell jp-CodeCell[^"]*)"', page)
    assert len(cells) == sum(c.cell_type == "code" for c in nb.cells) and all("jp-mod-noInput" in c for c in cells)
    assert not re.search(r'class="[^"]*\bjp-(InputPrompt|OutputPrompt)\b', page)  # no prompts either
    code = [l.strip() for c in nb.cells if c.cell_type == "code" for l in c.source.splitlines() if len(l.strip()) > 25]
    assert code and not [l for l in code if l in page], "template code leaked into the HTML"
    assert "^GSPC" in page and "Equity curves" in page
    assert re.search(r"Out of sample the model (beat|did not beat|(&#39;|')s errors equal)", page), "the verdict is missing"
    assert len(pd.read_parquet(run.paths["predictions"])) > 0  # the out-of-sample predictions, for the dashboard's band
    s = json.loads(run.paths["json"].read_text())
    assert SUMMARY_KEYS <= set(s), SUMMARY_KEYS - set(s)
    assert (s["ticker"], s["source"], s["seed"], s["config"]["model"]["epochs"]) == ("^GSPC", "sample", 42, 2)


def test_index_lists_the_report(run):
    index = (run.out / "index.html").read_text()
    s = json.loads(run.paths["json"].read_text())
    assert index.count("<tr><td>") == 1 and 'href="%5EGSPC.html"' in index
    assert f"<td>{s['strategy_sharpe']:.2f}</td>" in index and f"<td>{s['dm_p']:.3f}</td>" in index
    assert "out of sample" in index and "after trading costs" in index and index.count("<script") == 1 and "<script src" not in index


def test_report_renders_offline_in_a_browser(run):
    from playwright.sync_api import sync_playwright
    figures = _plotly_figures(nbformat.read(run.paths["ipynb"], as_version=4))
    assert figures > 0
    blocked, errors = [], []
    def route(r):
        url = r.request.url
        if url.startswith("file://") or re.match(r"https?://(localhost|127\.0\.0\.1)[:/]", url): r.continue_()
        else: blocked.append(url); r.abort()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(width=1280, height=900))
            page.route("**/*", route)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(run.paths["html"].resolve().as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}", timeout=30_000)
            drawn = page.locator(".js-plotly-plot").count()
            page.screenshot(path=str(ARTIFACTS / "report_GSPC.png"), full_page=True)
            page.goto((run.out / "index.html").resolve().as_uri(), wait_until="load")
            links = page.locator("a").count()
            page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
        finally: browser.close()
    (ARTIFACTS / "blocked_requests.txt").write_text("\n".join(blocked) + "\n")
    print(f"{drawn} charts drawn; blocked {len(blocked)} non-local request(s): {blocked}")
    assert drawn == figures
    assert not errors, errors
    assert links == 1


def test_failed_report_leaves_the_good_one_untouched(run, cache, offline, tmp_path):
    out = tmp_path / "reports"
    good = report_paths("NOSUCH", out)
    out.mkdir()
    for kind, path in good.items(): shutil.copyfile(run.paths[kind], path)  # a good report of NOSUCH from an earlier run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ReportError) as e: build_report("NOSUCH", out, progress=False)
    msg = str(e.value)
    assert msg.startswith("Could not download 'NOSUCH' from Yahoo Finance") and "nothing is cached" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg and msg.endswith(".")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # byte-identical, and no temporary file left


def test_too_short_history_fails_with_the_data_errors_sentence(module_cache, tmp_path):
    prices = load_prices("^GSPC", start="2018-06-01")
    with pytest.raises(DataError) as expected: check_history(prices, Config(), "^GSPC")
    with pytest.raises(ReportError) as e: build_report("^GSPC", tmp_path, start="2018-06-01", progress=False)
    assert str(e.value) == str(expected.value)
    assert "has 147 daily rows but the config needs at least 598" in str(e.value)
    assert list(tmp_path.iterdir()) == []
