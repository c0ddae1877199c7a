"""Skill of the model variants on the 30 shared stocks: a walk-forward per (variant, ticker), scored against no change.

Run by hand (not in CI), from the project root:
  .venv/bin/python bench/skill.py [--variants original,anchor,...] [--years 4] [--processes 2] [--data ../shared/data/stocks]

Each variant is a preset of `config.PRESETS` (or "pooled-<preset>": one network per fold trained on every ticker at
once; "pooled-<preset>-embed": the same with a learned vector of EMBED numbers per ticker joined to its inputs). A task is one (variant, ticker) walk-forward of the AttnLSTM alone (regime "none": the regime does not change a
prediction), folds one after another on one torch thread, one task per worker process, `--processes` at a time.
Prints one row per variant: median R² against no change at 1 and 7 days (the 7-day forecast is the recursive path),
tickers significantly better / worse than no change (Diebold-Mariano with the HLN correction, 5 %), median and pooled
IC of the one-day forecast, compute seconds (summed over tasks) and the share of folds whose shrinkage factor is 0.

Results are cached per (variant config key, ticker, data digest) in --cache, written with `store.write_atomic`: a
rerun computes only what changed. --out gets the tables `nbs/model_experiment.ipynb` reads (skill_*.csv).
"""
import argparse, hashlib, json, multiprocessing, os, sys, time, warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
import numpy as np, pandas as pd, torch
from lstm_forecast import store
from lstm_forecast.bands import realized_returns
from lstm_forecast.config import PRESETS, Config, with_overrides
from lstm_forecast.data import read_price_csv
from lstm_forecast.metrics import horizon_skill
from lstm_forecast.testing import ROOT, STOCKS
from lstm_forecast.walk_forward import FORECASTERS, MODEL, _die_with_parent, pooled_walk_forward, walk_forward

HARNESS = "skill/1"  # part of every cache key: change it when the scoring changes
H = 7  # the horizon scored besides one day (the dashboard opens on 7 days)
BASE = {"regime.method": "none", "walk_forward.workers": 1, "model.threads": 1, "forecast.max_horizon": H}
DEFAULT_VARIANTS = ["original", "anchor", "anchor-shrink", "anchor-vol", "anchor-stop", "pooled-anchor", "anchor-ens3",
                    "pooled-anchor-embed"]
EMBED = 4  # size of the ticker vector of a "pooled-<preset>-embed" variant


EXTRA = {}  # --set overrides on top of every variant (e.g. model.epochs=1 for a try-out); part of the cache key


def variant_config(name: str, extra: dict | None = None) -> tuple[Config, bool]:
    "The config of variant `name` (with the `extra` overrides) and whether it is pooled."
    pooled, preset = name.startswith("pooled-"), name.removeprefix("pooled-")
    if embedding(name): preset = preset.removesuffix("-embed")
    if preset not in PRESETS:
        raise SystemExit(f"unknown variant {name!r}: use a preset ({', '.join(PRESETS)}), pooled-<preset> or pooled-<preset>-embed.")
    return with_overrides(Config(), {"model.preset": preset, **BASE, **(EXTRA if extra is None else extra)}), pooled


def embedding(name: str) -> int:
    "The size of the ticker vector of variant `name`: EMBED for pooled-<preset>-embed, else 0."
    return EMBED if name.startswith("pooled-") and name.endswith("-embed") else 0


ETFS = ("SPY",)  # in the shared folder besides the 30 stocks; not a stock


def load_universe(folder: Path, years: int, tickers=None) -> dict:
    "The last `years` x 252 days with a known next-day return (plus the feature warm-up) of every stock's CSV in `folder`."
    rows = years * 252 + Config().features.warmup + 1
    paths = [p for p in sorted(folder.glob("*.csv")) if p.stem not in ETFS] if not tickers else [folder / f"{t}.csv" for t in tickers]
    return {p.stem: read_price_csv(p).iloc[-rows:] for p in paths}


def _key(cfg: Config, ticker: str, digest: str, pooled: bool, embed: int = 0) -> str:
    parts = [HARNESS, store.config_key(cfg), pooled, ticker, digest] + ([embed] if embed else [])  # without one: the keys as before
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def cache_files(cache: Path, variant: str, cfg: Config, ticker: str, digest: str, pooled: bool, embed: int = 0) -> tuple[Path, Path]:
    "The (summary JSON, per-day parquet) of one task's result."
    stem = cache / variant / f"{ticker}_{_key(cfg, ticker, digest, pooled, embed)}"
    return stem.with_suffix(".json"), stem.with_suffix(".parquet")


def score(wf, ticker: str, seconds: float, close: pd.Series | None = None) -> tuple[dict, pd.DataFrame]:
    "A task's summary (skill at 1 and H days, IC, folds) and its per-day frame (pred, target, H-day path and realized)."
    p, paths = wf.predictions, wf.paths
    real = realized_returns(wf.close if close is None else close, paths.index, H)  # the walk-forward carries its closes
    path = paths.cumsum(axis=1)
    sk = horizon_skill(real, {"path": path}, horizons=[1, H])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ic = float(p.target.corr(p.pred))
    L, att = wf.config.model.seq_len, wf.attention
    folds = []
    for k, f in wf.folds.iterrows():
        d = p[p.fold == k]
        var = f.final_loss / f.rel_loss if f.rel_loss else np.nan  # the learnt target's training variance
        a = att.loc[d.index].mean().to_numpy()
        folds.append(dict(fold=int(k), test_start=f"{f.test_start:%Y-%m-%d}", shrink=float(f.shrink), best_epoch=int(f.best_epoch),
                          rel_loss=float(f.rel_loss), rel_val_loss=float(f.rel_val_loss), rel_losses=[l / var for l in wf.losses[k]],
                          pred_std=float(d.pred.std()), target_std=float(d.target.std()), pred_mean=float(d.pred.mean()),
                          target_mean=float(d.target.mean()), ic=float(d.target.corr(d.pred)) if d.pred.std() > 0 else np.nan,
                          attn_ratio_max=float(a.max() * L), attn_last5=float(a[-5:].sum()), seconds=float(f.seconds)))
    one, seven = sk.loc[(1, "path")], sk.loc[(H, "path")]
    summary = dict(ticker=ticker, n=int(one.n), r2_1=float(one.r2_vs_zero), dm_stat_1=float(one.dm_stat), dm_p_1=float(one.dm_p),
                   n_7=int(seven.n), r2_7=float(seven.r2_vs_zero), dm_stat_7=float(seven.dm_stat), dm_p_7=float(seven.dm_p),
                   hit_1=float(one.hit_rate), hit_7=float(seven.hit_rate), ic=ic, seconds=seconds, folds=folds,
                   attention=att.mean().tolist())
    days = pd.DataFrame({"fold": p.fold, "pred": p.pred, "target": p.target, "path7": path[H], "real7": real[H]})
    return summary, days


def _save(files, summary: dict, days: pd.DataFrame):
    store.write_atomic(files[1], lambda f: days.to_parquet(f))
    store.write_atomic(files[0], json.dumps(summary, indent=1))


def run_task(variant: str, extra: dict, ticker: str, prices: pd.DataFrame, files) -> str:
    "One (variant, ticker) walk-forward of the AttnLSTM alone, scored and cached; returns a progress line."
    torch.set_num_threads(1)
    cfg, _ = variant_config(variant, extra)
    t0 = time.perf_counter()
    wf = walk_forward(prices, cfg, progress=False, forecasters={MODEL: FORECASTERS[MODEL]})
    seconds = time.perf_counter() - t0
    summary, days = score(wf, ticker, seconds)
    _save(files, summary, days)
    return f"{variant:>14} {ticker:<5} R² 1d {summary['r2_1']:+.4f} 7d {summary['r2_7']:+.4f}  {seconds:.0f} s"


def run_pooled(variant: str, universe: dict, todo: dict, processes: int):
    "A pooled variant: one network per fold on every ticker's windows, its folds in `processes` workers; caches each ticker."
    cfg, _ = variant_config(variant)
    cfg = with_overrides(cfg, {"walk_forward.workers": processes})
    t0 = time.perf_counter()
    wfs = pooled_walk_forward(universe, cfg, progress=True, embed=embedding(variant))
    seconds = (time.perf_counter() - t0) * processes / len(universe)  # compute seconds, shared equally by the tickers
    for ticker, wf in wfs.items():
        if ticker in todo: _save(todo[ticker], *score(wf, ticker, seconds, universe[ticker].Close))  # its own days, as before


def variant_row(name: str, results: list[dict], days: pd.DataFrame) -> dict:
    "One row of the printed table: the variant's skill over the tickers."
    t = pd.DataFrame(results)
    better = lambda h: int(((t[f"dm_p_{h}"] < 0.05) & (t[f"dm_stat_{h}"] < 0)).sum())
    worse = lambda h: int(((t[f"dm_p_{h}"] < 0.05) & (t[f"dm_stat_{h}"] > 0)).sum())
    shrink = np.array([f["shrink"] for r in results for f in r["folds"]])
    return dict(variant=name, tickers=len(t), r2_1=t.r2_1.median(), r2_7=t.r2_7.median(), better_1=better(1), worse_1=worse(1),
                better_7=better(H), worse_7=worse(H), ic_median=t.ic.median(), ic_pooled=days.target.corr(days.pred),
                seconds=t.seconds.sum(), shrink0=float((shrink == 0).mean()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated presets, pooled-<preset> or pooled-<preset>-embed")
    ap.add_argument("--years", type=int, default=4, help="the last N years of each ticker (N x 252 days with a target)")
    ap.add_argument("--processes", type=int, default=2, help="tasks at once, one per worker process")
    ap.add_argument("--data", type=Path, default=STOCKS)
    ap.add_argument("--tickers", default="", help="comma-separated subset (default: every CSV in --data)")
    ap.add_argument("--cache", type=Path, default=ROOT / "bench" / "cache" / "skill")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override on top of every variant, e.g. model.epochs=1")
    a = ap.parse_args()
    EXTRA.update(dict(kv.split("=", 1) for kv in a.set))
    variants = [v for v in a.variants.split(",") if v]
    for v in variants: variant_config(v)
    universe = load_universe(a.data, a.years, [t for t in a.tickers.split(",") if t])
    digests = {t: store.data_digest(px) for t, px in universe.items()}
    all_digest = hashlib.sha256("".join(digests[t] for t in sorted(digests)).encode()).hexdigest()[:16]
    first = next(iter(universe.values()))
    print(f"{len(universe)} tickers, {len(first)} days each ({a.years} years with a target), {first.index[0]:%Y-%m-%d}.."
          f"{first.index[-1]:%Y-%m-%d}; variants {', '.join(variants)}; {a.processes} processes", flush=True)
    files = {}
    for v in variants:
        cfg, pooled = variant_config(v)
        for t in universe: files[v, t] = cache_files(a.cache, v, cfg, t, all_digest if pooled else digests[t], pooled, embedding(v))
    todo = [(v, t) for (v, t), f in files.items() if not f[0].exists()]
    print(f"{len(files) - len(todo)} of {len(files)} tasks cached, {len(todo)} to compute", flush=True)
    t0 = time.perf_counter()
    single = [(v, t) for v, t in todo if not variant_config(v)[1]]
    if single:
        pool = ProcessPoolExecutor(a.processes, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=partial(_die_with_parent, os.getpid()))
        try:
            futures = [pool.submit(run_task, v, EXTRA, t, universe[t], files[v, t]) for v, t in single]
            for i, fut in enumerate(futures, 1): print(f"[{i}/{len(single)} {time.perf_counter() - t0:6.0f} s] {fut.result()}", flush=True)
        finally: pool.shutdown(wait=True, cancel_futures=True)
    for v in dict.fromkeys(v for v, _ in todo if variant_config(v)[1]):
        run_pooled(v, universe, {t: files[v, t] for vv, t in todo if vv == v}, a.processes)
    rows, tickers, folds, attention = [], [], [], []
    for v in variants:
        res = [json.loads(files[v, t][0].read_text()) for t in universe]
        days = pd.concat([pd.read_parquet(files[v, t][1]).assign(ticker=t) for t in universe])
        rows.append(variant_row(v, res, days))
        for r in res:
            tickers.append({"variant": v, **{k: x for k, x in r.items() if k not in ("folds", "attention")}})
            folds += [{"variant": v, "ticker": r["ticker"], **f, "rel_losses": json.dumps([round(x, 5) for x in f["rel_losses"]])} for f in r["folds"]]
        mean_att = np.mean([r["attention"] for r in res], axis=0)  # oldest lag first
        attention.append(pd.Series(mean_att, index=[f"lag_{j}" for j in range(len(mean_att) - 1, -1, -1)], name=v))
    table = pd.DataFrame(rows).set_index("variant")
    a.out.mkdir(parents=True, exist_ok=True)
    for name, df in dict(skill_table=table, skill_tickers=pd.DataFrame(tickers), skill_folds=pd.DataFrame(folds),
                         skill_attention=pd.DataFrame(attention)).items():
        store.write_atomic(a.out / f"{name}.csv", df.to_csv(float_format="%.6g", index=name in ("skill_table", "skill_attention")))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.assign(r2_1=table.r2_1 * 100, r2_7=table.r2_7 * 100).rename(columns={"r2_1": "R2_1d_%", "r2_7": "R2_7d_%"})
              .round(dict(**{"R2_1d_%": 3, "R2_7d_%": 3}, ic_median=4, ic_pooled=4, seconds=0, shrink0=3)).to_string())
    print(f"wall time {time.perf_counter() - t0:.0f} s; tables in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
