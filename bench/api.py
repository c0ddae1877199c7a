"""Latency of warm forecasts from the REST API: `lstm-forecast serve` (waitress) on loopback, offline, the bundled ^GSPC.

First a report of ^GSPC with the served model (`run_report` on the whole sample, saved as `lstm-forecast report` saves
it), unless --reports names a folder holding one or --no-report asks for none; then one request per horizon warms
the server, and the forecasts at each horizon are timed one at a time, then from several client threads at once.

usage: .venv/bin/python bench/api.py [--fast] [--requests 500] [--threads 8] [--horizons 7,30] [--reports DIR | --no-report]
       (default config: the report takes a few minutes on 2 cores; --fast: about a minute)"""
import argparse, json, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lstm_forecast.testing import FAST_API as FAST, api_server, get, report_config, write_report  # the API tests' way of serving it


def timed(url: str) -> float:
    "Seconds for one GET of `url`, which must answer 200."
    t0 = time.perf_counter()
    code, _, body = get(url)
    if code != 200: raise SystemExit(f"{url} answered {code}: {body}")
    return time.perf_counter() - t0


def line(name: str, secs: list[float], wall: float) -> str:
    p50, p90, p99 = np.percentile(np.array(secs) * 1000, [50, 90, 99])
    return f"{name:<28} {len(secs):>5} {p50:>8.1f} {p90:>8.1f} {p99:>8.1f} {len(secs) / wall:>8.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help=f"the tests' tiny model {FAST} instead of the default config")
    ap.add_argument("--requests", type=int, default=500, help="forecasts timed from the client threads per horizon (default 500)")
    ap.add_argument("--threads", type=int, default=8, help="client threads at once (default 8)")
    ap.add_argument("--horizons", default="7,30", help="trading days ahead, comma-separated (default 7,30)")
    ap.add_argument("--reports", help="a report folder holding a report of ^GSPC with the served model (default: one is made)")
    ap.add_argument("--no-report", action="store_true", help="no report: forecasts without a band, from the model cache")
    a = ap.parse_args()
    horizons = [int(h) for h in a.horizons.split(",")]
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        reports = Path(a.reports) if a.reports else d / "reports"
        reports.mkdir(exist_ok=True)
        over = FAST if a.fast else {}
        if not (a.reports or a.no_report):
            import os
            from lstm_forecast.config import Config, with_overrides
            from lstm_forecast.data import load_prices
            os.environ["LSTM_FORECAST_CACHE"] = str(d)  # the server's cache too: the report's final model is in it
            t0 = time.perf_counter()
            cfg = report_config() if a.fast else with_overrides(Config(), {"walk_forward.workers": 2})
            write_report(reports, load_prices("^GSPC"), cfg)
            print(f"report of ^GSPC with the served model: {time.perf_counter() - t0:.0f} s")
        with api_server(d, reports, d / "api.log", over) as base:
            rows, first = [], {}
            for h in horizons:
                url = f"{base}/api/v1/forecast/%5EGSPC?horizon={h}"
                cold = timed(url)
                first[h] = get(url)[2]
                seq = [timed(url) for _ in range(min(200, a.requests))]
                t0 = time.perf_counter()
                with ThreadPoolExecutor(a.threads) as ex: conc = list(ex.map(timed, [url] * a.requests))
                rows.append((h, cold, seq, conc, time.perf_counter() - t0))
            health = get(base + "/health")[2]
    f = first[horizons[0]]
    print(f"config: {'tiny (--fast)' if a.fast else 'default'}, model key {f['model']['model_key']}; band {'yes' if f['band']['available'] else 'no'};"
          f" model source {f['model']['source']}; trainings {health['trainings']}")
    print(f"{'warm forecasts':<28} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for h, cold, seq, conc, wall in rows:
        print(f"h = {h}: first request {cold * 1000:.0f} ms")
        print(line(f"  h={h} one at a time", seq, sum(seq)))
        print(line(f"  h={h} {a.threads} threads at once", conc, wall))
    print(json.dumps({f"h{h}": dict(first_ms=round(cold * 1000, 1), **dict(zip(("seq_p50_ms", "seq_p90_ms", "seq_p99_ms"),
                      np.round(np.percentile(np.array(seq) * 1000, [50, 90, 99]), 1).tolist()))) for h, cold, seq, _, _ in rows}))


if __name__ == "__main__":
    main()
