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
    models = {a.path for a in client.list_artifacts(rid, "model")}
    if model is None: assert models == set()
    else:  # the pyfunc model, the final model's weights file among its artifacts
        assert {"model/MLmodel", "model/python_model.pkl", "model/input_example.json", "model/artifacts"} <= models, models
        assert {a.path for a in client.list_artifacts(rid, "model/artifacts")} == {f"model/artifacts/{x}" for x in (model.name, "config.json", "today.json")}
        assert Path(client.download_artifacts(rid, f"model/artifacts/{model.name}")).read_bytes() == model.read_bytes()


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
    assert {p.name for p in artifacts.rglob("report/*.json")} == {"^GSPC.json", "MSFT.json"}  # stored by the server


def test_a_tracked_report_registers_a_model_that_forecasts_as_the_cli_does(mlflow_server, tmp_path, monkeypatch):
    "`report --track --register`: the run spans the job, holds the steps and the notebook; its model predicts what `forecast` prints."
    import subprocess, time
    import mlflow
    import numpy as np
    from lstm_forecast.data import load_prices
    from lstm_forecast.run import Run
    from lstm_forecast.testing import CLI, FAST_API, stock_prices
    from lstm_forecast.tracking import KIND, KIND_TAG, PRICE_COLUMNS, model_input
    url, _ = mlflow_server
    cache, out, csv, name = tmp_path / "cache", tmp_path / "reports", tmp_path / "mlf.csv", "lstm-forecast-mlf"
    stock_prices("MSFT", 700).to_csv(csv)  # a short history: the report and `forecast` read the same prices, all of them
    env = {**os.environ, "LSTM_FORECAST_CACHE": str(cache), "MLFLOW_TRACKING_URI": url, "MLFLOW_DISABLE_TELEMETRY": "true"}
    monkeypatch.setenv("LSTM_FORECAST_CACHE", str(cache))
    sets = [a for k, v in {**FAST_API, "walk_forward.workers": 1, "regime.method": "trend"}.items() for a in ("--set", f"{k}={v}")]
    subprocess.run([str(CLI), "import-csv", str(csv), "MLF"], env=env, check=True, capture_output=True)
    t0 = time.time()
    rep = subprocess.run([str(CLI), "report", "MLF", "--benchmark", "none", "--quiet", *sets, "--out", str(out), "--track", "--register", name],
                         env=env, capture_output=True, text=True, timeout=300)
    t1 = time.time()
    assert rep.returncode == 0, rep.stderr[-3000:]
    cli = subprocess.run([str(CLI), "forecast", "MLF", "--format", "json", "--quiet", "--out", str(out), *sets], env=env,
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-3000:]
    want = pd.DataFrame(json.loads(cli.stdout)["path"]).set_index("date").astype(float)
    assert json.loads(cli.stdout)["band"]["available"] and want.lo80.notna().all()  # the report's band, not the history's
    client = mlflow.MlflowClient(url)
    mlflow.set_tracking_uri(url)
    version = client.get_model_version(name, "1")
    rid, prices = version.run_id, load_prices("MLF")
    for uri in (f"models:/{name}/1", f"runs:/{rid}/model"):
        model = mlflow.pyfunc.load_model(uri)
        assert model.metadata.get_input_schema().input_names() == list(PRICE_COLUMNS)
        got = model.predict(model_input(prices))
        assert list(got.date.dt.strftime("%Y-%m-%d")) == list(want.index)
        for c in ("price", "model_price", "weight", "daily_return", "cumulative_return", "lo80", "hi80", "lo95", "hi95"):
            np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=f"{uri} {c}")
        other = model.predict(model_input(prices.iloc[:-1]), params={"horizon": 3})  # not the report's prices: no band, no weight
        assert len(other) == 3 and other[["lo80", "hi80", "lo95", "hi95"]].isna().all().all() and (other.weight == 0).all()
        assert (other.price == prices.Close.iloc[-2]).all() and other.model_price.notna().all()  # weight 0: no change, the model's path beside it
    run, summary = client.get_run(rid), json.loads((out / "MLF.json").read_text())
    start, end = run.info.start_time / 1000, run.info.end_time / 1000
    assert t0 <= start <= pd.Timestamp(summary["generated_at"]).timestamp() + 1 and end <= t1  # the run spans the job ...
    assert end - start >= 0.7 * (t1 - t0), (end - start, t1 - t0)  # ... not the moment after it
    hs = [r["h"] for r in summary["horizons"]]
    assert len(hs) == Run.load(out, "MLF", frames=False).cfg.forecast.max_horizon
    for k in ("h_n", "h_r2_vs_zero", "h_hit_rate", "h_beat_zero", "h_weight", "h_cover80", "h_calm95", "h_volatile80", "h_width95", "h_winkler80"):
        assert sorted(m.step for m in client.get_metric_history(rid, k)) == hs, k
    folds = list(Run.load(out, "MLF").backtest.wf.folds.index)
    for k in ("fold_best_epoch", "fold_final_loss", "fold_seconds", "fold_ic", "fold_rank_ic"):
        assert sorted(m.step for m in client.get_metric_history(rid, k)) == folds, k
    assert "report/MLF.ipynb" in {a.path for a in client.list_artifacts(rid, "report")}
    assert client.get_experiment(run.info.experiment_id).tags[KIND_TAG] == KIND
    print(f"\nmlflow: run {rid} {end - start:.1f} s of a {t1 - t0:.1f} s job; models:/{name}/1 and runs:/{rid}/model predict"
          f" {len(got)} days as `lstm-forecast forecast MLF` does (max |diff| of the band "
          f"{np.abs(got[['lo80', 'hi95']].to_numpy() - want[['lo80', 'hi95']].to_numpy()).max():.1e})")


def test_a_broken_tracking_store_never_takes_the_report_down(tmp_path):
    "A store left half set up by a kill (a leftover `_alembic_tmp_experiments`): the report and index are written, exit 3, the store named."
    import sqlite3, subprocess
    from lstm_forecast.cli import TRACKING_FAILED
    from lstm_forecast.store import INDEX, report_files
    from lstm_forecast.testing import CLI, FAST_API, OFFLINE
    db, out = tmp_path / "mlflow" / "mlruns.db", tmp_path / "reports"
    db.parent.mkdir()
    with sqlite3.connect(db) as c: c.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")  # as a kill mid-migration leaves it
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(OFFLINE, LSTM_FORECAST_CACHE=str(tmp_path / "cache"), LSTM_FORECAST_MLFLOW_DIR=str(db.parent), MLFLOW_DISABLE_TELEMETRY="true")
    sets = [a for k, v in {**FAST_API, "walk_forward.workers": 1, "regime.method": "trend", "walk_forward.test": 252,
                           "walk_forward.step": 252}.items() for a in ("--set", f"{k}={v}")]
    res = subprocess.run([str(CLI), "report", "^GSPC", "--start", "2016-01-01", "--benchmark", "none", "--quiet", *sets, "--out", str(out),
                          "--track"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == TRACKING_FAILED == 3 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert report_files("^GSPC", out).summary.exists() and 'href="%5EGSPC.html"' in (out / INDEX).read_text()
    assert res.stdout.splitlines()[-1] == f"index: {(out / INDEX).resolve()}", res.stdout
    assert res.stderr.splitlines()[-1] == (f"error: MLflow's store '{db}' is broken (OperationalError: (sqlite3.OperationalError) table"
                                           " _alembic_tmp_experiments already exists): move it away or repair it, then track again;"
                                           " the reports and the index were written."), res.stderr[-3000:]
