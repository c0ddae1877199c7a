"Reports logged to MLflow, in the local default store and on a real `mlflow server` on loopback, read back with search_runs."
import argparse, json, os, sys
from pathlib import Path

import pandas as pd
import pytest
from lstm_forecast.testing import free_port, report_config, start_server, write_report
from test_api import import_prices

MLFLOW = Path(sys.executable).with_name("mlflow")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    "Reports of ^GSPC and MSFT (tiny model, real runs), each with its final model in the model cache."
    from lstm_forecast.data import load_prices
    out, cache = tmp_path_factory.mktemp("reports"), tmp_path_factory.mktemp("cache")
    import_prices(cache)
    old = os.environ.get("LSTM_FORECAST_CACHE")
    os.environ["LSTM_FORECAST_CACHE"] = str(cache)
    try:
        cfg = report_config()
        gspc, msft = load_prices("^GSPC", start="2016-01-01"), load_prices("MSFT", start="2021-01-01")
        summaries = {p.attrs["ticker"]: write_report(out, p, cfg) for p in (gspc, msft)}
        models = {t: next((cache / "models" / t).glob("*.pt")) for t in summaries}  # `run_report` cached each report's final model
        assert all(len(list((cache / "models" / t).glob("*.pt"))) == 1 for t in summaries)
        yield dict(out=out, summaries=summaries, models=models)
    finally:
        if old is None: os.environ.pop("LSTM_FORECAST_CACHE")
        else: os.environ["LSTM_FORECAST_CACHE"] = old


def check_run(row: pd.Series, client, summary_file: Path, model: Path | None, page_js: bool = False):
    "The run `row` (from search_runs) holds what the summary JSON in `summary_file` says, and the report's files (`page_js`: with plotly.min.js)."
    from lstm_forecast.tracking import flatten
    s = json.loads(summary_file.read_text())
    assert row["status"] == "FINISHED"
    params = {k.removeprefix("params."): v for k, v in row.items() if k.startswith("params.") and v is not None}
    assert params == {k: str(v) for k, v in flatten(s["config"]).items()}
    for k in ("strategy_sharpe", "buy_hold_sharpe", "strategy_max_drawdown", "hit_rate", "r2_oos", "dm_p"):
        if s[k] is None: assert pd.isna(row.get(f"metrics.{k}")), k  # missing numbers are not logged as numbers
        else: assert row[f"metrics.{k}"] == pytest.approx(s[k], rel=1e-12), k
    assert (row["metrics.beat_zero"], row["metrics.beat_buy_hold"], row["metrics.rows"]) == (float(s["beat_zero"]), float(s["beat_buy_hold"]), s["rows"])
    for k in ("ticker", "data_digest", "config_key", "model_key", "last_data_date", "generated_at"): assert row[f"tags.{k}"] == s[k], k
    assert row["tags.lstm_forecast_version"] and len(row["tags.git_commit"]) == 40
    rid, t = row["run_id"], s["ticker"]
    got = sorted(a.path for a in client.list_artifacts(rid, "report"))
    assert got == sorted([*(f"report/{t}{x}" for x in (".html", ".json", ".run.zip")), *(["report/plotly.min.js"] if page_js else [])])
    assert json.loads(Path(client.download_artifacts(rid, f"report/{t}.json")).read_text()) == s
    assert Path(client.download_artifacts(rid, f"report/{t}.run.zip")).read_bytes() == summary_file.with_name(f"{t}.run.zip").read_bytes()
    models = [a.path for a in client.list_artifacts(rid, "model")]
    assert models == ([f"model/{model.name}"] if model else [])


def logged(uri: str, experiment: str = "lstm_forecast") -> pd.DataFrame:
    import mlflow
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=[experiment])


def row(runs: pd.DataFrame, run_id: str) -> pd.Series:
    return runs[runs.run_id == run_id].iloc[0]


def test_the_default_store_is_local_and_needs_no_server(reports, tmp_path, monkeypatch):
    import mlflow
    from lstm_forecast import store, tracking
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LSTM_FORECAST_MLFLOW_DIR", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path}/mlruns.db"
    files = store.report_files("^GSPC", reports["out"])
    rid = tracking.log_report(files)
    runs = logged(tracking.tracking_uri())
    assert list(runs.run_id) == [rid]
    check_run(runs.iloc[0], mlflow.MlflowClient(), files.summary, reports["models"]["^GSPC"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlartifacts", "mlruns.db"]
    assert any(p.name == reports["models"]["^GSPC"].name for p in (tmp_path / "mlartifacts").rglob("*.pt"))


def test_a_universe_is_a_parent_run_with_a_child_per_ticker(reports, tmp_path, monkeypatch):
    import mlflow
    from lstm_forecast import store, tracking
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LSTM_FORECAST_MLFLOW_DIR", str(tmp_path))
    with tracking.universe_run(["^GSPC", "MSFT"], reports["out"]) as parent:
        kids = {t: tracking.log_report(store.report_files(t, reports["out"]), parent_run_id=parent) for t in ("^GSPC", "MSFT")}
    with pytest.raises(RuntimeError), tracking.universe_run(["MSFT"], reports["out"]) as failed:
        raise RuntimeError("the run broke")
    runs = logged(tracking.tracking_uri())
    assert (row(runs, parent).status, row(runs, failed).status, row(runs, parent)["tags.kind"]) == ("FINISHED", "FAILED", "universe")
    children = runs[runs["tags.mlflow.parentRunId"] == parent]
    assert dict(zip(children["tags.ticker"], children.run_id)) == kids
    client = mlflow.MlflowClient()
    for t, rid in kids.items():
        check_run(row(runs, rid), client,
                  store.report_files(t, reports["out"]).summary, reports["models"][t])


def test_report_track_hook_logs_what_the_run_built(reports, tmp_path, monkeypatch):
    from lstm_forecast import tracking
    from lstm_forecast.cli import _track_reports
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LSTM_FORECAST_MLFLOW_DIR", str(tmp_path))
    args = argparse.Namespace(out=str(reports["out"]), universe=None, dask=False, scheduler=None, workers=None)
    _track_reports(argparse.Namespace(**vars(args), track=False), ["^GSPC"], [])
    assert not (tmp_path / "mlruns.db").exists()  # neither --track nor MLFLOW_TRACKING_URI: nothing logged
    _track_reports(argparse.Namespace(**vars(args), track=True), ["^gspc"], [])
    _track_reports(argparse.Namespace(**vars(args), track=True), ["^GSPC", "msft", "BAD T"], ["BAD T"])
    runs = logged(tracking.tracking_uri())
    parents = runs[runs["tags.kind"] == "universe"]
    assert len(runs) == 4 and len(parents) == 1
    assert sorted(runs[runs["tags.mlflow.parentRunId"] == parents.run_id.iloc[0]]["tags.ticker"]) == ["MSFT", "^GSPC"]


def test_a_page_that_loads_the_shared_plotly_js_is_logged_with_it(reports, tmp_path, monkeypatch):
    "A many-ticker run's pages load plotly.min.js from their folder: the run holds it beside the page, so its charts show in MLflow."
    import mlflow, nbformat, shutil
    from lstm_forecast import store, tracking
    from lstm_forecast.pages import notebook_html, write_plotly_js
    from lstm_forecast.store import PLOTLY_JS
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LSTM_FORECAST_MLFLOW_DIR", str(tmp_path / "mlflow"))
    out = tmp_path / "universe"
    out.mkdir()
    for t in ("^GSPC", "MSFT"):
        f = store.report_files(t, reports["out"])
        for path in (f.html, f.summary, f.run): shutil.copy(path, out)  # MSFT's page stays self-contained
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# ^GSPC")])
    store.write_atomic(store.report_files("^GSPC", out).html, notebook_html(nb, "^GSPC backtest report", self_contained=False))
    js = write_plotly_js(out)
    with tracking.universe_run(["^GSPC", "MSFT"], out) as parent:
        kids = {t: tracking.log_report(store.report_files(t, out), parent_run_id=parent) for t in ("^GSPC", "MSFT")}
    runs, client = logged(tracking.tracking_uri()), mlflow.MlflowClient()
    check_run(row(runs, kids["^GSPC"]), client, store.report_files("^GSPC", out).summary, reports["models"]["^GSPC"], page_js=True)
    check_run(row(runs, kids["MSFT"]), client, store.report_files("MSFT", out).summary, reports["models"]["MSFT"])
    assert Path(client.download_artifacts(kids["^GSPC"], f"report/{PLOTLY_JS}")).read_bytes() == js.read_bytes()
    js.unlink()  # the page without its plotly.js: still logged, alone
    rid = tracking.log_report(store.report_files("^GSPC", out))
    check_run(row(logged(tracking.tracking_uri()), rid), client, store.report_files("^GSPC", out).summary, reports["models"]["^GSPC"])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    "A real `mlflow server` on a free loopback port (SQLite backend, proxied artifacts); yields (URL, its artifact folder)."
    d, port = tmp_path_factory.mktemp("mlflow_server"), free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cmd = [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", f"sqlite:///{d}/server.db", "--artifacts-destination", str(d / "artifacts")]
    url = f"http://127.0.0.1:{port}"
    with start_server(cmd, url + "/health", env, d / "server.log", timeout=180, cwd=d): yield url, d / "artifacts"


def test_a_tracking_server_gets_the_same_runs(reports, mlflow_server, tmp_path, monkeypatch):
    import mlflow
    from lstm_forecast import store, tracking
    url, artifacts = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("LSTM_FORECAST_MLFLOW_DIR", str(tmp_path))  # not used: the server is the store
    assert tracking.enabled() and tracking.tracking_uri() == url
    with tracking.universe_run(["^GSPC", "MSFT"], reports["out"]) as parent:
        kids = {t: tracking.log_report(store.report_files(t, reports["out"]), parent_run_id=parent) for t in ("^GSPC", "MSFT")}
    runs = logged(url)
    assert set(runs.run_id) == {parent, *kids.values()}
    client = mlflow.MlflowClient(url)
    for t, rid in kids.items():
        check_run(row(runs, rid), client,
                  store.report_files(t, reports["out"]).summary, reports["models"][t])
    assert list(tmp_path.iterdir()) == []  # nothing local
    assert {p.name for p in artifacts.rglob("*.json")} == {"^GSPC.json", "MSFT.json"}  # stored by the server
