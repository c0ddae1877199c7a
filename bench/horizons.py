"""Skill and band coverage of the 1-30 day path forecasts over the shared stocks (issue 11), and what the paths cost.

    .venv/bin/python bench/horizons.py                 # 30 stocks, last 6 years each, default config, 2 processes
    .venv/bin/python bench/horizons.py --tickers MSFT AAPL --years 4 --timing 2

Each ticker's walk-forward runs in its own process (folds one after another, one torch thread); results are cached
per (ticker, config key, data digest) under $LSTM_FORECAST_CACHE/bench/horizons, so a rerun only computes what changed.
Prints per horizon: the median R² of the path against no change, the tickers significantly better and worse than
no change (DM with HLN and HAC lags, 5 %), the same of the path weighted by its own record (`weights.path_weights`,
scored causally beside it) and the share of origins where it has any weight, and the pooled coverage of the 80 % and
95 % bands over all, calm and volatile origins; then the wall time of `--timing` tickers' walk-forwards with and
without the paths. The walk-forwards are cached (harness horizons/2), the scores computed from them each run; the
table goes to bench/results/horizons_table.csv.
"""
import argparse, pickle, sys, time
from concurrent.futures import ProcessPoolExecutor

from pathlib import Path

import numpy as np, pandas as pd
from lstm_forecast.testing import STOCKS

H_SHOWN = (1, 2, 3, 5, 7, 10, 15, 20, 30)
HARNESS = "horizons/2"  # part of every cache key: the walk-forward itself is cached, its scores are not
RESULTS = Path(__file__).resolve().parent / "results"


def prices_of(ticker: str, years: int) -> pd.DataFrame:
    from lstm_forecast.data import read_price_csv
    px = read_price_csv(STOCKS / f"{ticker}.csv").iloc[-years * 252:]
    px.attrs.update(ticker=ticker, source="csv")
    return px


def config(paths: bool = True):
    from lstm_forecast.config import Config, with_overrides
    return with_overrides(Config(), {"walk_forward.workers": 1, "walk_forward.paths": paths})


def one(ticker: str, years: int) -> dict:
    "Skill and coverage of one ticker's paths (cached)."
    import torch
    torch.set_num_threads(1)
    from lstm_forecast import store
    from lstm_forecast.backtest import horizon_scores
    from lstm_forecast.walk_forward import walk_forward
    px, cfg = prices_of(ticker, years), config()
    path = (store.cache_root() / "bench" / "horizons" /
            f"{ticker}_{store.config_key(cfg)}_{store.data_digest(px)}_{HARNESS.replace('/', '-')}.pkl")
    if path.exists(): run = pickle.loads(path.read_bytes())
    else:
        t0 = time.perf_counter()
        wf = walk_forward(px, cfg, progress=False)
        run = dict(wf=wf, seconds=time.perf_counter() - t0)
        store.write_atomic(path, pickle.dumps(run))
    wf = run["wf"]
    skill, coverage, _, _, weights = horizon_scores(wf)
    return dict(ticker=ticker, skill=skill, coverage=coverage, weighted=(weights > 0).to_numpy().mean(), seconds=run["seconds"],
                folds=len(wf.folds))


def timed(ticker: str, years: int, paths: bool) -> float:
    "Wall time of one ticker's walk-forward with or without the paths (not cached)."
    import torch
    torch.set_num_threads(1)
    from lstm_forecast.walk_forward import walk_forward
    px = prices_of(ticker, years)
    t0 = time.perf_counter()
    walk_forward(px, config(paths), progress=False)
    return time.perf_counter() - t0


def pooled(cov: pd.DataFrame, col: str) -> float:
    "The share inside a band over every ticker's origins: each ticker's share weighted by its origins with a band."
    share, n = cov[col].to_numpy(float), cov["n"].to_numpy(float)
    ok = ~np.isnan(share)
    return float((share[ok] * n[ok]).sum() / n[ok].sum()) if n[ok].sum() else float("nan")


def table(results: list[dict]) -> pd.DataFrame:
    "One row per horizon across tickers."
    rows = []
    sig = lambda t, side: int(((side * t.r2_vs_zero > 0) & (t.dm_p < 0.05)).sum())
    for h in range(1, 31):
        path = pd.DataFrame([r["skill"].loc[(h, "path")] for r in results])
        w = pd.DataFrame([r["skill"].loc[(h, "weighted")] for r in results])
        cov = pd.DataFrame([r["coverage"].loc[h] for r in results])
        rows.append(dict(h=h, tickers=len(path), median_r2=path.r2_vs_zero.median(), better=sig(path, 1), worse=sig(path, -1),
                         w_median_r2=w.r2_vs_zero.median(), w_better=sig(w, 1), w_worse=sig(w, -1),
                         origins=int(cov["n"].sum()), **{c: pooled(cov, c) for c in ("cover80", "calm80", "volatile80", "cover95", "calm95", "volatile95")}))
    return pd.DataFrame(rows).set_index("h")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tickers", nargs="*", help="default: every CSV in ../shared/data/stocks except SPY")
    p.add_argument("--years", type=int, default=6, help="last N years of each ticker (default 6)")
    p.add_argument("--processes", type=int, default=2, help="tickers at once (default 2)")
    p.add_argument("--timing", type=int, default=3, help="tickers timed with and without the paths, one at a time (default 3)")
    a = p.parse_args(argv)
    tickers = a.tickers or sorted(f.stem for f in STOCKS.glob("*.csv") if f.stem != "SPY")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.processes) as ex:
        results = list(ex.map(one, tickers, [a.years] * len(tickers)))
    print(f"{len(tickers)} tickers, last {a.years} years each, default config: {time.perf_counter() - t0:.0f} s wall "
          f"({sum(r['seconds'] for r in results):.0f} s of walk-forwards, cached ones counted as first computed)")
    t = table(results)
    RESULTS.mkdir(exist_ok=True)
    t.to_csv(RESULTS / "horizons_table.csv", float_format="%.6g")
    weighted = pd.Series({r["ticker"]: r["weighted"] for r in results})
    print(f"the weighted path has any weight at {100 * weighted.mean():.1f} % of origin-horizons (tickers: median "
          f"{100 * weighted.median():.1f} %, most {100 * weighted.max():.1f} % on {weighted.idxmax()})")
    fmt = t.loc[list(H_SHOWN)].copy()
    for c in ("cover80", "calm80", "volatile80", "cover95", "calm95", "volatile95"): fmt[c] = (100 * fmt[c]).map("{:.1f}".format)
    for c in ("median_r2", "w_median_r2"): fmt[c] = fmt[c].map("{:+.4f}".format)
    print(fmt.to_string())
    off = t[["cover80", "calm80", "volatile80"]].sub(0.80).abs().max().max(), t[["cover95", "calm95", "volatile95"]].sub(0.95).abs().max().max()
    print(f"largest miss of nominal over h = 1..30: 80 % band {100 * off[0]:.1f} points, 95 % band {100 * off[1]:.1f} points")
    if a.timing:
        with_p, without = [], []
        for tk in tickers[:a.timing]:
            without.append(timed(tk, a.years, False)); with_p.append(timed(tk, a.years, True))
        print(f"walk-forward wall time, {a.timing} tickers one at a time (one process, folds sequential): "
              f"without paths {sum(without):.1f} s, with paths {sum(with_p):.1f} s: +{100 * (sum(with_p) / sum(without) - 1):.1f} %")


if __name__ == "__main__":
    sys.exit(main())
