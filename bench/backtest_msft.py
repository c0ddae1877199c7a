"""Time the full walk-forward backtest on real prices and print what it found.

usage (from the repo root): .venv/bin/python bench/backtest_msft.py [--ticker MSFT] [--years 10] [--epochs N] [--workers N]

Reads ../shared/data/stocks/<TICKER>.csv (relative to the repo root) with `read_price_csv` and keeps the last
`years * 252` days with a known next-day target plus the feature warm-up before them (trading days, not calendar
years), then runs `run_backtest` with `Config()` (or only `model.epochs` / `walk_forward.workers` changed), one torch
thread per process.
Not part of CI: the default run takes a few minutes.
"""
from __future__ import annotations
import argparse, os, resource, sys, time
import numpy as np, pandas as pd, torch
from lstm_forecast.backtest import run_backtest
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import check_history, read_price_csv
from lstm_forecast.store import config_key
from lstm_forecast.testing import STOCKS

DAYS_PER_YEAR = 252


def last_years(prices: pd.DataFrame, years: float, cfg: Config) -> pd.DataFrame:
    "The last `years * 252` days with a known target, plus the feature warm-up rows and the final (target-less) row."
    return prices.iloc[-(round(years * DAYS_PER_YEAR) + cfg.features.warmup + 1):]


def fmt(x) -> str:
    "Numbers in a table: 4 significant digits, small ones in scientific notation."
    if isinstance(x, (bool, np.bool_)): return str(x)
    if isinstance(x, (int, np.integer)): return str(x)
    if isinstance(x, (float, np.floating)):
        if np.isnan(x): return "nan"
        return f"{x:.3e}" if x != 0 and abs(x) < 1e-3 else f"{x:.4g}"
    return str(x)


def table(df: pd.DataFrame) -> str:
    return df.to_string(formatters={c: fmt for c in df.columns})


def section(title: str):
    print(f"\n== {title} " + "=" * max(0, 72 - len(title)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticker", default="MSFT", help="a CSV name in ../shared/data/stocks (default MSFT)")
    ap.add_argument("--years", type=float, default=10, help="trading years (x 252 days) of targets to use (default 10)")
    ap.add_argument("--epochs", type=int, default=None, help="override model.epochs for a quick check")
    ap.add_argument("--workers", type=int, default=None, help="override walk_forward.workers (1: sequential)")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    over = {k: v for k, v in {"model.epochs": args.epochs, "walk_forward.workers": args.workers}.items() if v is not None}
    cfg = with_overrides(Config(), over)
    path = STOCKS / f"{args.ticker}.csv"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in STOCKS.glob("*.csv")))
        print(f"no prices for {args.ticker!r} in {STOCKS}: choose one of {have}", file=sys.stderr)
        return 2
    prices = check_history(last_years(read_price_csv(path), args.years, cfg), cfg, args.ticker)

    days = len(prices) - cfg.features.warmup - 1
    short = "" if days == round(args.years * DAYS_PER_YEAR) else f", all there is: {args.years:g} years were asked for"
    print(f"ticker {args.ticker}: {len(prices)} rows {prices.index[0]:%Y-%m-%d}..{prices.index[-1]:%Y-%m-%d} "
          f"({days} target days = {days / DAYS_PER_YEAR:.2f} x {DAYS_PER_YEAR}{short}; + {cfg.features.warmup} "
          f"warm-up rows + 1 final row without a target)")
    print(f"config key {config_key(cfg)}: epochs {cfg.model.epochs}, seq_len {cfg.model.seq_len}, hidden {cfg.model.hidden}, "
          f"layers {cfg.model.layers}, train/test/step {cfg.walk_forward.train}/{cfg.walk_forward.test}/"
          f"{cfg.walk_forward.step}, regime {cfg.regime.method}, workers {cfg.walk_forward.workers} "
          f"(0 = one per core), torch threads {cfg.model.threads} per process, torch {torch.__version__}")
    load0 = os.getloadavg()
    print(f"load average at start (1/5/15 min): {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f} on {os.cpu_count()} cores")

    stamps = []
    def progress(msg):
        stamps.append(time.perf_counter())
        print(f"  {msg}", flush=True)

    t0 = time.perf_counter()
    bt = run_backtest(prices, cfg, progress=progress)
    total = time.perf_counter() - t0
    wf_wall = stamps[-1] - t0  # the last fold line comes when the last fold is done
    mb = lambda who: resource.getrusage(who).ru_maxrss / 1024  # kB on Linux
    load1 = os.getloadavg()
    folds = bt.wf.folds

    section("timing")
    print(f"total wall time          {total:8.1f} s")
    print(f"walk-forward wall time   {wf_wall:8.1f} s")
    print(f"evaluation wall time     {total - wf_wall:8.1f} s")
    print(f"folds                    {len(folds):8d}   ({len(bt.wf.predictions)} out-of-sample days, "
          f"{folds.test_start.iloc[0]:%Y-%m-%d}..{folds.test_end.iloc[-1]:%Y-%m-%d})")
    print(f"wall time per fold       {wf_wall / len(folds):8.2f} s   (walk-forward wall / folds, all processes together)")
    print(f"peak memory (maxrss)     {mb(resource.RUSAGE_SELF):8.0f} MB main process, "
          f"{mb(resource.RUSAGE_CHILDREN):.0f} MB largest worker process")
    print(f"load average at end      {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"per-fold seconds (training + prediction, timed inside each fold): median {folds.seconds.median():.2f}, "
          f"min {folds.seconds.min():.2f}, max {folds.seconds.max():.2f}")

    section("forecast skill, out of sample (r2_oos and dm vs the zero forecast)")
    print(table(bt.skill))
    section("the model against each baseline (Diebold-Mariano, squared error)")
    print(table(bt.versus))
    ic = bt.ic_folds.drop(index="all")
    print(f"\nIC per fold: mean {ic.ic.mean():.4f}, positive in {(ic.ic > 0).sum()}/{len(ic)} folds; "
          f"pooled IC {bt.ic_folds.loc['all', 'ic']:.4f}, rank IC {bt.ic_folds.loc['all', 'rank_ic']:.4f}")

    section("strategy (simple daily returns booked on the decision day)")
    print(table(bt.strategy.T))
    section("ablation (net of costs)")
    print(table(bt.ablation.T))
    section("verdict")
    print(bt.verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
