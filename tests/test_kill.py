"A report killed mid walk-forward leaves no process, no temporary file and no half-written report (issue 10); the mechanism is `runner.supervised_tempdir`."
import os, signal, subprocess, time
from pathlib import Path

import psutil, pytest
from lstm_forecast.testing import CACHE_VAR, CLI, ROOT, marked

SMALL = ["--start", "2010-01-01", "--set", "model.epochs=3", "--set", "walk_forward.workers=2"]  # two fold workers, many folds


def _ours(cache: Path) -> list[psutil.Process]:
    "Every process started by the run: they all inherit its `LSTM_FORECAST_CACHE`, whatever starts them."
    return marked(CACHE_VAR, str(cache))


def _until(check, seconds: float):
    "Poll `check` until it gives something true or `seconds` pass; its last value."
    end = time.monotonic() + seconds
    while not (value := check()) and time.monotonic() < end: time.sleep(0.2)
    return value


def _walk_forward_running(cache: Path) -> bool:
    "Whether the report has started its walk-forward's fold workers (two or more)."
    workers = 0
    for p in _ours(cache):
        try:
            workers += "spawn_main" in " ".join(p.cmdline())  # a fold worker the report's own process started
        except psutil.Error: pass
    return workers >= 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_report_leaves_nothing(tmp_path, sig):
    tmp, cache, out = tmp_path / "tmp", tmp_path / "cache", tmp_path / "out"
    for d in (tmp, cache, out): d.mkdir()
    (out / "^GSPC.html").write_text("the last good report")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "LSTM_FORECAST_CACHE": str(cache), "TMPDIR": str(tmp)}
    with open(tmp_path / "stdout", "w") as so, open(tmp_path / "stderr", "w") as se:  # files, not pipes: a survivor would hold a pipe open
        cli = subprocess.Popen([str(CLI), "report", "^GSPC", *SMALL, "--out", str(out), "--quiet"], env=env, stdout=so, stderr=se)
    try:
        assert _until(lambda: _walk_forward_running(cache) or cli.poll() is not None, 300) and cli.poll() is None, \
            (tmp_path / "stderr").read_text()[-3000:]
        started = _ours(cache)
        assert len(started) >= 4, started  # the CLI, its reaper and the walk-forward's two workers at least
        cli.send_signal(sig)
        assert cli.wait(timeout=60) == (128 + sig if sig != signal.SIGKILL else -sig)
        gone = _until(lambda: not _ours(cache) and not any(tmp.iterdir()), 20)
        assert gone, f"left behind after {sig.name}: processes {_ours(cache)}, files {list(tmp.iterdir())}"
        assert [(f.name, f.read_text()) for f in out.iterdir()] == [("^GSPC.html", "the last good report")]
    finally:
        for p in _ours(cache):  # a failing run must not leave its 600 MB workers to the next test
            try: p.kill()
            except psutil.Error: pass
        if cli.poll() is None: cli.kill(); cli.wait()
