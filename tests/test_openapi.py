"Property-based checks of the API against its own OpenAPI document (schemathesis): every generated request's answer has a documented status, content type and body."
import pytest, schemathesis
from hypothesis import HealthCheck, given, settings
from lstm_forecast.testing import ARTIFACTS


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    "The app in-process (WSGI) with a report of the sample, a fast model and its own caches; schemathesis reads its document."
    from lstm_forecast.api import Trainer, create_app
    from lstm_forecast.data import load_prices
    from lstm_forecast.testing import report_config, write_report
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_FORECAST_CACHE", str(tmp_path_factory.mktemp("cache")))
    reports, cfg = tmp_path_factory.mktemp("reports"), report_config()
    write_report(reports, load_prices("^GSPC").iloc[-1500:], cfg)
    app = create_app(cfg, reports, source="cache", trainer=Trainer(max_pending=4))
    yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    mp.undo()


def test_every_answer_is_as_documented(api_schema):
    "Each operation: generated tickers and horizons (valid and not), each answer validated (status documented, JSON body of its schema, no 5xx)."
    ran = []
    for result in api_schema.get_all_operations():
        op = result.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            case.call_and_validate()
            ran.append(case.operation.label)
        check()
    counts = {label: ran.count(label) for label in dict.fromkeys(ran)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text("".join(f"{label}: {n} generated requests, every answer as documented\n" for label, n in counts.items()))
    assert len(counts) == 5, counts  # every route but the document's own, which schemathesis leaves out (the API tests fetch it)
