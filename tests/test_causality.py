"""No look-ahead: features and regime values for day t depend only on data up to t.

Equality is exact (`DataFrame.equals`, not a tolerance): pandas' rolling windows and statsmodels' Hamilton
filter both run forward through the series, so the operations that produce day t are the same whether the
series stops at t or goes on; the prefix and the full run give bit-identical numbers.
"""
import numpy as np, pandas as pd, pytest
from lstm_forecast.testing import stock_csv
from lstm_forecast.config import FeatureConfig, RegimeConfig
from lstm_forecast.data import synthetic_prices
from lstm_forecast.features import FEATURES, make_features
from lstm_forecast.regime import fit_regime, regime_probability

TRAIN = 504  # days in the regime's training window (the walk-forward default)
PRICE_COLS = ["Open", "High", "Low", "Close"]


def _read(ticker: str) -> pd.DataFrame:
    df = pd.read_csv(stock_csv(ticker), index_col="Date", parse_dates=True)
    return df[["Open", "High", "Low", "Close", "Volume"]].astype(float)

SOURCES = {"MSFT": lambda: _read("MSFT"), "META": lambda: _read("META"),
           "synthetic": lambda: synthetic_prices(900, seed=11).astype(float)}

@pytest.fixture(scope="module", params=list(SOURCES))
def prices(request): return SOURCES[request.param]()

def _cut_points(n: int, first: int) -> list[int]:
    "Positions of t: the very first possible, a few near it, the middle, the end."
    return sorted({first, first + 1, first + 5, TRAIN - 1, TRAIN, n // 2, n - 2, n - 1})


def test_features_prefix_invariance(prices):
    full = make_features(prices)
    for i in _cut_points(len(prices), FeatureConfig().warmup):
        t = prices.index[i]
        part = make_features(prices.iloc[: i + 1])
        assert part[FEATURES].equals(full.loc[:t, FEATURES]), f"features up to {t:%Y-%m-%d} moved"
        # the target of the last row needs t+1, which the prefix does not have
        assert np.isnan(part["target"].iloc[-1])
        assert part["target"].iloc[:-1].equals(full.loc[:t, "target"].iloc[:-1])


@pytest.mark.parametrize("method", ["markov", "trend"])
def test_regime_prefix_invariance(prices, method):
    fit = fit_regime(prices.iloc[:TRAIN], RegimeConfig(method=method))
    full = regime_probability(fit, prices)
    assert full.name == "p_unfavourable" and full.between(0, 1).all() and len(full) == len(prices)
    for i in _cut_points(len(prices), 0) + [1, 2, 3]:
        t = prices.index[i]
        part = regime_probability(fit, prices.iloc[: i + 1])
        assert part.equals(full.loc[:t]), f"{method} regime up to {t:%Y-%m-%d} moved"


def _scramble_after(prices: pd.DataFrame, T: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    "Multiply prices and volumes after T by independent random walks."
    rng = np.random.default_rng(seed)
    out, k = prices.copy(), prices.index > T
    n = int(k.sum())
    out.loc[k, PRICE_COLS] = out.loc[k, PRICE_COLS].mul(np.exp(rng.normal(0, 0.03, n).cumsum()), axis=0)
    out.loc[k, "Volume"] = out.loc[k, "Volume"] * np.exp(rng.normal(0, 0.3, n).cumsum())
    return out


@pytest.mark.parametrize("where", [0.6, 0.9])
def test_future_perturbation_leaves_past(prices, where):
    T = prices.index[int(len(prices) * where)]
    shocked = _scramble_after(prices, T)
    assert not shocked.loc[T:].iloc[1:].equals(prices.loc[T:].iloc[1:])
    a, b = make_features(prices), make_features(shocked)
    assert a.loc[:T, FEATURES].equals(b.loc[:T, FEATURES])
    assert not a.loc[T:, FEATURES].iloc[2:].equals(b.loc[T:, FEATURES].iloc[2:])  # the future did move
    assert a.loc[:T, "target"].iloc[:-1].equals(b.loc[:T, "target"].iloc[:-1])  # target on T looks at T+1 by design
    for method in ("markov", "trend"):
        cfg = RegimeConfig(method=method)
        # fitted on data up to T, applied to everything: the fit never sees the scrambled future
        pa = regime_probability(fit_regime(prices.loc[:T].iloc[-TRAIN:], cfg), prices)
        pb = regime_probability(fit_regime(shocked.loc[:T].iloc[-TRAIN:], cfg), shocked)
        assert pa.loc[:T].equals(pb.loc[:T]), method
        # lagged one day: even day T+1's value is known at the close of T
        assert pa.iloc[: len(pa.loc[:T]) + 1].equals(pb.iloc[: len(pb.loc[:T]) + 1]), method


def test_markov_fit_is_deterministic():
    px = _read("MSFT").iloc[:TRAIN]
    assert fit_regime(px) == fit_regime(px)


def test_zero_volume_and_constant_prices_give_finite_features():
    px = synthetic_prices(400, seed=5).astype(float)
    px.iloc[100:170, px.columns.get_loc("Volume")] = 0.0  # a long run of zero volume
    px.iloc[250:300, px.columns.get_loc("Close")] = px["Close"].iloc[249]  # a constant-price stretch
    f = make_features(px)
    assert np.isfinite(f[FEATURES].to_numpy()).all()
    assert (f.loc[px.index[170], "volume_z"] == 0) and (f.loc[px.index[300], "volatility_30"] == 0)
    assert np.isfinite(f["target"].iloc[:-1]).all()
    zero = synthetic_prices(200, seed=5).assign(Volume=0.0)  # no volume at all
    assert (make_features(zero)["volume_z"] == 0).all()
    flat = synthetic_prices(200, seed=5).assign(Close=50.0)  # no price moves at all
    f = make_features(flat)
    assert np.isfinite(f[FEATURES].to_numpy()).all() and (f[["volatility_10", "momentum_30"]] == 0).all().all()
    p = regime_probability(fit_regime(flat, RegimeConfig(method="trend", trend_window=20)), flat)
    assert (p == 0).all()
    with pytest.raises(ValueError, match="never change"): fit_regime(flat)


def test_non_finite_feature_is_named():
    px = synthetic_prices(200, seed=5).astype(float)
    px.loc[px.index[120], "Volume"] = np.nan  # a gap in the volume on day 120 ...
    with pytest.raises(ValueError, match=rf"'volume_z' is nan on {px.index[121]:%Y-%m-%d}"):  # ... reaches day 121's lagged z-score
        make_features(px)
