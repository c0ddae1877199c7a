"End-to-end checks of the research report: papermill, nbconvert, the CLI, the checks before a kernel, an installed copy and a headless browser; the lessons live in nbs/12_report.ipynb."
import html, json, os, re, shutil, subprocess, sys, sysconfig, time
from pathlib import Path
from types import SimpleNamespace

import nbformat, pytest
from lstm_forecast.config import DEFAULT_NOTE, Config, model_line, with_overrides
from lstm_forecast.data import DataError, check_history, load_prices
from lstm_forecast.report import ReportError, build_report
from lstm_forecast.run import Run
from lstm_forecast.store import read_summary, report_files

from lstm_forecast.testing import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, CLI, OFFLINE, ROOT
FAST = ["--start", "2016-01-01", "--set", "model.epochs=2"]  # 3 years of the sample: 4 folds of 2 epochs
PUBLISHED = ("html", "notebook", "summary", "run", "bands", "returns", "returns_csv")  # the files of a good report (`store.ReportFiles`)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    "One empty price cache for the module, never the user's."
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("cache")
    mp.setenv("LSTM_FORECAST_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def run(cache, tmp_path_factory):
    "`lstm-forecast report ^GSPC NOSUCH` with a fast config, offline, run once: ^GSPC succeeds, NOSUCH fails."
    out = tmp_path_factory.mktemp("reports")
    t0 = time.perf_counter()
    res = subprocess.run([str(CLI), "report", "^GSPC", "NOSUCH", *FAST, "--set", "seed=7", "--out", str(out)], capture_output=True,
                         text=True, env={**os.environ, **OFFLINE}, timeout=900)
    seconds = time.perf_counter() - t0
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "fast_report.txt").write_text(f"wall time {seconds:.1f} s\n--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
    return SimpleNamespace(out=out, res=res, seconds=seconds, files=report_files("^GSPC", out))


def _plotly_figures(nb) -> int:
    "How many plotly figures the executed notebook displays."
    return sum("application/vnd.plotly.v1+json" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_cli_builds_the_good_ticker_and_reports_the_bad_one(run):
    assert run.res.returncode == 2, run.res.stderr
    errors = [l for l in run.res.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 2 and errors[0].startswith("error: NOSUCH: Could not download 'NOSUCH' from Yahoo Finance"), errors
    assert errors[1] == "error: 1 of 2 reports failed: NOSUCH"
    assert "Traceback" not in run.res.stderr
    assert f"report: {run.files.html.resolve()}" in run.res.stdout.splitlines()
    assert not report_files("NOSUCH", run.out).html.exists()


def test_report_holds_its_daily_returns_and_the_benchmarks_as_data(run):
    "`^GSPC.returns.parquet` and `.csv`: the run's position, gross, cost, net and buy-and-hold returns and the benchmark's, by date."
    import pandas as pd
    saved = Run.load(run.out, "^GSPC")
    assert saved.bench is not None and saved.bench.notna().mean() > 0.95  # offline the bundled sample stands in for SPY
    want = saved.backtest.returns.rename_axis("date").assign(benchmark=saved.bench.to_numpy())
    assert list(want.columns) == ["position", "gross", "cost", "net", "buy_hold", "benchmark"]
    pd.testing.assert_frame_equal(pd.read_parquet(run.files.returns), want, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(run.files.returns_csv, index_col="date", parse_dates=True), want, check_exact=True,
                                  check_index_type=False)


def test_report_has_outputs_no_code_and_the_verdict(run):
    page = run.files.html.read_text()
    nb = nbformat.read(run.files.notebook, as_version=4)
    cells = re.findall(r'<div class="(jp-Cell jp-CodeCell[^"]*)"', page)
    assert len(cells) == sum(c.cell_type == "code" for c in nb.cells) and all("jp-mod-noInput" in c for c in cells)
    assert not re.search(r'class="[^"]*\bjp-(InputPrompt|OutputPrompt)\b', page)  # no prompts either
    code = [l.strip() for c in nb.cells if c.cell_type == "code" for l in c.source.splitlines() if len(l.strip()) > 25]
    assert code and not [l for l in code if l in page], "template code leaked into the HTML"
    assert "^GSPC" in page and "Equity curves" in page
    for part in ("Against the benchmark", "alpha (annual)", "information ratio", "Rolling 126-day beta", "Calendar-year returns",
                 "Distribution of daily returns", "VaR 95 %", "CVaR 99 %", "excess kurtosis", "recovered", "break-even",
                 "average holding period (days)", "By market regime", "unfavourable", "The two states in the training windows",
                 "The strategy sat out", "volatility-matched return", "Contents"):
        assert part in page, part
    # offline, the bundled S&P 500 sample stands in for SPY, and the note says so
    assert re.search(r"stands in for (&#x27;|&#39;|')SPY", page), "the benchmark's note is missing"
    assert re.search(r"Out of sample the model (beat|did not beat|(&#39;|')s errors equal)", page), "the verdict is missing"
    assert len(Run.load(run.files.run.parent, "^GSPC").backtest.wf.predictions) > 0  # the saved run, for the dashboard's band
    s = read_summary("^GSPC", run.out)  # a typed record of the current schema, or a ValueError
    assert (s.ticker, s.source, s.config["model"]["epochs"]) == ("^GSPC", "sample", 2)
    assert (s.seed, s.config["seed"]) == (7, 7)  # --set seed=7 is honoured
    assert s.config == with_overrides(Config(), {"model.epochs": 2, "seed": 7}).to_dict()
    assert re.search(r"<td>seed</td>\s*<td>7</td>", page), "the run table shows another seed"


def test_report_names_its_model_and_shows_every_folds_training(run):
    page = html.unescape(run.files.html.read_text())
    line = model_line(with_overrides(Config(), {"model.epochs": 2, "seed": 7}))
    assert line.startswith("custom (anchor-stop with model.epochs=2): anchored at no change, early stopping") and re.search(rf"<td>model</td>\s*<td>{re.escape(line)}</td>", page)
    assert DEFAULT_NOTE in page and "The model does not beat no change." in page  # plainly, near the top
    folds = next(t for t in re.findall(r"<table.*?</table>", page, flags=re.S) if "shrinkage factor" in t)
    for column in ("best epoch", "training loss / mean's", "validation loss / mean's"):
        assert column in folds, column
    assert folds.split("<tbody>")[1].count("<tr>") == 4  # a row per fold


def test_index_lists_the_report(run):
    index = (run.out / "index.html").read_text()
    s = read_summary("^GSPC", run.out)
    assert index.count("<tr><td>") == 1 and 'href="%5EGSPC.html"' in index
    assert f"<td>{s.strategy_sharpe:.2f}</td>" in index and f"<td>{s.dm_p:.3f}</td>" in index
    assert f"<code>{s.config_key}</code>" in index
    assert "out of sample" in index and "after trading costs" in index and index.count("<script") == 1 and "<script src" not in index


def test_pages_share_one_plotly_js_and_stay_light(run):
    "Two tickers in one run: the pages load plotly.js from one plotly.min.js beside them; the executed notebook holds plotly.js once."
    page = run.files.html.read_text()
    assert [p.name for p in run.out.glob("*.js")] == ["plotly.min.js"] and (run.out / "plotly.min.js").stat().st_size > 4_000_000
    assert re.findall(r'<script[^>]*\bsrc="([^"]*)"', page) == ["plotly.min.js"]  # nothing else is fetched: no MathJax, no require.js
    assert run.files.html.stat().st_size < 600_000, run.files.html.stat().st_size  # 3 years: 0.25 MB; 5.4 MB before, plotly.js inside
    assert "T00:00:00.000000" not in page  # dates stored as YYYY-MM-DD
    nb = nbformat.read(run.files.notebook, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    htmls = [o["data"]["text/html"] for o in outputs if "Plotly.newPlot" in o.get("data", {}).get("text/html", "")]
    assert len(htmls) == _plotly_figures(nb)  # each figure as JSON and as HTML, which plain nbconvert pages draw
    assert sum(len(h) > 1_000_000 for h in htmls) == 1  # plotly.js inside the first only
    assert run.files.notebook.stat().st_size < 7_000_000, run.files.notebook.stat().st_size


def test_progress_shows_the_folds(run):
    "The console shows a bar of the folds as they finish, then the stages."
    err = run.res.stderr.replace("\r", "\n")
    assert re.search(r"\^GSPC: walk-forward: 100%.*\b4/4\b", err), err[-2000:]
    assert "^GSPC: training the final model" in err and "Executing" not in err  # papermill's cell counter is gone


def test_report_renders_offline_in_a_browser(run):
    from playwright.sync_api import sync_playwright
    figures = _plotly_figures(nbformat.read(run.files.notebook, as_version=4))
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
            page.goto(run.files.html.resolve().as_uri(), wait_until="load")
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
    assert not blocked, blocked  # no request leaves the page
    assert links == 1


LAYOUT = """() => {
  const W = document.documentElement.clientWidth, out = [];
  const scrolls = el => { for (let b = el.parentElement; b; b = b.parentElement) if (getComputedStyle(b).overflowX === 'auto') return b; return null; };
  for (const t of document.querySelectorAll('table')) {
    const r = t.getBoundingClientRect(), box = scrolls(t);
    if (r.right > W + 1 && !(box && box.getBoundingClientRect().right <= W + 1)) out.push('a table overflows the page: ' + t.textContent.trim().slice(0, 50));
  }
  const meet = (a, b) => a.width && b.width && a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    const title = g.querySelector('.gtitle'), legend = g.querySelector('.legend'), name = title ? title.textContent : '?';
    if (title && legend && meet(title.getBoundingClientRect(), legend.getBoundingClientRect())) out.push('a legend covers the title of ' + name);
    if (g.getBoundingClientRect().right > W + 1) out.push('a figure overflows the page: ' + name);
    if (title && title.getBoundingClientRect().right > g.getBoundingClientRect().right + 1) out.push('a title is cut: ' + name);
  }
  if (document.documentElement.scrollWidth > W + 1) out.push('the page scrolls sideways');
  return out;
}"""


@pytest.mark.parametrize("width", [1400, 768])
def test_report_reads_at_both_widths(run, width):
    "The first screen holds the verdict sentence, the key numbers and the contents; no legend covers a title, no table or figure overflows; a screenshot per section."
    from playwright.sync_api import sync_playwright
    figures = _plotly_figures(nbformat.read(run.files.notebook, as_version=4))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(width=width, height=900))
            page.goto(run.files.html.resolve().as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}", timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / f"report_first_screen_{width}.png"))
            verdict, cards = page.locator(".lf-verdict"), page.locator(".lf-card")
            assert verdict.bounding_box()["y"] + verdict.bounding_box()["height"] < 900, "the verdict is below the first screen"
            assert re.match(r"\^GSPC\. Out of sample, at one day the model .+; at 7 days its path .+; after costs the strategy .+ buy-and-hold .+; and (its bands are|no band was realized)",
                            verdict.inner_text()), verdict.inner_text()
            assert 5 <= cards.count() <= 8 and all(cards.nth(i).bounding_box()["y"] < 900 for i in range(5)), "the key numbers are not on the first screen"
            toc = page.locator("nav.lf-toc a")
            sections = page.locator("h2[id]")
            assert toc.count() == sections.count() >= 15
            for i in range(toc.count()):  # every link of the contents lands on a section
                target = toc.nth(i).get_attribute("href")[1:]
                assert page.evaluate("id => document.getElementById(decodeURIComponent(id)) !== null", target), target
            assert page.locator("details:not([open]) summary", has_text="The full configuration").count() == 1
            assert page.locator("details:not([open]) summary", has_text="folds, one row each").count() == 1
            problems = page.evaluate(LAYOUT)
            for i in range(sections.count()):
                sections.nth(i).scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / f"report_{width}_{i + 1:02d}.png"))
        finally: browser.close()
    assert not problems, problems


def test_failed_report_leaves_the_good_one_untouched(run, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_FORECAST_CACHE", str(tmp_path / "empty-cache"))
    for k, v in OFFLINE.items(): monkeypatch.setenv(k, v)
    out = tmp_path / "reports"
    good = report_files("NOSUCH", out)
    out.mkdir()
    for kind in PUBLISHED: shutil.copyfile(getattr(run.files, kind), getattr(good, kind))  # a good report of NOSUCH from an earlier run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ReportError) as e: build_report("NOSUCH", out, progress=False)
    msg = str(e.value)
    assert msg.startswith("Could not download 'NOSUCH' from Yahoo Finance") and "nothing is cached" in msg, msg
    assert "\n" not in msg and "Traceback" not in msg and msg.endswith(".")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # byte-identical, and no temporary file left


def test_too_short_history_fails_with_the_data_errors_sentence(cache, tmp_path):
    prices = load_prices("^GSPC", start="2018-06-01")
    with pytest.raises(DataError) as expected: check_history(prices, Config(), "^GSPC")
    with pytest.raises(ReportError) as e: build_report("^GSPC", tmp_path, start="2018-06-01", progress=False)
    assert str(e.value) == str(expected.value)
    assert "has 147 daily rows but the config needs at least 598" in str(e.value)
    assert list(tmp_path.iterdir()) == []


# --- checks before a kernel: bad input ends in one sentence, exit status 2, no kernel, nothing touched

PROBE = "LSTM_FORECAST_TEST_MODULES"  # where the command below writes the kernel machinery it imported
CLI_PROBED = ("import json, os, sys\nfrom lstm_forecast.cli import main\nrc = main(sys.argv[1:])\n"
              "kernel = sorted(m for m in sys.modules if m.split('.')[0] in ('papermill', 'nbclient', 'jupyter_client'))\n"
              "open(os.environ['" + PROBE + "'], 'w').write(json.dumps(kernel))\nsys.exit(rc)")  # `lstm-forecast`, telling on itself

BAD = {  # what is wrong: (arguments after `report ^GSPC`, a part of the one sentence); {good} is a folder holding a good report
    "walk_forward.step=0": (["--set", "walk_forward.step=0"], "walk_forward.step"),
    "model.epochs=0": (["--set", "model.epochs=0"], "model.epochs"),
    "walk_forward.test=0": (["--set", "walk_forward.test=0"], "walk_forward.test"),
    "model.device=tpu": (["--set", "model.device=tpu"], "model.device"),
    "forecast.horizon=31": (["--set", "forecast.horizon=31"], "forecast.horizon"),
    "unknown key": (["--set", "model.epoch=2"], "model.epoch"),
    "end before start": (["--start", "2024-01-01", "--end", "2020-01-01"], "is not before the end date 2020-01-01"),
    "start -1": (["--start", "-1"], "The start date '-1' is not a date"),
    "two seeds": (["--seed", "8", "--set", "seed=7"], "--seed 8 and --set seed=7 disagree"),
    "out is a file": (["--out", "{good}/^GSPC.html"], "is a file"),
    "out under a file": (["--out", "{good}/^GSPC.html/sub"], "cannot be written"),
    "out unwritable": (["--out", "/proc"], "cannot be written"),  # a folder not even root can write in
    "bad benchmark": (["--benchmark", "../spy"], "The benchmark '../spy' is not a ticker"),
}
CONFIG_ROWS = [k for k in BAD if "=" in k]  # the config itself refuses these


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_fails_before_the_kernel(case, run, tmp_path):
    args, says = BAD[case]
    if case in CONFIG_ROWS:  # refused by the config itself: were it not, this command would start a kernel that never ends
        with pytest.raises(ValueError, match=re.escape(says)): with_overrides(Config(), dict([args[1].split("=", 1)]))
    good = tmp_path / "good"
    good.mkdir()
    for kind in PUBLISHED: shutil.copyfile(getattr(run.files, kind), getattr(report_files("^GSPC", good), kind))
    before = snapshot(good)
    args = [a.format(good=good) for a in args]
    probe = tmp_path / "modules.json"
    res = subprocess.run([sys.executable, "-c", CLI_PROBED, "report", "^GSPC", *args, *([] if "--out" in args else ["--out", str(good)])],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **OFFLINE, PROBE: str(probe)}, timeout=120)
    lines = res.stderr.splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], lines
    assert json.loads(probe.read_text()) == []  # neither papermill nor a kernel client was imported: no kernel started
    assert res.stdout == "" and snapshot(good) == before  # the good report untouched, no index or failures written


# --- installable like a library: the template is package data

def test_installed_copy_builds_a_report(tmp_path):
    "`pip install .` (not editable) into a fresh virtual environment, then `lstm-forecast report` run from another folder."
    src, venv, work = tmp_path / "src", tmp_path / "venv", tmp_path / "work"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", ".sync", "reports", "artifacts", "build", "dist",
                                                             "*.egg-info", "__pycache__", "_docs", "_proc", ".*_cache"))
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                               text=True, check=True).stdout.strip())
    # the libraries (and pip) come from this environment's site-packages, read as a plain path: its .pth hooks, such as
    # the editable install's finder of the checkout, never run there
    (site / "shared_libraries.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OFFLINE, LSTM_FORECAST_CACHE=str(tmp_path / "cache"), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}",
               JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"))  # the shared libraries' data files: nbconvert's templates
    pip = subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--ignore-installed", str(src)],
                         capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert pip.returncode == 0, pip.stderr[-3000:]
    shutil.rmtree(src)  # nothing may be read from the checkout it was installed from
    where = subprocess.run([py, "-c", "import lstm_forecast, lstm_forecast.runner as r; print(lstm_forecast.__file__); print(r.template_path())"],
                           capture_output=True, text=True, cwd=work, env=env, check=True).stdout.split()
    assert all(Path(w).is_relative_to(site) for w in where), where  # the installed copy, its template inside it
    res = subprocess.run([str(venv / "bin" / "lstm-forecast"), "report", "^GSPC", "--start", "2016-01-01", "--set", "model.epochs=1",
                          "--out", "out", "--quiet"], capture_output=True, text=True, cwd=work, env=env, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "walk-forward" not in res.stderr  # --quiet: no progress
    page = (work / "out" / "^GSPC.html").read_text()
    assert not re.search(r"<script[^>]*\bsrc=", page) and "Plotly.newPlot" in page and not list((work / "out").glob("*.js"))  # one self-contained file
    assert (work / "out" / "^GSPC.html").stat().st_size > 100_000 and read_summary("^GSPC", work / "out").config["model"]["epochs"] == 1


def test_the_template_by_hand_and_plain_nbconvert_show_every_figure(cache, tmp_path):
    "`papermill nbs/backtest.ipynb out.ipynb -p ticker ^GSPC` computes the run itself; `jupyter nbconvert --to html --no-input` draws its figures offline."
    from playwright.sync_api import sync_playwright
    bin_ = Path(sys.executable).parent
    out = tmp_path / "out.ipynb"
    res = subprocess.run([str(bin_ / "papermill"), str(ROOT / "nbs" / "backtest.ipynb"), str(out), "-p", "ticker", "^GSPC",
                          "-p", "start", "2016-01-01", "-p", "benchmark", "none", "-y", "overrides: {model.epochs: 1}",
                          "--no-progress-bar"], capture_output=True, text=True, env={**os.environ, **OFFLINE}, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    figures = _plotly_figures(nbformat.read(out, as_version=4))
    assert figures >= 15
    res = subprocess.run([str(bin_ / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(out)], capture_output=True, text=True,
                         env={**os.environ, **OFFLINE}, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(width=1280, height=900))
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())  # offline
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.with_suffix(".html").resolve().as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures}", timeout=60_000)
            drawn = page.locator(".js-plotly-plot").count()
            page.screenshot(path=str(ARTIFACTS / "nbconvert_GSPC.png"))
        finally: browser.close()
    assert drawn == figures and not errors, (drawn, figures, errors)
