"What the tests share: the real prices in ../shared/data/stocks, a fast config, a private price cache, no network."
import contextlib, os, signal, socket, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path

import pandas as pd, pytest
from lstm_forecast.data import import_csv, read_price_csv

ROOT = Path(__file__).resolve().parents[1]  # the repository
# One real daily OHLCV CSV per ticker: ../shared/data/stocks beside the repository, or $LSTM_FORECAST_TEST_STOCKS (a worktree
# elsewhere points it at the shared folder).
STOCKS = Path(os.environ.get("LSTM_FORECAST_TEST_STOCKS") or ROOT.parent / "shared" / "data" / "stocks")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"  # screenshots, logs and timings the tests leave to look at
CLI = Path(sys.executable).with_name("lstm-forecast")  # the console script of the environment running the tests

# A small model on short folds: a fold trains in seconds. The regime stays the default (Markov).
FAST = {"model.epochs": 2, "model.hidden": 8, "model.seq_len": 20, "walk_forward.train": 200,
        "walk_forward.test": 40, "walk_forward.step": 40}
FAST_TREND = {**FAST, "regime.method": "trend"}  # ... and the trend regime: no Markov fit per fold
FAST_SERIAL = {**FAST_TREND, "walk_forward.workers": 1}  # ... and the folds in this process, no worker pool

# Every proxy variable pointed at a closed local port: a download fails at once, as on a machine without network.
OFFLINE = {v: "http://127.0.0.1:9" for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")}
CACHE_VAR = "LSTM_FORECAST_CACHE"  # where lstm_forecast keeps prices and models; the tests never use the user's

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def stock_csv(ticker: str) -> Path:
    "The shared CSV of `ticker`; a missing one fails with where the tests look."
    path = STOCKS / f"{ticker}.csv"
    assert path.exists(), f"{path} is missing: these tests read the real prices in ../shared/data/stocks (or $LSTM_FORECAST_TEST_STOCKS)"
    return path


def stock_prices(ticker: str, rows: int | None = None) -> pd.DataFrame:
    "The last `rows` days (None: all) of `ticker`'s shared CSV, validated by `read_price_csv`, with `attrs['ticker']`."
    px = read_price_csv(stock_csv(ticker))
    px = px if rows is None else px.iloc[-rows:]
    px.attrs["ticker"] = ticker
    return px


def import_stock(ticker: str, rows: int, folder: Path) -> None:
    "Import the last `rows` lines of `ticker`'s shared CSV into the price cache (through a copy in `folder`)."
    csv = folder / f"{ticker}.csv"
    pd.read_csv(stock_csv(ticker)).iloc[-rows:].to_csv(csv, index=False)
    import_csv(csv, ticker)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty price cache for one test, never the user's."
    path = tmp_path / "cache"
    path.mkdir()
    monkeypatch.setenv(CACHE_VAR, str(path))
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    "One empty price cache for all the tests of a module, never the user's."
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_VAR, str(path))
        yield path


@pytest.fixture
def offline(monkeypatch):
    "No network for one test (and the processes it starts): every download fails at once."
    for k, v in OFFLINE.items(): monkeypatch.setenv(k, v)


def free_port() -> int:
    "A TCP port free on loopback now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_server(cmd: list[str],  # the server's command line, its port in it
                 url: str,  # polled until it answers with any HTTP status
                 env: dict,  # the server's environment
                 log: Path,  # its standard output and error
                 timeout: float = 120,  # seconds of polling (in 0.5 s naps) before the test fails
                 cwd: Path | None = None,
                ):
    "Start a server in its own session and yield its process once GET `url` answers; then terminate the session (killed after 30 s)."
    name = Path(cmd[0]).name
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(int(timeout * 2)):
            if proc.poll() is not None: pytest.fail(f"{name} exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5): break
            except urllib.error.HTTPError: break  # any status: it answers
            except (urllib.error.URLError, ConnectionError, TimeoutError): time.sleep(0.5)
        else: pytest.fail(f"{name} did not answer on {url} in {timeout:g} s: {log.read_text()[-2000:]}")
        yield proc
    finally:  # the whole session: a server's workers and kernels too
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait()
