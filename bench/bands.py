"""Band methods side by side over the shared stocks (issue 20): calibration first, sharpness second.

    .venv/bin/python bench/bands.py                      # 30 stocks, last 8 years each (6 scored), every method, 2 processes
    .venv/bin/python bench/bands.py --tickers MSFT AAPL --methods aci garch-t

Every method of `volatility.METHODS` bands the same errors at the same origins: those of the no-change forecast (the
realized h-day log return). The product's bands are built on its path's errors instead; the default model (anchor-stop)
departs from no change by hundredths of a percent, so no change stands in here and no walk-forward is needed (each
report scores the product's own errors). The first two years of each ticker warm the models up (a fit needs 250
returns, a conformal band 250 realized errors); the scored origins are those where every method has a band.

Per method, ticker, h in H_SHOWN and level: coverage over all, calm and volatile origins (the 60-day volatility at the
origin at or below its median: calm), mean width and Winkler score (log-return units), Kupiec and Christoffersen
(independence, conditional coverage) p-values on non-overlapping origins (every h-th), QLIKE of the variance the inner
band implies (its width over 2 z, normal), and the method's compute seconds. Cached per (method, ticker, data digest)
under $LSTM_FORECAST_CACHE/bench/bands; the tables go to bench/results/bands_*.csv.

The rule (fixed before the results): the default band is the method with the lowest median, over tickers, horizons
and levels, of its Winkler score relative to GARCH(1,1)-t's on the same ticker, h and level, among the methods whose
median coverage over tickers is within 2 points of nominal at every h and level, in all, calm and volatile halves;
ties (within 0.5 %) go to the cheaper. The aim: a Winkler score below GARCH(1,1)-t's on at least 90 % of
ticker-horizons, and no ticker-horizon more than 3 points from nominal.
"""
import argparse, json, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np, pandas as pd
from lstm_forecast.store import level_label
from lstm_forecast.testing import STOCKS, stock_prices

H_SHOWN = (1, 2, 3, 5, 7, 10, 15, 20, 30)
HARNESS = "bands/2"  # part of every cache key: change it when the scoring changes
RESULTS = Path(__file__).resolve().parent / "results"
ETFS = ("SPY",)  # in the shared folder besides the 30 stocks; not a stock


def score(method: str, ticker: str, years: int) -> pd.DataFrame:
    "One (method, ticker): a row per h and level (cached)."
    from lstm_forecast import store
    from lstm_forecast.bands import realized_returns
    from lstm_forecast.config import ForecastConfig
    from lstm_forecast.features import log_returns
    from lstm_forecast.metrics import band_coverage
    from lstm_forecast.volatility import method_bands
    from scipy import stats
    px, cfg = stock_prices(ticker, years * 252), ForecastConfig()
    path = store.cache_root() / "bench" / "bands" / f"{method}_{ticker}_{store.data_digest(px)}_{HARNESS.replace('/', '-')}.parquet"
    if path.exists(): return pd.read_parquet(path)
    err = realized_returns(px.Close, px.index, max(H_SHOWN))[list(H_SHOWN)]
    t0 = time.perf_counter()
    bands = method_bands(method, err, px, cfg)
    seconds = time.perf_counter() - t0
    scored = err.copy()
    scored.loc[err.index < px.index[2 * 252]] = np.nan  # the warm-up is not scored: every method has a band from here on
    vol = log_returns(px.Close).rolling(60).std().where(scored[1].notna())
    cov = band_coverage(scored, bands, vol <= vol.median())  # calm: the scored origins' 60-day volatility at or below its median
    inner = level_label(cfg.band_inner)
    sd = (bands[f"hi{inner}"] - bands[f"lo{inner}"]) / (2 * stats.norm.ppf(1 - (1 - cfg.band_inner) / 2))  # the inner band's volatility
    qlike = (np.log(sd ** 2) + scored ** 2 / sd ** 2).mean()  # Patton's QLIKE of that variance, up to a constant
    rows = [dict(method=method, ticker=ticker, h=h, level=lab, n=int(c.n), cover=c[f"cover{lab}"], calm=c[f"calm{lab}"],
                 volatile=c[f"volatile{lab}"], width=c[f"width{lab}"], winkler=c[f"winkler{lab}"], kupiec_p=c[f"kupiec{lab}"],
                 christoffersen_ind_p=c[f"ind{lab}"], christoffersen_cc_p=c[f"cc{lab}"], qlike=float(qlike[h]), seconds=seconds)
            for lab in (inner, level_label(cfg.band_outer)) for h, c in cov.iterrows()]
    out = pd.DataFrame(rows)
    store.write_atomic(path, lambda f: out.to_parquet(f))
    return out


def choose(table: pd.DataFrame) -> tuple[str | None, pd.DataFrame]:
    "The rule of the module docstring: (the chosen method or None, a row per method with what the rule looked at)."
    g = table.groupby(["method", "h", "level"])
    med = g[["cover", "calm", "volatile"]].median()
    nominal = med.index.get_level_values("level").astype(float).to_numpy() / 100
    off = med.sub(nominal, axis=0).abs().groupby("method").max().max(axis=1)
    ref = table[table.method == "garch-t"].set_index(["ticker", "h", "level"]).winkler
    rel = table.set_index(["ticker", "h", "level"]).assign(rel=lambda t: t.winkler / ref.reindex(t.index).to_numpy())
    rows = pd.DataFrame({"worst median coverage error (points)": 100 * off,
                         "median Winkler / GARCH-t's": rel.groupby("method").rel.median(),
                         "ticker-horizons sharper than GARCH-t": rel.groupby("method").rel.apply(lambda r: (r < 1).mean()),
                         "worst ticker-horizon coverage error, all origins (points)": 100 * table.assign(
                             e=lambda t: (t.cover - t.level.astype(float) / 100).abs()).groupby("method").e.max(),
                         "seconds per ticker": table.groupby("method").seconds.median()})
    rows["calibrated"] = rows["worst median coverage error (points)"] <= 2
    ok = rows[rows.calibrated].sort_values(["median Winkler / GARCH-t's", "seconds per ticker"])
    if ok.empty: return None, rows
    best = ok["median Winkler / GARCH-t's"].iloc[0]
    tied = ok[ok["median Winkler / GARCH-t's"] <= best * 1.005].sort_values("seconds per ticker")
    return tied.index[0], rows


def main(argv=None):
    from lstm_forecast.volatility import METHODS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tickers", nargs="*", help="default: every stock in the shared folder")
    ap.add_argument("--methods", nargs="*", default=list(METHODS), help="default: every method")
    ap.add_argument("--years", type=int, default=8, help="years of prices per ticker, the first two a warm-up (default 8)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--no-save", action="store_true", help="print only; do not write bench/results/bands_*.csv")
    a = ap.parse_args(argv)
    tickers = a.tickers or sorted(p.stem for p in STOCKS.glob("*.csv") if p.stem not in ETFS)
    jobs = [(m, t) for m in a.methods for t in tickers]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.processes) as ex:
        parts = list(ex.map(score, *zip(*jobs), [a.years] * len(jobs)))
    table = pd.concat(parts, ignore_index=True)
    wall = time.perf_counter() - t0
    shown = (table.groupby(["method", "level", "h"])
             .agg(tickers=("ticker", "size"), cover=("cover", "median"), calm=("calm", "median"), volatile=("volatile", "median"),
                  width=("width", "median"), winkler=("winkler", "median"), kupiec_reject=("kupiec_p", lambda p: (p < 0.05).mean()),
                  cc_reject=("christoffersen_cc_p", lambda p: (p < 0.05).mean()), qlike=("qlike", "median"),
                  seconds=("seconds", "median")).reset_index())
    chosen, rule = choose(table)
    pd.set_option("display.width", 200), pd.set_option("display.max_rows", 500)
    print(shown.round(4).to_string(index=False))
    print("\nthe rule:\n" + rule.round(4).to_string())
    print(f"\nchosen: {chosen}; {len(tickers)} tickers, {len(a.methods)} methods, {wall:.0f} s wall on {a.processes} processes")
    if not a.no_save:
        RESULTS.mkdir(exist_ok=True)
        table.to_csv(RESULTS / "bands_tickers.csv", index=False, float_format="%.6g")
        shown.to_csv(RESULTS / "bands_table.csv", index=False, float_format="%.6g")
        rule.to_csv(RESULTS / "bands_rule.csv", float_format="%.6g")
        (RESULTS / "bands_chosen.json").write_text(json.dumps(dict(chosen=chosen, tickers=len(tickers), years=a.years)) + "\n")


if __name__ == "__main__":
    main()
