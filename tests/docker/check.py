"""The container test's checks of the API and of MLflow, from the host: `python3 check.py api|mlflow URL TICKER`.

Standard library only (it runs before any venv exists). Prints one line per check; exits 1 at the first that fails."""
import json, sys, urllib.error, urllib.parse, urllib.request


def call(url: str, body: dict | None = None, timeout: float = 60) -> tuple[int, dict]:
    "(status, JSON body) of a GET, or of a POST of `body` as JSON."
    req = urllib.request.Request(url, None if body is None else json.dumps(body).encode(),
                                 {"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try: return e.code, json.loads(text)
        except ValueError: return e.code, {"text": text[:300]}


def need(ok: bool, what: str, got=None):
    "Print `what` as passed, or fail with it and what was got."
    if not ok: sys.exit(f"check failed: {what}" + ("" if got is None else f"; got {json.dumps(got)[:600]}"))
    print(f"ok: {what}")


def api(base: str, ticker: str):
    "The API answers its health, lists the job's report and forecasts 5 days from it, with the report's band."
    code, health = call(f"{base}/health")
    need(code == 200 and health.get("status") == "ok", "API /health is ok", health)
    code, found = call(f"{base}/api/v1/reports")
    tickers = [r.get("ticker") for r in found.get("reports", [])]
    need(code == 200 and ticker in tickers, f"/api/v1/reports lists {ticker}", found)
    code, fc = call(f"{base}/api/v1/forecast/{urllib.parse.quote(ticker, safe='')}?horizon=5", timeout=600)
    need(code == 200 and fc.get("horizon") == 5 and len(fc.get("path", [])) == 5
         and all(isinstance(r.get("price"), (int, float)) for r in fc["path"]), f"/api/v1/forecast/{ticker}?horizon=5 answers a 5-day path", fc)
    need(fc["band"]["available"] and fc.get("report") is not None, "the forecast has the band of the job's report", fc.get("band"))


def mlflow(base: str, ticker: str):
    "MLflow lists the job's finished run of `ticker` with its params, metrics and the HTML report as an artifact."
    code, exp = call(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=lstm_forecast")
    need(code == 200, "MLflow has the experiment lstm_forecast", exp)
    exp_id = exp["experiment"]["experiment_id"]
    code, found = call(f"{base}/api/2.0/mlflow/runs/search",
                       {"experiment_ids": [exp_id], "filter": f"tags.ticker = '{ticker}'", "max_results": 10})
    runs = found.get("runs", [])
    need(code == 200 and len(runs) == 1, f"runs/search lists one run of {ticker}", found)
    run = runs[0]
    params = {p["key"]: p["value"] for p in run["data"].get("params", [])}
    need(run["info"]["status"] == "FINISHED" and params.get("model.epochs") == "1" and run["data"].get("metrics"),
         "the run is FINISHED, with the job's config (model.epochs 1) and metrics", run["info"])
    code, arts = call(f"{base}/api/2.0/mlflow/artifacts/list?run_id={run['info']['run_id']}&path=report")
    names = [f["path"].rsplit("/", 1)[-1] for f in arts.get("files", [])]
    need(code == 200 and f"{ticker}.html" in names, f"the run's artifacts hold report/{ticker}.html", arts)


if __name__ == "__main__":
    what, base, ticker = sys.argv[1:4]
    {"api": api, "mlflow": mlflow}[what](base.rstrip("/"), ticker)
