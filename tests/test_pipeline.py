"The whole pipeline never looks ahead: change the future, and no prediction or position of the past may move."
import numpy as np, pandas as pd, pytest
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import synthetic_prices, PRICES
from lstm_forecast.walk_forward import walk_forward
from lstm_forecast.backtest import evaluate
from conftest import FAST, stock_prices

def perturb_after(prices: pd.DataFrame, T: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    "Multiply every price after `T` by a random walk (and volumes by noise)."
    rng, after = np.random.default_rng(seed), prices.index > T
    out = prices.astype({"Volume": float})
    walk = np.exp(np.cumsum(rng.normal(0, 0.03, after.sum())))
    out.loc[after, PRICES] = out.loc[after, PRICES].to_numpy() * walk[:, None]
    out.loc[after, "Volume"] = out.loc[after, "Volume"].to_numpy() * rng.uniform(0.3, 3.0, after.sum())
    return out

def run(prices, cfg):
    bt = evaluate(walk_forward(prices, cfg, progress=False), prices)
    return bt.wf.predictions, bt.sizing

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
    cols = ["fold", "pred", "zero", "hist_mean", "ridge", "ar1", "p_unfavourable"]
    pd.testing.assert_frame_equal(preds.loc[past, cols], preds2.loc[past, cols], check_exact=True)
    pd.testing.assert_series_equal(sizing.position[past], sizing2.position[past], check_exact=True)
    # ... and the perturbation did reach the model: later predictions changed
    assert not np.allclose(preds.pred[future], preds2.pred[future])

def test_same_seed_same_run_different_seed_differs(case):
    prices, cfg, preds, sizing = case
    again, sizing2 = run(prices, cfg)
    pd.testing.assert_frame_equal(preds, again, check_exact=True)
    pd.testing.assert_series_equal(sizing.position, sizing2.position, check_exact=True)
    other, _ = run(prices, with_overrides(cfg, seed=cfg.seed + 1))
    assert not np.array_equal(other.pred.to_numpy(), preds.pred.to_numpy())
