"Universe runs on Dask end to end: real tickers, a two-worker LocalCluster, a bad ticker, skips and --force; the lessons live in nbs/13_universe.ipynb."
import contextlib, io, re, subprocess, time, uuid
from pathlib import Path
from types import SimpleNamespace

import pandas as pd, psutil, pytest
from lstm_forecast.data import import_csv
from lstm_forecast.store import read_failures, read_summary, report_files
from lstm_forecast.universe import run_universe

from lstm_forecast.testing import CLI, OFFLINE, STOCKS, marked
from lstm_forecast.testing import FAST_TREND as FAST
GOOD, BAD = ["AAPL", "MSFT"], "KO"  # two years each; KO gets 100 days, too few for one fold
MARK = "LSTM_FORECAST_TEST_UNIVERSE"  # every process a run starts (workers, kernels) inherits it: strays are found by it


def no_strays(value: str, wait: float = 10.0) -> list[psutil.Process]:
    "The marked processes still alive after up to `wait` seconds (workers take a moment to exit)."
    t0 = time.monotonic()
    while (left := marked(MARK, value)) and time.monotonic() - t0 < wait: time.sleep(0.2)
    return left


def mtimes(out: Path) -> dict[str, int]:
    return {t: report_files(t, out).html.stat().st_mtime_ns for t in GOOD}


def file_mtimes(out: Path) -> dict[str, int]:
    "Every file of the good tickers' reports (html, notebook, summary, run) and its mtime."
    return {str(p): p.stat().st_mtime_ns for t in GOOD for k in ("html", "notebook", "summary", "run")
            if (p := getattr(report_files(t, out), k)).exists()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    "Three runs of AAPL, MSFT and a too-short KO: on a two-worker cluster, again on it, then `--force` through the CLI."
    mp = pytest.MonkeyPatch()
    cache, out = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("reports")
    mark = uuid.uuid4().hex
    mp.setenv("LSTM_FORECAST_CACHE", str(cache)); mp.setenv(MARK, mark)
    for k, v in OFFLINE.items(): mp.setenv(k, v)
    for t in [*GOOD, BAD]:
        csv = cache / f"{t}.csv"
        pd.read_csv(STOCKS / f"{t}.csv").iloc[-(100 if t == BAD else 504):].to_csv(csv, index=False)
        import_csv(csv, t)
    universe = cache / "universe.txt"
    universe.write_text(f"# the test universe\n{GOOD[0]}\n{GOOD[1]}  # Microsoft\n\n{BAD}\n")
    from distributed import Client, LocalCluster
    r = SimpleNamespace(out=out, mark=mark)
    t0 = time.perf_counter()
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, Client(cluster) as client:
            err = io.StringIO()
            with contextlib.redirect_stderr(err): r.first = run_universe([*GOOD, BAD], out, overrides=FAST, client=client)
            r.first_log, r.first_mtimes, r.first_index = err.getvalue(), mtimes(out), (out / "index.html").read_text()
            r.first_files, r.first_seconds = file_mtimes(out), time.perf_counter() - t0
            t1, err = time.perf_counter(), io.StringIO()
            with contextlib.redirect_stderr(err): r.second = run_universe([*GOOD, BAD], out, overrides=FAST, client=client)
            r.second_log, r.second_seconds = err.getvalue(), time.perf_counter() - t1
            r.second_mtimes, r.second_files = mtimes(out), file_mtimes(out)
        r.strays_api = no_strays(mark)
        t2 = time.perf_counter()
        r.cli = subprocess.run([str(CLI), "report", "--universe", str(universe), "--workers", "2", "--force", "--out", str(out),
                                *[a for k, v in FAST.items() for a in ("--set", f"{k}={v}")]],
                               capture_output=True, text=True, timeout=300)
        r.cli_seconds, r.cli_mtimes = time.perf_counter() - t2, mtimes(out)
        r.strays_cli = no_strays(mark)
        r.total_seconds = time.perf_counter() - t0
        yield r
    finally:
        for p in marked(MARK, mark): p.kill()  # only what this fixture started
        mp.undo()


def test_two_reports_and_one_recorded_failure(runs):
    res = runs.first
    assert list(res.index) == [*GOOD, BAD] and list(res.status) == ["built", "built", "failed"], res
    for t in GOOD: assert all(getattr(report_files(t, runs.out), k).exists() for k in ("html", "notebook", "summary", "run"))
    assert not report_files(BAD, runs.out).html.exists()
    sentence = res.loc[BAD, "reason"]
    assert sentence.startswith("'KO' has 100 daily rows but the config needs at least 271") and sentence.count(". ") == 0
    assert read_failures(runs.out)[BAD]["reason"] == sentence


def test_reports_share_one_plotly_js(runs):
    "The folder holds plotly.js once; each page loads it from there, and nothing else."
    assert [p.name for p in runs.out.glob("*.js")] == ["plotly.min.js"]
    for t in GOOD:
        page = report_files(t, runs.out).html.read_text()
        assert re.findall(r'<script[^>]*\bsrc="([^"]*)"', page) == ["plotly.min.js"], t
        assert report_files(t, runs.out).html.stat().st_size < 1_000_000
        # offline, SPY cannot be had and the bundled sample ends in 2018: the report says so and shows what it can
        assert "No benchmark: " in page and "Calendar-year returns" in page and "Against ^GSPC" not in page


def test_progress_lines(runs):
    lines = runs.first_log.splitlines()
    assert lines[0].startswith("Dask dashboard: ") and lines[1].startswith("3 tickers on 2 Dask workers")
    assert sorted(l.split(" ", 1)[0] for l in lines[2:]) == ["1/3", "2/3", "3/3"]
    done = [l for l in lines if " done in " in l]
    assert len(done) == 2 and all(l.endswith(" s") for l in done), lines
    assert [l for l in lines if " failed: " in l] == [f"{[l.split()[0] for l in lines if BAD in l][0]} {BAD} failed: {runs.first.loc[BAD, 'reason']}"]


def test_index_shows_the_cross_ticker_view_and_the_failure(runs):
    index = runs.first_index
    beat = sum(read_summary(t, runs.out).beat_zero for t in GOOD)
    assert "Across 2 tickers" in index and f"beat the zero-return forecast on <b>{beat} of 2</b>" in index
    assert "strategy minus buy and hold" in index and index.count("<tr><td>") == 2
    assert f'<th scope="row">{BAD}</th>' in index and "has 100 daily rows" in index
    assert 'class="sortable"' in index and "<script>" in index


def test_rerun_skips_current_reports(runs):
    res = runs.second
    assert list(res.status) == ["current", "current", "failed"], res
    assert res.loc["AAPL", "reason"].startswith("current: prices to ")
    assert runs.second_mtimes == runs.first_mtimes  # nothing rebuilt
    assert runs.second_files == runs.first_files  # nothing of a current report is written again
    lines = runs.second_log.splitlines()
    for t in GOOD: assert len([l for l in lines if f" {t} skipped, its report is current: prices to " in l]) == 1, lines
    assert not [l for l in lines if " done in " in l], lines  # no report was built


def test_cli_force_rebuilds(runs):
    assert runs.cli.returncode == 2, runs.cli.stderr
    out = runs.cli.stdout.splitlines()
    assert sorted(l for l in out if l.startswith("report: ")) == sorted(f"report: {report_files(t, runs.out).html.resolve()}" for t in GOOD)
    err = runs.cli.stderr
    assert err.count(" done in ") == 2 and f"{BAD} failed: 'KO' has 100 daily rows" in err and "Traceback" not in err
    assert err.rstrip().endswith(f"error: 1 of 3 reports failed: {BAD}")
    assert all(runs.cli_mtimes[t] > runs.first_mtimes[t] for t in GOOD)


def test_no_stray_processes(runs):
    assert runs.strays_api == [] and runs.strays_cli == [], (runs.strays_api, runs.strays_cli)
    print(f"first run {runs.first_seconds:.0f} s, rerun {runs.second_seconds:.1f} s, CLI --force {runs.cli_seconds:.0f} s,"
          f" total {runs.total_seconds:.0f} s")
