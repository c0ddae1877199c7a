"Checks of the portfolio, metrics and baseline forecasters on real prices and by simulation: what the notebooks cannot hold."
import numpy as np, pandas as pd, pytest
from statsmodels.tsa.ar_model import AutoReg
from lstm_forecast.backtest import with_verdicts
from lstm_forecast.config import Config, PortfolioConfig, RegimeConfig
from lstm_forecast.data import read_price_csv
from lstm_forecast.features import make_features
from lstm_forecast.metrics import dm_test, pt_test, skill_table, strategy_metrics, versus_baselines
from lstm_forecast.portfolio import buy_and_hold, fold_gate_thresholds, size_positions, strategy_returns
from lstm_forecast.walk_forward import FORECASTERS, make_folds
from lstm_forecast.testing import STOCKS as DATA, stock_csv


@pytest.fixture(scope="module")
def msft():
    px = pd.read_csv(stock_csv("MSFT"), index_col="Date", parse_dates=True)
    ret = np.log(px.Close).diff()
    frame = pd.DataFrame({"mom": px.Close.pct_change(10).shift(1), "vol": ret.rolling(10).std().shift(1),
                          "target": ret.shift(-1)}).dropna()
    return px, ret, frame


@pytest.fixture(scope="module")
def folds():
    "MSFT's features and the default config's folds over its whole history."
    feats = make_features(read_price_csv(DATA / "MSFT.csv"), Config().features)
    return feats, make_folds(int(feats.target.notna().sum()), Config().walk_forward)


def test_buy_and_hold_compounds_to_the_price_ratio(msft):
    px, ret, frame = msft
    bh = buy_and_hold(frame.target, 0.0)
    assert strategy_metrics(bh.net).total_return == pytest.approx(px.Close.iloc[-1] / px.Close.loc[frame.index[0]] - 1, rel=1e-9)


def test_ar1_baseline_is_statsmodels_one_step_ahead(folds):
    "Over real folds, the AR(1) forecaster equals statsmodels' own one-step prediction with the training params."
    feats, fs = folds
    for f in fs[0:24:8]:
        ar1 = FORECASTERS["ar1"](feats, f, Config(), 0)
        tr = feats.target.iloc[f.train]
        res = AutoReg(tr.iloc[:-1].to_numpy(), lags=1, trend="c").fit()  # the last label purged
        both = feats.target.iloc[f.train.start:f.test.stop].to_numpy()
        one_step = res.apply(both, refit=False).predict()[len(tr):]  # forecast of row i from row i-1
        np.testing.assert_allclose(ar1.to_numpy(), one_step, rtol=1e-10)


def test_real_walk_of_baselines_is_honest(folds):
    "The baseline forecasters over every real fold: no baseline has a large, significant edge on daily returns."
    feats, fs = folds
    names = ["zero", "hist_mean", "ridge", "ar1"]
    preds = pd.concat([pd.DataFrame({k: FORECASTERS[k](feats, f, Config(), 0) for k in names}) for f in fs])
    y = feats.target.loc[preds.index]
    table = skill_table(y, {c: preds[c] for c in preds})
    assert table.loc["zero", "r2_oos"] == 0 and np.isnan(table.loc["zero", "dm_p"])
    assert (table.r2_oos.abs() < 0.05).all()  # daily returns are close to unpredictable
    vb = with_verdicts(versus_baselines(y, preds.ridge, preds[["zero", "hist_mean", "ar1"]]))
    assert vb.verdict.str.match(r"^(better|worse), (not significant|significant at 5 %)").all()


def test_dm_and_pt_are_calibrated_under_the_null():
    "Under no skill, the 5 % two-sided tests reject about 5 % of the time."
    rng = np.random.default_rng(0)
    dm_p, pt_p = [], []
    for _ in range(400):
        y = rng.standard_t(4, 250) * 0.01
        a, b = rng.normal(0, 0.003, 250), rng.normal(0, 0.003, 250)
        dm_p.append(dm_test(y, a, b)[1]); pt_p.append(pt_test(y, a)[1])
    assert 0.02 < np.mean(np.array(dm_p) < 0.05) < 0.09
    assert 0.02 < np.mean(np.array(pt_p) < 0.05) < 0.09


def test_positions_on_real_data_do_not_see_the_future(msft):
    "Changing the real returns after a date leaves every earlier position (vol, regime, gate) unchanged."
    px, ret, frame = msft
    days = frame.index[600:900]
    rng = np.random.default_rng(0)
    pred = pd.Series(rng.normal(0, 0.01, len(days)), index=days)
    fold = pd.Series(np.repeat([0, 1], 150), index=days)
    train_preds = {k: pd.Series(rng.normal(0, 0.01, 504)) for k in (0, 1)}
    p_unf = pd.Series(rng.uniform(size=len(ret)), index=ret.index)
    cfg = PortfolioConfig()
    thr = fold_gate_thresholds(fold, train_preds, cfg)
    base = size_positions(pred, ret, p_unf, thr, cfg, RegimeConfig().threshold).position
    cut = days[200]
    ret2 = ret.where(ret.index < cut, ret * 3)
    moved = size_positions(pred, ret2, p_unf, thr, cfg, RegimeConfig().threshold).position
    pd.testing.assert_series_equal(moved.loc[:cut], base.loc[:cut])
    assert not moved.loc[cut:].iloc[1:].equals(base.loc[cut:].iloc[1:])
    s = strategy_returns(base, frame.target, cfg.cost_bps)
    assert s.net.notna().all() and (s.cost >= 0).all()
