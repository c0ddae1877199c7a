"The `lstm-forecast` command in a shell pipeline: a reader that stops early (`| head -1`) ends it quietly, never a traceback; a failed run over a good report."
import html, os, shlex, subprocess

import pytest

from lstm_forecast.testing import CACHE_VAR, CLI, FAST, FAST_API, OFFLINE, report_config, write_report

# the forecast of the bundled sample with a tiny model, offline: trained once, then from the model cache
FORECAST = ["forecast", "^GSPC", "--set", "model.epochs=1", *(a for k, v in FAST.items() if k != "model.epochs" for a in ("--set", f"{k}={v}"))]


def piped(args: list[str], reader: str, tmp_path, buffered: bool = False) -> tuple[int, str, str]:
    "(the CLI's exit status, the reader's output, the CLI's standard error) of `lstm-forecast ARGS 2>err | READER` in bash."
    env = {**os.environ, **OFFLINE, CACHE_VAR: str(tmp_path / "cache")}
    if buffered: env.pop("PYTHONUNBUFFERED", None)  # stdout in blocks: the closed pipe shows when the buffer is flushed
    else: env["PYTHONUNBUFFERED"] = "1"  # each write at once: the closed pipe shows in `print`
    err = tmp_path / "stderr.txt"
    cmd = f"{shlex.join([str(CLI), *args])} 2>{shlex.quote(str(err))} | {reader}; echo \"rc=${{PIPESTATUS[0]}}\""
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=600)
    out, _, rc = res.stdout.rpartition("rc=")
    return int(rc), out, err.read_text()


def test_forecast_into_head_prints_its_first_line_without_a_traceback(tmp_path):
    rc, out, err = piped([*FORECAST, "--out", str(tmp_path)], "head -1", tmp_path)
    assert out.startswith("^GSPC: 7-trading-day forecast from 2018-12-31") and out.count("\n") == 1, out
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert rc in (0, 1), (rc, err)  # 0 when the whole forecast fitted in the pipe before head left, else 1


@pytest.mark.parametrize("buffered", [False, True])
def test_a_reader_gone_before_the_output_ends_the_command_quietly(tmp_path, buffered):
    "`| true` has gone before the forecast is printed (training takes seconds): every write meets a closed pipe."
    rc, out, err = piped([*FORECAST, "--out", str(tmp_path)], "true", tmp_path, buffered)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert (rc, out) == (1, ""), (rc, out, err)


def test_help_into_a_closed_pipe_is_quiet(tmp_path):
    "argparse prints `--help` itself and exits: the buffered text meets the closed pipe in `main`, not at exit."
    rc, out, err = piped(["--help"], "true", tmp_path, buffered=True)
    assert err == "" and out == "", err
    assert rc in (0, 1)


def test_a_run_with_nothing_to_do_keeps_the_good_report_listed_with_its_failure_beside_it(tmp_path, monkeypatch):
    "`report ^GSPC --start 2030-01-01` (no prices then) over a folder holding a good ^GSPC report: still a report, the failure in its row."
    from lstm_forecast.data import load_prices
    from lstm_forecast.store import INDEX, FAILURES, read_failures, read_summary
    monkeypatch.setenv(CACHE_VAR, str(tmp_path / "cache"))
    reports = tmp_path / "reports"
    summary = write_report(reports, load_prices("^GSPC", start="2016-01-01"), report_config())
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    res = subprocess.run([str(CLI), "report", "^GSPC", "--start", "2030-01-01", "--out", str(reports), "--quiet"], capture_output=True,
                         text=True, env={**os.environ, **OFFLINE}, timeout=300)
    assert res.returncode == 2 and res.stderr.startswith("error: ^GSPC: '^GSPC' has no prices from 2030-01-01"), res.stderr
    failure = read_failures(reports)["^GSPC"]  # the record keeps the failure
    assert res.stderr == f"error: ^GSPC: {failure['reason']}\n" and failure["at"] > summary.generated_at
    assert {p.name: p.read_bytes() for p in reports.iterdir() if p.name not in (INDEX, FAILURES, f".{FAILURES}.lock")} == before  # the report untouched
    assert read_summary("^GSPC", reports) == summary
    page = (reports / INDEX).read_text()
    rows = [r for r in page.split("<tr>") if 'href="%5EGSPC.html"' in r]
    assert len(rows) == 1 and "<h2>Reports</h2>" in page and "<h2>Failed</h2>" not in page  # listed as a report, not as failed
    when = failure["at"].replace("T", " ")[:16]
    assert f'<div class="failed">last run failed on {when} UTC: {html.escape(failure["reason"])} This report is kept as it was.</div>' in rows[0]


# `report_config()` as `report` options: a real report in seconds
REPORT = [a for k, v in {**FAST_API, "walk_forward.workers": 1, "regime.method": "trend", "walk_forward.test": 252,
                         "walk_forward.step": 252}.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture
def small_disk(tmp_path):
    "A folder on a tmpfs of 16 MB, unmounted after the test (mounting needs root: skipped otherwise)."
    d = tmp_path / "disk"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield d
    subprocess.run(["umount", str(d)], check=True)


def fill(disk, leave: int):
    "Fill `disk` with one file until at most `leave` bytes are free."
    st = os.statvfs(disk)
    with open(disk / "filler", "ab", buffering=0) as f:
        f.write(b"\0" * max(st.f_bavail * st.f_frsize - leave, 0))
        try:
            while not leave: f.write(b"\0" * 4096)  # the last pages too
        except OSError: pass


def test_a_full_disk_under_out_is_one_sentence_and_exit_2_with_the_old_report_kept(tmp_path, monkeypatch, small_disk):
    "A real full disk (tmpfs): the run fails in one sentence, exit 2, the failure recorded while it fits, the old report whole."
    from lstm_forecast.data import load_prices
    from lstm_forecast.store import INDEX, FAILURES, read_failures, read_summary
    monkeypatch.setenv(CACHE_VAR, str(tmp_path / "cache"))
    reports = small_disk / "reports"
    summary = write_report(reports, load_prices("^GSPC", start="2016-01-01"), report_config())
    before = {p.name: p.read_bytes() for p in reports.iterdir()}
    ours = lambda: {p.name: p.read_bytes() for p in reports.iterdir() if p.name not in (INDEX, FAILURES, f".{FAILURES}.lock")}
    run = lambda: subprocess.run([str(CLI), "report", "^GSPC", "--start", "2016-01-01", "--benchmark", "none", "--quiet", "--seed", "8",
                                  *REPORT, "--out", str(reports)], capture_output=True, text=True, env={**os.environ, **OFFLINE}, timeout=300)
    fill(small_disk, 256 * 1024)  # room for failures.json and the index, none for a 5 MB page
    res = run()
    said = (f"error: ^GSPC: The report could not be written to '{reports}' (No space left on device): free space there or choose"
            " another --out; the old report is kept as it was.")
    assert (res.returncode, res.stderr) == (2, said + "\n"), res.stderr[-3000:]
    assert read_failures(reports)["^GSPC"]["reason"] == said.removeprefix("error: ^GSPC: ")
    assert ours() == before and read_summary("^GSPC", reports) == summary  # no temp file left, the old report whole
    assert 'href="%5EGSPC.html"' in (reports / INDEX).read_text()
    fill(small_disk, 0)  # now not even failures.json fits
    res = run()
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-3000:]
    lines = res.stderr.splitlines()
    assert lines[0] == said and lines[1].startswith(f"error: the outcome could not be recorded in '{reports / FAILURES}' (No space left"), lines
    assert lines[2:] == [f"error: the index could not be written to '{reports}' (No space left on device): free space there and run the report again."]
    assert ours() == before


def test_a_full_cache_disk_warns_in_one_sentence_and_still_prints_the_forecast(tmp_path, small_disk):
    "`forecast` with its model cache on a full tmpfs: torch.save fails there, the forecast is printed, no temp file is left."
    cache = small_disk / "cache"
    (cache / "models").mkdir(parents=True)
    fill(small_disk, 0)
    res = subprocess.run([str(CLI), *FORECAST, "--quiet", "--out", str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, **OFFLINE, CACHE_VAR: str(cache)}, timeout=300)
    assert res.returncode == 0 and res.stdout.startswith("^GSPC: 7-trading-day forecast from 2018-12-31"), res.stderr[-3000:]
    assert "Traceback" not in res.stderr and "Could not write the model cache '" in res.stderr, res.stderr
    warned = next(line for line in res.stderr.splitlines() if "Could not write the model cache" in line)
    assert warned.endswith("the model is used without being cached; free space there or set LSTM_FORECAST_CACHE to a writable directory."), warned
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # no partial model, no temp file


@pytest.mark.parametrize("args, sentence", [
    (["forecast", "MSFT", "--horizon", "abc"], "lstm-forecast forecast: --horizon must be a whole number, got 'abc'."),
    (["forecast", "MSFT", "--format", "xml"], "lstm-forecast forecast: --format must be one of table, json, csv, got 'xml'."),
    (["import-csv", "prices.csv"], "lstm-forecast import-csv: the following arguments are required: TICKER."),
    (["serve", "--port", "http"], "lstm-forecast serve: --port must be a whole number, got 'http'."),
])
def test_a_bad_option_value_is_one_sentence_and_exit_2(args, sentence):
    "argparse's three-line usage block gives way to one sentence and where the help is."
    res = subprocess.run([str(CLI), *args], capture_output=True, text=True, env={**os.environ, **OFFLINE}, timeout=120)
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout)
    command = " ".join(["lstm-forecast", args[0]])
    assert res.stderr.splitlines() == [sentence, f"see {command} --help"], res.stderr
    assert "usage:" not in res.stderr and "Traceback" not in res.stderr


def test_every_argument_and_option_has_help():
    "Every command's every argument and option (but `-h`) says what it is; import-csv names FILE, TICKER and the columns."
    import argparse
    from lstm_forecast.cli import parser

    def walk(p):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction): yield from (q for c in a.choices.values() for q in walk(c))

    parsers = list(walk(parser()))
    assert {p.prog for p in parsers} >= {f"lstm-forecast {c}" for c in ("summary", "report", "import-csv", "forecast", "serve")}
    for p in parsers:
        for a in p._actions:
            if isinstance(a, argparse._HelpAction): continue
            assert a.help and a.help.strip(), f"{p.prog} {a.option_strings or a.dest} has no help"
    text = next(p for p in parsers if p.prog == "lstm-forecast import-csv").format_help()
    assert "FILE" in text and "TICKER" in text
    assert all(c in text for c in ("Date", "Open", "High", "Low", "Close", "Volume")), text


_DEEP = "[" * 30_000 + "]" * 30_000  # under 64 KB, deeper than Python's recursion limit
BEFORE_WORK = [  # (arguments, extra environment, the sentence's telling part): each stops before any prices, cluster or training
    (["report", "^GSPC", "--set", "walk_forward.workers=1000"], {}, "walk_forward.workers=1000 is out of range: it must be a whole number from 0 to 64"),
    (["report", "^GSPC", "--set", "model.hidden=100000"], {}, "model.hidden=100000 is out of range: it must be a whole number from 1 to 4096"),
    (["report", "^GSPC", "--set", "model.threads=100000"], {}, "model.threads=100000 is out of range: it must be a whole number from 1 to 256"),
    (["report", "^GSPC", "--set", "model.lr=1e308"], {}, "model.lr=1e+308 is out of range: it must be a number in (0, 10]."),
    (["report", "^GSPC", "--set", "portfolio.cost_bps=1e308"], {}, "portfolio.cost_bps=1e+308 is out of range: it must be a number from 0 to 10000"),
    (["report", "^GSPC", "--set", "forecast.calendar=XXXX"], {}, "forecast.calendar='XXXX' is not an exchange calendar"),
    (["report", "^GSPC", "--set", "model.device=cuda:999"], {}, "model.device='cuda:999' is not on this machine"),
    (["forecast", "^GSPC", "--set", "model.device=cuda:999"], {}, "model.device='cuda:999' is not on this machine"),
    (["forecast", "^GSPC", "--set", "forecast.calendar=XXXX"], {}, "forecast.calendar='XXXX' is not an exchange calendar"),
    (["report", "^GSPC", "--dask", "--workers", "1000"], {}, "--workers 1000 is out of range: a local cluster takes 1 to 64 workers"),
    (["forecast", "^GSPC"], {"LSTM_FORECAST_OVERRIDES": _DEEP}, "LSTM_FORECAST_OVERRIDES is not usable (it is nested too deeply)"),
    (["forecast", "^GSPC"], {"LSTM_FORECAST_OVERRIDES": "[" * 60_000 + "]" * 60_000},
     "LSTM_FORECAST_OVERRIDES is not usable (it is 120,000 characters long, more than 65,536)"),
    (["report", "^GSPC", "--set", "model.device=" + "x" * 100_000], {}, "model.device='xxxxx"),
    (["forecast", "^GSPC", "--set", "x" * 100_000], {}, "config override 'xxxxx"),
    (["serve", "--port", "0"], {"LSTM_FORECAST_OVERRIDES": '{"forecast.calendar": "XXXX"}'}, "forecast.calendar='XXXX' is not an exchange calendar"),
]

@pytest.mark.parametrize("args, env, says", BEFORE_WORK)
def test_a_bad_size_calendar_device_or_overrides_is_one_short_sentence_and_exit_2_before_work(tmp_path, args, env, says):
    "Bounds on every size, the calendar and the device known here, the overrides readable: else one sentence of at most 400 characters, exit 2, no report."
    out = tmp_path / "reports"
    extra = ["--out", str(out)] if args[0] == "report" else []
    res = subprocess.run([str(CLI), *args, *extra], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, **OFFLINE, CACHE_VAR: str(tmp_path / "cache"), **env})
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, (res.returncode, res.stdout, res.stderr[-2000:])
    assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr and len(res.stderr) < 400, res.stderr[:2000]
    assert not out.exists() and not (tmp_path / "cache" / "models").exists()


def _run_cli(args: list[str], cwd, **env) -> subprocess.CompletedProcess:
    "`lstm-forecast ARGS` in `cwd`, offline with its own cache."
    full = {**os.environ, **OFFLINE, CACHE_VAR: str(cwd / "cache"), **env}
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, env=full, cwd=cwd, timeout=300)


@pytest.mark.parametrize("args", [["report", "^GSPC", "--out", ""], ["forecast", "^GSPC", "--out", " "], ["serve", "--reports", ""]])
def test_an_empty_folder_option_is_refused_not_the_working_directory(tmp_path, args):
    "`--out \"\"` was the working directory: the report, its index and failures.json landed beside the user's files."
    res = _run_cli(args, tmp_path)
    assert res.returncode == 2 and "is empty" in res.stderr.splitlines()[0], (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == []


@pytest.mark.parametrize("args, said", [
    (["--port", "99999"], "error: --port must be 1 to 65535, not 99999."),
    (["--port", "0"], "error: --port must be 1 to 65535, not 0."),
    (["--reports", "FILE"], "error: --reports 'FILE' is a file: name the report folder (a missing one is fine)."),
    (["--connection-limit", "0"], "error: --connection-limit must be 1 or more, not 0."),
    (["--channel-timeout", "0"], "error: --channel-timeout must be more than 0 seconds, not 0."),
])
def test_bad_serve_options_are_one_sentence_before_binding(tmp_path, args, said):
    "Port 99999 was announced, then waitress listened on 99999 mod 65536; a file as --reports made every forecast 500."
    (tmp_path / "FILE").write_text("not a folder")
    res = _run_cli(["serve", *args], tmp_path)
    assert (res.returncode, res.stderr.splitlines()) == (2, [said]), (res.returncode, res.stderr)


def test_a_busy_port_is_one_sentence(tmp_path):
    "Another program on the port was an `OSError` traceback from waitress."
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); s.listen()
        port = s.getsockname()[1]
        res = _run_cli(["serve", "--port", str(port), "--reports", str(tmp_path / "reports")], tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert res.stderr.splitlines() == [f"error: port {port} is in use: stop what listens there or choose another --port."], res.stderr


def _interrupted(args: list[str], cwd, started: str, timeout: float = 300) -> tuple[int, str]:
    "(exit status, standard error) of `lstm-forecast ARGS` sent SIGINT once its standard error shows `started`."
    import signal, time
    err = cwd / "stderr.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen([str(CLI), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True,
                                env={**os.environ, **OFFLINE, CACHE_VAR: str(cwd / "cache"), "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + timeout
        while started not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, (proc.returncode, err.read_text()[-2000:])
            time.sleep(0.2)
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(120)
        for _ in range(60):  # the session empties: the kernel and its workers stopped too
            try: os.killpg(proc.pid, 0)
            except ProcessLookupError: break
            time.sleep(0.5)
        else: raise AssertionError("processes of the run are left after Ctrl-C")
        return rc, err.read_text()
    finally:
        if proc.poll() is None: os.killpg(proc.pid, 9); proc.wait()


@pytest.mark.parametrize("args, started", [
    (["report", "^GSPC", "--set", "model.epochs=50", "--out", "reports"], "^GSPC: walk-forward"),
    (["serve", "--port", "0"], "lstm-forecast API on"),
])
def test_ctrl_c_ends_any_command_with_interrupted_and_130(tmp_path, args, started):
    "Ctrl-C was a 50-line traceback (the kernel's cell, then papermill's, then ours); now one line and the shell's 130."
    if "serve" in args:
        from lstm_forecast.testing import free_port
        args = ["serve", "--port", str(free_port())]
    rc, err = _interrupted(args, tmp_path, started)
    assert rc == 130 and err.endswith("interrupted\n"), (rc, err[-3000:])
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
