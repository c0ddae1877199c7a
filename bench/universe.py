"""Time a universe of research reports: one after another in this process against a Dask LocalCluster.

usage (from the repo root): .venv/bin/python bench/universe.py [--tickers AAPL MSFT ...] [--years 10] [--workers 2] [--epochs N]

Imports the last `years * 252` days (plus the feature warm-up) of each ../shared/data/stocks/<TICKER>.csv into a
temporary price cache, then builds every ticker's report twice with the default config (or only `model.epochs`
changed), each into its own temporary directory and forced: sequentially with `report_task` (one kernel at a time,
`walk_forward.workers=1`, one torch thread), and with `run_universe` on a LocalCluster of `--workers` single-threaded
worker processes (cluster start-up included). Prints the wall times, the speed-up, and whether both runs found the
same numbers. Not part of CI: ten tickers of 10 years take about 30 minutes on two cores; `--years 4` about 12.
"""
from __future__ import annotations
import argparse, json, os, sys, tempfile, time
from pathlib import Path
import pandas as pd
from lstm_forecast.testing import STOCKS

DAYS_PER_YEAR = 252
TEN = ["AAPL", "AMZN", "BA", "BAC", "CAT", "CSCO", "DIS", "GE", "GOOGL", "GS"]
KEYS = ["strategy_sharpe", "buy_hold_sharpe", "hit_rate", "r2_oos", "dm_p", "data_digest"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickers", nargs="+", default=TEN, help="CSV names in ../shared/data/stocks (default: ten)")
    ap.add_argument("--years", type=float, default=10, help="trading years (x 252 days) of targets per ticker (default 10)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster (default 2)")
    ap.add_argument("--epochs", type=int, default=None, help="override model.epochs for a quick check")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_universe_"))
    os.environ["LSTM_FORECAST_CACHE"] = str(tmp / "cache")  # before any worker starts: they inherit it
    from lstm_forecast.config import Config, with_overrides
    from lstm_forecast.data import import_csv
    from lstm_forecast.universe import report_task, run_universe, task_overrides
    over = {} if args.epochs is None else {"model.epochs": args.epochs}
    cfg = with_overrides(Config(), over)
    for t in args.tickers:
        csv = tmp / f"{t}.csv"
        pd.read_csv(STOCKS / f"{t}.csv").iloc[-(round(args.years * DAYS_PER_YEAR) + cfg.features.warmup + 1):].to_csv(csv, index=False)
        import_csv(csv, t)
    print(f"{len(args.tickers)} tickers x {args.years:g} years, config {'default' if not over else over}, {os.cpu_count()} cores;"
          f" cache and reports in {tmp}", flush=True)

    seq, t0 = {}, time.perf_counter()
    for i, t in enumerate(args.tickers, 1):
        r = report_task(t, tmp / "sequential", overrides=task_overrides(over), force=True)
        seq[t] = r
        print(f"sequential {i}/{len(args.tickers)} {t}: {r['status']} in {r['seconds']:.0f} s {r['reason'] if r['status'] == 'failed' else ''}", flush=True)
    t_seq = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = run_universe(args.tickers, tmp / "dask", overrides=over, force=True, workers=args.workers)
    t_dask = time.perf_counter() - t0

    same = []
    for t in args.tickers:
        a, b = (tmp / d / f"{t}.json" for d in ("sequential", "dask"))
        if a.exists() and b.exists():
            sa, sb = json.loads(a.read_text()), json.loads(b.read_text())
            same.append(all(sa[k] == sb[k] for k in KEYS))
    ok = sum(r["status"] == "built" for r in seq.values()), int((res.status == "built").sum())
    print(f"\nsequential: {t_seq:.0f} s for {ok[0]} reports ({t_seq / max(ok[0], 1):.0f} s each)")
    print(f"Dask, LocalCluster of {args.workers} workers: {t_dask:.0f} s for {ok[1]} reports (cluster start-up included)")
    print(f"speed-up: {t_seq / t_dask:.2f}x on {args.workers} workers")
    print(f"same numbers in both runs ({', '.join(KEYS)}): {sum(same)} of {len(same)} tickers")
    return 0


if __name__ == "__main__":  # Dask's worker processes import this file again: nothing may run at import
    sys.exit(main())
