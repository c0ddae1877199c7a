"""Latency of warm forecasts from the REST API: `lstm-forecast serve` (waitress) on loopback, offline, the bundled ^GSPC.

The model is trained (or loaded from a fresh cache) by one request first; then the forecasts are timed one at a time
and from several client threads at once, and the percentiles printed.

usage: .venv/bin/python bench/api.py [--fast] [--requests 500] [--threads 8] [--horizon 7] [--reports DIR]
       (default config: about a minute to train the final model, then ~1-2 minutes of requests on 2 cores)"""
import argparse, json, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lstm_forecast.testing import FAST_API as FAST, api_server, get  # the API tests' way of serving it


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
    ap.add_argument("--requests", type=int, default=500, help="forecasts timed from the client threads (default 500)")
    ap.add_argument("--threads", type=int, default=8, help="client threads at once (default 8)")
    ap.add_argument("--horizon", type=int, default=7, help="business days ahead (default 7)")
    ap.add_argument("--reports", help="a report folder for the band (default: none, so no band)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        reports = Path(a.reports) if a.reports else d / "reports"
        reports.mkdir(exist_ok=True)
        with api_server(d, reports, d / "api.log", FAST if a.fast else {}) as base:
            url = f"{base}/api/v1/forecast/%5EGSPC?horizon={a.horizon}"
            cold = timed(url)
            first = get(url)[2]
            seq = [timed(url) for _ in range(min(100, a.requests))]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(a.threads) as ex: conc = list(ex.map(lambda _: timed(url), range(a.requests)))
            wall = time.perf_counter() - t0
            health = get(base + "/health")[2]
    print(f"config: {'tiny (--fast)' if a.fast else 'default'}, model key {first['model']['model_key']}; horizon {a.horizon};"
          f" band {'yes' if first['band']['available'] else 'no'}; cold request (training the final model) {cold:.1f} s;"
          f" trainings {health['trainings']}")
    print(f"{'warm forecasts':<28} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    print(line("one at a time", seq, sum(seq)))
    print(line(f"{a.threads} threads at once", conc, wall))
    print(json.dumps(dict(cold_s=round(cold, 2), seq_p50_ms=round(float(np.median(seq)) * 1000, 1),
                          conc_p50_ms=round(float(np.median(conc)) * 1000, 1))))


if __name__ == "__main__":
    main()
