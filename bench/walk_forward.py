"""Walk-forward speed: sequential on one thread against folds in worker processes, on real MSFT prices.

Run by hand (not in CI):  .venv/bin/python bench/walk_forward.py [--years 10] [--workers 2] [--epochs 15]
Prints folds, the wall time of each path, the speed-up measured in this run, peak memory, and checks
that both paths give the same predictions bit for bit.
"""
import argparse, os, resource, sys, time
import numpy as np, torch
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import read_price_csv
from lstm_forecast.walk_forward import walk_forward
from lstm_forecast.testing import STOCKS


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticker", default="MSFT"); ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--workers", type=int, default=os.cpu_count()); ap.add_argument("--epochs", type=int, default=15)
    a = ap.parse_args()
    torch.set_num_threads(1)
    prices = read_price_csv(STOCKS / f"{a.ticker}.csv")
    prices = prices[prices.index > prices.index[-1] - np.timedelta64(365 * a.years + a.years // 4, "D")]
    base = with_overrides(Config(), {"model.epochs": a.epochs, "model.threads": 1})
    print(f"{a.ticker}: {len(prices)} days {prices.index[0]:%Y-%m-%d}..{prices.index[-1]:%Y-%m-%d}; "
          f"epochs {a.epochs}; {os.cpu_count()} cores; torch {torch.__version__}", flush=True)
    runs = {}
    for name, workers in [("sequential, 1 thread", 1), (f"{a.workers} worker processes x 1 thread", a.workers)]:
        t0 = time.perf_counter()
        wf = walk_forward(prices, with_overrides(base, {"walk_forward.workers": workers}), progress=False)
        runs[name] = (time.perf_counter() - t0, wf)
        print(f"{name:>32}: {runs[name][0]:7.1f} s  ({len(wf.folds)} folds, fold median {wf.folds.seconds.median():.2f} s)", flush=True)
    (t_seq, seq), (t_par, par) = runs.values()
    same = seq.predictions.equals(par.predictions)
    kb = lambda who: resource.getrusage(who).ru_maxrss / 1024
    print(f"speed-up: {t_seq / t_par:.2f}x")
    print(f"predictions identical bit for bit: {same}")
    print(f"peak memory: main process {kb(resource.RUSAGE_SELF):.0f} MB, largest worker {kb(resource.RUSAGE_CHILDREN):.0f} MB")
    return 0 if same else 1

if __name__ == "__main__":
    sys.exit(main())
