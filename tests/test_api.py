"The REST API as a client sees it: `lstm-forecast serve` (waitress) on loopback, offline, with a tiny model."
import json, os, subprocess, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd, pytest
from lstm_forecast.config import Config, model_line, with_overrides

from lstm_forecast.testing import ARTIFACTS, CLI, STOCKS, api_server, free_port, get, report_config, write_report
from lstm_forecast.testing import FAST_API as FAST

SLOW = {**FAST, "model.epochs": 150}  # a few seconds of training: long enough to find it running
KEY = "test-key-0123456789abcdef"
ORIGIN = "http://app.example"


def import_prices(cache: Path):
    "MSFT and AAPL from ../shared, and SHORT (MSFT's last 150 days: too few for a model) into the price cache `cache`."
    from lstm_forecast.data import import_csv, read_price_csv
    old = os.environ.get("LSTM_FORECAST_CACHE")
    os.environ["LSTM_FORECAST_CACHE"] = str(cache)
    try:
        for t in ("MSFT", "AAPL"): import_csv(STOCKS / f"{t}.csv", t)
        short = cache / "short.csv"
        read_price_csv(STOCKS / "MSFT.csv").iloc[-150:].to_csv(short)
        import_csv(short, "SHORT")
    finally:
        if old is None: os.environ.pop("LSTM_FORECAST_CACHE")
        else: os.environ["LSTM_FORECAST_CACHE"] = old


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    "A price cache (MSFT, AAPL, SHORT) and a report folder: a real walk-forward report of ^GSPC with the served model, a corrupt one, one without its returns."
    from lstm_forecast import store
    from lstm_forecast.data import load_prices
    cache, reports = tmp_path_factory.mktemp("cache"), tmp_path_factory.mktemp("reports")
    import_prices(cache)
    summary = write_report(reports, load_prices("^GSPC"), report_config())  # the prices the server loads: its band serves them
    store.write_atomic(reports / "BAD.json", '{"schema": 0}')  # from an older version: unreadable
    store.write_atomic(reports / "BAD.html", "<html></html>")
    old = {**json.loads(summary.to_json()), "ticker": "OLD"}  # a summary from before the returns file (no page: not listed)
    store.write_atomic(store.report_files("OLD", reports).summary, json.dumps(old))
    for t, stray in (("EVIL", {"ticker": "<script>alert(1)</script>"}), ("WHEN", {"generated_at": 1764374400})):  # stray summaries beside pages
        store.write_atomic(store.report_files(t, reports).summary, json.dumps({**json.loads(summary.to_json()), **stray}))
        store.write_atomic(store.report_files(t, reports).html, "<html></html>")
    return dict(cache=cache, reports=reports, summary=summary)


@pytest.fixture(scope="module")
def server(data, tmp_path_factory):
    with api_server(data["cache"], data["reports"], tmp_path_factory.mktemp("log") / "api.log") as url: yield url


@pytest.fixture(scope="module")
def keyed(data, tmp_path_factory):
    "A server with an API key, one allowed CORS origin, one pending training at most, and a slower model; its own cache."
    cache = tmp_path_factory.mktemp("cache2")
    import_prices(cache)
    env = dict(LSTM_FORECAST_API_KEY=KEY, LSTM_FORECAST_CORS_ORIGINS=ORIGIN)
    with api_server(cache, data["reports"], tmp_path_factory.mktemp("log2") / "api.log", SLOW, env,
                    ["--max-trainings", "1"]) as url: yield url


def check_body(doc: dict, response: dict, body):
    "Validate `body` against the documented response's JSON Schema (draft 2020-12, its $refs resolved in `doc`); a jsonschema error when it does not fit."
    import jsonschema
    schema = {**response["content"]["application/json"]["schema"], "components": doc["components"]}  # the refs point into #/components
    jsonschema.Draft202012Validator(schema).validate(body)


# what answers each documented (route, status) on the open server; 401 and 503 are asked of the keyed server
CASES = {
    ("/health", "200"): ["/health"],
    ("/api/v1/forecast/{ticker}", "200"): ["/api/v1/forecast/%5EGSPC", "/api/v1/forecast/%5Egspc?horizon=30"],
    ("/api/v1/forecast/{ticker}", "400"): ["/api/v1/forecast/BAD%20T", "/api/v1/forecast/%5EGSPC?horizon=0",
                                           "/api/v1/forecast/%5EGSPC?horizon=31", "/api/v1/forecast/%5EGSPC?horizon=seven",
                                           "/api/v1/forecast/%5EGSPC?horizon=2.5"],
    ("/api/v1/forecast/{ticker}", "404"): ["/api/v1/forecast/NOSUCH"],
    ("/api/v1/forecast/{ticker}", "422"): ["/api/v1/forecast/SHORT"],
    ("/api/v1/forecast/{ticker}", "500"): [],  # a bug: nothing here should produce it (its shape is checked on reports/BAD)
    ("/api/v1/reports", "200"): ["/api/v1/reports"],
    ("/api/v1/reports", "500"): [],
    ("/api/v1/reports/{ticker}", "200"): ["/api/v1/reports/%5EGSPC"],
    ("/api/v1/reports/{ticker}", "400"): ["/api/v1/reports/BAD%20T"],
    ("/api/v1/reports/{ticker}", "404"): ["/api/v1/reports/MSFT"],
    ("/api/v1/reports/{ticker}", "500"): ["/api/v1/reports/BAD"],
    ("/api/v1/reports/{ticker}/returns", "200"): ["/api/v1/reports/%5EGSPC/returns"],
    ("/api/v1/reports/{ticker}/returns", "400"): ["/api/v1/reports/BAD%20T/returns"],
    ("/api/v1/reports/{ticker}/returns", "404"): ["/api/v1/reports/MSFT/returns", "/api/v1/reports/OLD/returns"],
    ("/api/v1/reports/{ticker}/returns", "500"): ["/api/v1/reports/BAD/returns"],
    ("/api/v1/openapi.json", "200"): ["/api/v1/openapi.json"],
}
KEYED = {"401", "503"}


def test_every_documented_route_answers_as_documented(server, data):
    _, _, doc = get(server + "/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.1")
    documented = {(path, status) for path, ops in doc["paths"].items() for status in ops["get"]["responses"]}
    assert {k for k in documented if k[1] not in KEYED} == set(CASES)
    assert all(list(ops) == ["get"] for ops in doc["paths"].values())
    from openapi_spec_validator import validate
    validate(doc)  # the document itself is valid OpenAPI 3.1
    checked = 0
    for (path, status), urls in CASES.items():
        for url in urls:
            code, _, body = get(server + url)
            assert code == int(status), (url, code, body)
            check_body(doc, doc["paths"][path]["get"]["responses"][status], body)  # every field, every type
            checked += 1
            if code >= 400: assert body["error"].strip() and "Traceback" not in body["error"], body
    assert get(server + "/api/v1/openapi.json")[2] == doc
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "openapi_validation.txt").write_text(f"openapi-spec-validator: valid OpenAPI {doc['openapi']}\n"
                                                      f"jsonschema: {checked} answers of {len(CASES)} (route, status) cases valid\n")


def test_forecast_has_the_band_model_and_record_of_its_report(server, data):
    code, _, f = get(server + "/api/v1/forecast/%5EGSPC?horizon=7")
    assert code == 200 and f["ticker"] == "^GSPC" and f["horizon"] == 7 and len(f["path"]) == 7
    s = data["summary"]
    assert f["band"]["available"] and "adaptive conformal" in f["band"]["note"]
    assert all(p["lo95"] < p["lo80"] < p["price"] < p["hi80"] < p["hi95"] for p in f["path"])
    assert f["model"]["model_key"] == s.model_key == f["report"]["model_key"]
    cfg = with_overrides(Config(), FAST)
    assert (f["model"]["preset"], f["model"]["description"]) == ("custom", model_line(cfg))  # which model answered
    assert f["model"]["train_window"][1] < f["origin"] == s.last_data_date
    assert f["model"]["source"] == "report"  # the report's own forecast: same model, same prices
    assert {k: f["record"][k] for k in ("h", "n", "r2_vs_zero", "cover")} == {"h": 7, "n": s.horizon(7).n,
                                                                              "r2_vs_zero": s.horizon(7).r2_vs_zero, "cover": s.horizon(7).cover}
    code, _, msft = get(server + "/api/v1/forecast/MSFT?horizon=2")
    assert code == 200 and msft["band"]["available"] and msft["record"] is None  # no report: the price history's band
    assert msft["band"]["note"].startswith("80 %/95 % bands from the ticker's own price history"), msft["band"]["note"]
    assert "lstm-forecast report MSFT" in msft["band"]["note"]


def test_reports_come_from_the_store(server, data):
    _, _, listed = get(server + "/api/v1/reports")
    assert listed["count"] == 1 and [r["ticker"] for r in listed["reports"]] == ["^GSPC"]  # BAD is unreadable: left out
    assert get(server + "/api/v1/reports/%5EGSPC")[2] == json.loads(data["summary"].to_json())


def test_a_stray_summary_is_left_out_of_the_listing(server):
    status, _, listed = get(server + "/api/v1/reports")
    assert status == 200 and [r["ticker"] for r in listed["reports"]] == ["^GSPC"], listed  # EVIL (a script) and WHEN (a number) skipped
    assert "alert(1)" not in json.dumps(listed)


def test_returns_are_the_reports_daily_returns_in_split_orient(server, data):
    from lstm_forecast import store
    from lstm_forecast.run import Run
    run, files = Run.load(data["reports"], "^GSPC"), store.report_files("^GSPC", data["reports"])
    want = run.backtest.returns.rename_axis("date").assign(benchmark=float("nan"))  # the report has no benchmark
    pd.testing.assert_frame_equal(pd.read_parquet(files.returns), want)
    pd.testing.assert_frame_equal(pd.read_csv(files.returns_csv, index_col="date", parse_dates=True), want, check_exact=True,
                                  check_index_type=False)
    code, _, body = get(server + "/api/v1/reports/%5EGSPC/returns")
    assert code == 200 and list(body) == ["columns", "index", "data"]
    assert body["columns"] == ["position", "gross", "cost", "net", "buy_hold", "benchmark"] and all(r[-1] is None for r in body["data"])
    got = pd.DataFrame(**body).astype(float)
    pd.testing.assert_frame_equal(got.set_axis(pd.DatetimeIndex(got.index, name="date")), want, check_exact=True,
                                  check_index_type=False)  # exact: JSON keeps every digit
    code, _, old = get(server + "/api/v1/reports/OLD/returns")
    assert code == 404 and old["error"] == ("The report of OLD has no returns file (it is from an older version): build it again with"
                                            " `lstm-forecast report OLD`."), old


def test_errors_are_one_json_sentence(server):
    for url, code in [("/nowhere", 404), ("/api/v1/forecast/", 404), ("/api/v1/reports/BAD", 500)]:
        status, _, body = get(server + url)
        assert status == code and list(body) == ["error"] and "Traceback" not in body["error"], body
    req = urllib.request.Request(server + "/api/v1/reports", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as e: urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 405 and "every route answers GET" in json.loads(e.value.read())["error"]
    assert set(e.value.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}  # RFC 9110: a 405 says what is allowed


def test_thirty_concurrent_requests_for_an_untrained_model_train_it_once(server, data):
    models = data["cache"] / "models" / "AAPL"  # asked for by this test only
    assert not list(models.glob("*.pt"))
    before = get(server + "/health")[2]["trainings"]
    with ThreadPoolExecutor(30) as ex:
        answers = list(ex.map(lambda _: get(server + "/api/v1/forecast/AAPL?horizon=5"), range(30)))
    assert [a[0] for a in answers] == [200] * 30
    assert len({json.dumps(a[2]["path"]) for a in answers}) == 1  # one model, one path
    health = get(server + "/health")[2]
    assert (health["trainings"] - before, health["pending"]) == (1, 0)
    assert len(list(models.glob("*.pt"))) == 1


def test_five_hundred_warm_requests_from_eight_threads_all_succeed(server):
    assert get(server + "/api/v1/forecast/%5EGSPC?horizon=1")[0] == 200  # trained (or loaded) before the run
    before = get(server + "/health")[2]
    urls = [f"{server}/api/v1/forecast/%5EGSPC?horizon={(1, 3, 7)[i % 3]}" for i in range(500)]
    with ThreadPoolExecutor(8) as ex: codes = list(ex.map(lambda u: get(u)[0], urls))
    assert codes.count(200) == 500
    after = get(server + "/health")[2]
    assert (after["trainings"], after["loads"]) == (before["trainings"], before["loads"])  # warm: from memory


def test_no_cors_headers_unless_configured(server):
    _, head, _ = get(server + "/api/v1/reports", {"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in head


def test_a_key_is_required_when_set_and_compared_exactly(keyed):
    assert get(keyed + "/health")[0] == 200  # health checks need no key
    for path in ["/api/v1/reports", "/api/v1/reports/%5EGSPC", "/api/v1/forecast/%5EGSPC", "/api/v1/openapi.json"]:
        for headers in ({}, {"X-API-Key": KEY[:-1]}, {"X-API-Key": KEY + "x"}):
            code, _, body = get(keyed + path, headers)
            assert code == 401 and "X-API-Key" in body["error"], (path, headers, body)
    code, _, doc = get(keyed + "/api/v1/openapi.json", {"X-API-Key": KEY})
    assert code == 200 and all(ops["get"]["security"] == [{"ApiKey": []}] for p, ops in doc["paths"].items() if p.startswith("/api/"))
    assert all("401" in ops["get"]["responses"] for p, ops in doc["paths"].items() if p.startswith("/api/"))


def test_cors_allows_the_configured_origin_only(keyed):
    _, head, _ = get(keyed + "/api/v1/reports", {"Origin": ORIGIN, "X-API-Key": KEY})
    assert head.get("Access-Control-Allow-Origin") == ORIGIN
    code, head, _ = get(keyed + "/health", {"Origin": ORIGIN})  # a browser's health check from that origin
    assert code == 200 and head.get("Access-Control-Allow-Origin") == ORIGIN
    pre = urllib.request.Request(keyed + "/api/v1/forecast/%5EGSPC", method="OPTIONS", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"})
    with urllib.request.urlopen(pre, timeout=60) as r:  # the preflight needs no key and trains nothing
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "x-api-key" in r.headers["Access-Control-Allow-Headers"].lower() and "GET" in r.headers["Access-Control-Allow-Methods"]
    _, head, _ = get(keyed + "/api/v1/reports", {"Origin": "http://elsewhere.example", "X-API-Key": KEY})
    assert "Access-Control-Allow-Origin" not in head


def test_a_full_training_queue_answers_503_with_retry_after(keyed):
    key = {"X-API-Key": KEY}
    with ThreadPoolExecutor(1) as ex:
        first = ex.submit(get, keyed + "/api/v1/forecast/%5EGSPC", key)  # trains the slow model
        for _ in range(1200):
            if get(keyed + "/health")[2]["pending"] == 1 or first.done(): break
            time.sleep(0.05)
        assert not first.done(), "the first training ended before it could be seen pending"
        code, head, body = get(keyed + "/api/v1/forecast/MSFT", key)
        assert code == 503 and int(head["Retry-After"]) >= 1 and "ask again" in body["error"], (code, head, body)
        code, _, gspc = first.result()
        assert code == 200
    # this server's model (more epochs) is not the report's: the price history's band, and the report's record is not its record
    assert gspc["report"]["model_key"] != gspc["model"]["model_key"] and "another model" in gspc["band"]["note"]
    assert (gspc["band"]["available"], gspc["record"]) == (True, None) and "own price history" in gspc["band"]["note"]
    assert get(keyed + "/api/v1/forecast/MSFT", key)[0] == 200  # the queue is free again


@pytest.mark.parametrize("key", [None, "too-short"])
def test_serving_beyond_loopback_needs_a_key(key, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LSTM_FORECAST_API_KEY"}
    if key: env["LSTM_FORECAST_API_KEY"] = key
    r = subprocess.run([str(CLI), "serve", "--host", "0.0.0.0", "--port", str(free_port())], env=env, capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "LSTM_FORECAST_API_KEY" in r.stderr, r.stderr


def test_a_hundred_and_ten_slow_clients_leave_health_answering(tmp_path):
    "110 sockets trickling a header held waitress' 100 connections: /health waited for them; the limit is 500 now."
    import socket
    with api_server(tmp_path / "cache", tmp_path / "reports", tmp_path / "api.log") as url:
        port, socks = int(url.rsplit(":", 1)[1]), []
        try:
            for _ in range(110):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # a header never finished
                socks.append(s)
            time.sleep(1)  # all accepted (or queued) by now
            for s in socks: s.sendall(b"a")  # still trickling
            t0 = time.monotonic()
            code, _, body = get(url + "/health", timeout=5)
            took = time.monotonic() - t0
        finally:
            for s in socks: s.close()
    assert code == 200 and took < 1, (code, took)
