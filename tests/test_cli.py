"The `lstm-forecast` command in a shell pipeline: a reader that stops early (`| head -1`) ends it quietly, never a traceback; a failed run over a good report."
import html, os, shlex, subprocess

import pytest

from lstm_forecast.testing import CACHE_VAR, CLI, FAST, OFFLINE, report_config, write_report

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
