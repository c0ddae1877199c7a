"""The whole pipeline never looks ahead: change the future, and no prediction or position of the past may move.
And a walk-forward killed mid-run leaves no worker process behind."""
import subprocess, sys, threading, time
import numpy as np, pandas as pd, psutil, pytest
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import synthetic_prices, PRICES
from lstm_forecast.walk_forward import walk_forward
from lstm_forecast.backtest import evaluate
from lstm_forecast.testing import FAST, stock_prices

def perturb_after(prices: pd.DataFrame, T: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    "Multiply every price after `T` by a random walk (and volumes by noise)."
    rng, after = np.random.default_rng(seed), prices.index > T
    out = prices.astype({"Volume": float})
    walk = np.exp(np.cumsum(rng.normal(0, 0.03, after.sum())))
    out.loc[after, PRICES] = out.loc[after, PRICES].to_numpy() * walk[:, None]
    out.loc[after, "Volume"] = out.loc[after, "Volume"].to_numpy() * rng.uniform(0.3, 3.0, after.sum())
    return out

def run(prices, cfg):
    bt = evaluate(walk_forward(prices, cfg, progress=False))
    return bt.wf.predictions.join(bt.wf.paths.add_prefix("path_")), bt.sizing  # with each test day's 1..30 day path

@pytest.fixture(scope="module", params=["synthetic", "MSFT"])
def case(request):
    if request.param == "synthetic": prices = synthetic_prices(460, seed=21)
    else: prices = stock_prices("MSFT", 460)
    cfg = with_overrides(Config(), FAST)  # the Markov regime, the default
    preds, sizing = run(prices, cfg)
    return prices, cfg, preds, sizing

def where(preds, which):
    "A date T: inside a test window, or at a fold boundary (first test day, or the last day before it)."
    starts = preds.groupby("fold").apply(lambda d: d.index[0])
    if which == "inside": return preds[preds.fold == 1].index[17]
    if which == "first test day": return starts.iloc[2]
    return preds.index[preds.index.get_loc(starts.iloc[2]) - 1]

@pytest.mark.parametrize("which", ["inside", "first test day", "day before a fold"])
def test_future_perturbation_leaves_past_unchanged(case, which):
    prices, cfg, preds, sizing = case
    T = where(preds, which)
    preds2, sizing2 = run(perturb_after(prices, T, seed=5), cfg)
    past, future = preds.index <= T, preds.index > T
    cols = ["fold", "pred", "zero", "hist_mean", "ridge", "ar1", "p_unfavourable", *[f"path_{h}" for h in range(1, 31)]]
    pd.testing.assert_frame_equal(preds.loc[past, cols], preds2.loc[past, cols], check_exact=True)
    pd.testing.assert_series_equal(sizing.position[past], sizing2.position[past], check_exact=True)
    # ... and the perturbation did reach the model: later predictions changed
    assert not np.allclose(preds.pred[future], preds2.pred[future])
    assert not np.allclose(preds.path_5[future], preds2.path_5[future])  # and the paths that start after T

def test_same_seed_same_run_different_seed_differs(case):
    prices, cfg, preds, sizing = case
    again, sizing2 = run(prices, cfg)
    pd.testing.assert_frame_equal(preds, again, check_exact=True)
    pd.testing.assert_series_equal(sizing.position, sizing2.position, check_exact=True)
    other, _ = run(prices, with_overrides(cfg, seed=cfg.seed + 1))
    assert not np.array_equal(other.pred.to_numpy(), preds.pred.to_numpy())


KILLED = r"""
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import synthetic_prices
from lstm_forecast.walk_forward import walk_forward
cfg = with_overrides(Config(), {"model.epochs": 20, "model.hidden": 8, "model.seq_len": 20, "walk_forward.train": 200,
                                "walk_forward.test": 20, "walk_forward.step": 20, "regime.method": "trend",
                                "walk_forward.workers": 2})
walk_forward(synthetic_prices(700, seed=1), cfg, progress=lambda line: print(line, flush=True))  # 24 folds
"""

def _alive(p: psutil.Process) -> bool:
    try: return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess: return False

def test_a_killed_walk_forward_leaves_no_process():
    "SIGKILL a walk-forward while its two workers train: no worker (nor any other child) is alive 2 s later."
    run = subprocess.Popen([sys.executable, "-c", KILLED], stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(600, run.kill); watchdog.start()  # a hung run fails the test instead of hanging it
    try:
        line = run.stdout.readline()  # the first fold is done: the workers are busy with the next ones
        assert line.startswith("fold 1/24:"), line
        children = psutil.Process(run.pid).children(recursive=True)
        workers = [p for p in children if "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) == 2, [p.cmdline() for p in children]  # besides them: multiprocessing's resource tracker
        run.kill(); run.wait()
        deadline = time.monotonic() + 2
        while any(map(_alive, children)) and time.monotonic() < deadline: time.sleep(0.05)
        assert not [p.cmdline() for p in children if _alive(p)]
    finally:
        watchdog.cancel()
        if run.poll() is None: run.kill(); run.wait()
