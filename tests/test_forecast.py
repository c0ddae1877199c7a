"""Checks of lstm_forecast.forecast a notebook cannot hold: real MSFT prices, the recursive path against make_features
on the whole extended frame, and the model cache across process restarts (default config), corrupt file included."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest

from lstm_forecast.config import Config, FeatureConfig, with_overrides
from lstm_forecast.data import OHLCV
from lstm_forecast.features import FEATURES, make_features
from lstm_forecast.model import make_sequences, predict
from lstm_forecast.walk_forward import walk_forward, fold_seed, predict_rows
from lstm_forecast.forecast import fit_final, forecast
from lstm_forecast.testing import CACHE_VAR, FAST_SERIAL, stock_csv, stock_prices

FAST = with_overrides(Config(), FAST_SERIAL)


@pytest.fixture(scope="module")
def msft(module_cache):
    "MSFT's last 600 days, the fast config's final model, walk-forward and 30-day forecast (cache in a temp dir)."
    px = stock_prices("MSFT", 600)
    final = fit_final(px, FAST, progress=False)
    wf = walk_forward(px, FAST, progress=False)
    return px, final, wf, forecast(final, px, 30, wf=wf)


def extend_prices(prices: pd.DataFrame,  # real daily OHLCV, oldest first
                  closes: pd.Series,  # predicted closes on the days after the last real one
                  cfg: FeatureConfig,  # its `volume_window` sets the Volume of predicted days
                 ) -> pd.DataFrame:
    "The oracle of a path's features: `prices` followed by a row per predicted close, Open = High = Low = Close, Volume = mean of the last `volume_window` real days."
    c = closes.to_numpy(dtype=np.float64)
    vol = float(prices["Volume"].iloc[-cfg.volume_window:].mean())
    new = pd.DataFrame(dict(Open=c, High=c, Low=c, Close=c, Volume=vol), index=pd.DatetimeIndex(closes.index, name="Date"))
    return pd.concat([prices[OHLCV], new])


def test_path_equals_make_features_on_the_extended_frame(msft):
    "Each day's prediction is the model on make_features of (real prices + the predicted path before that day)."
    px, final, _, fc = msft
    L, n = FAST.model.seq_len, len(px)
    ext = extend_prices(px, fc.model_price, FAST.features)  # the model's own path feeds its features
    feats = make_features(ext, FAST.features)
    seq = make_sequences(final.scaler.transform(feats[FEATURES].to_numpy()), L)
    rows = [feats.index.get_loc(d) for d in ext.index[n - 1:n - 1 + 30]]  # day h is predicted from the row of day h-1
    pred, _ = predict(final.model, seq[np.array(rows) - L + 1])
    np.testing.assert_allclose(np.diff(np.log(np.r_[px.Close.iloc[-1], fc.model_price.to_numpy()])), pred, rtol=0, atol=1e-6)
    # the path's features never reach past their day: the real rows are untouched by the path
    real = make_features(px, FAST.features)
    pd.testing.assert_frame_equal(feats[FEATURES].loc[real.index], real[FEATURES], check_exact=False, rtol=1e-9)


def test_a_day_does_not_depend_on_later_days(msft):
    "No look-ahead along the path: the first h days of a 30-day forecast are the h-day forecast."
    px, final, _, fc = msft
    for h in (1, 2, 7, 15):
        pd.testing.assert_frame_equal(forecast(final, px, h).iloc[:, :3], fc.iloc[:h, :3], check_exact=True)


def test_final_model_trains_on_the_last_window_only(msft):
    px, final, *_ = msft
    feats = make_features(px, FAST.features)
    assert final.train_window == (feats.index[-201], feats.index[-2])
    assert final.last_date == px.index[-1]


def test_final_model_of_a_fold_window_is_the_folds_model(msft):
    "fit_final on the prices up to the last fold's first test day, with that fold's seed, predicts its test days bit for bit."
    px, _, wf, _ = msft
    k = wf.folds.index[-1]
    final = fit_final(px.loc[:wf.folds.test_start[k]], FAST, progress=False, seed=fold_seed(FAST.seed, k))
    assert final.train_window == (wf.folds.train_start[k], wf.folds.train_end[k]) and final.path is None
    feats, days = make_features(px, FAST.features), wf.predictions.index[wf.predictions.fold == k]
    pred, _ = predict_rows(final.model, final.scaler, feats, feats.index.get_indexer(days), FAST.model.seq_len)
    np.testing.assert_array_equal(pred, wf.predictions.loc[days, "pred"].to_numpy())


def test_msft_forecast(msft):
    px, final, wf, fc = msft
    assert list(fc.columns) == ["price", "daily_return", "cumulative_return", "model_price", "weight", "lo80", "hi80", "lo95", "hi95"]
    assert ((fc.weight >= 0) & (fc.weight <= 1)).all()
    np.testing.assert_allclose(np.log(fc.price / px.Close.iloc[-1]), fc.weight * np.log(fc.model_price / px.Close.iloc[-1]), atol=1e-12)
    assert fc.index[0] > px.index[-1] and (fc.index.day_of_week < 5).all() and len(fc) == 30
    assert np.isfinite(fc.to_numpy()).all()
    assert (fc.lo95 <= fc.lo80).all() and (fc.lo80 <= fc.hi80).all() and (fc.hi80 <= fc.hi95).all()
    width = np.log(fc.hi95 / fc.lo95)
    assert width.iloc[-1] > 2 * width.iloc[0]  # h-day errors spread out roughly like sqrt(h)
    assert abs(fc.cumulative_return.iloc[-1]) < 0.5
    assert fc.attrs["band_note"].startswith(f"80 %/95 % bands from the errors of {len(wf.predictions)} out-of-sample path forecasts")
    assert forecast(final, px, 30, wf=wf).equals(fc)  # deterministic


RUN = r"""
import json, sys, time, warnings
import numpy as np
from lstm_forecast.config import Config
from lstm_forecast.data import read_price_csv
from lstm_forecast.forecast import fit_final, forecast
csv, out = sys.argv[1], sys.argv[2]
px = read_price_csv(csv).iloc[-2520:]  # the last 10 years
px.attrs["ticker"] = "MSFT"
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    t0 = time.perf_counter(); final = fit_final(px, Config(), progress=False); fit_s = time.perf_counter() - t0
t0 = time.perf_counter(); fc = forecast(final, px, 30); fc_s = time.perf_counter() - t0
np.save(out + ".npy", fc[["price", "daily_return", "cumulative_return", "model_price"]].to_numpy())
json.dump(dict(source=final.source, fit_s=fit_s, forecast_s=fc_s, path=str(final.path),
               warnings=[str(m.message) for m in w]), open(out + ".json", "w"))
"""


def _run(tmp, name):
    csv = stock_csv("MSFT")
    env = {**os.environ, CACHE_VAR: str(tmp / "cache")}
    subprocess.run([sys.executable, "-c", RUN, str(csv), str(tmp / name)], check=True, timeout=600, env=env)
    return json.loads((tmp / f"{name}.json").read_text()), np.load(tmp / f"{name}.npy")


def test_cache_survives_a_restart_and_a_corrupt_file_is_retrained(tmp_path):
    "Default config on MSFT's last 10 years: trained, then loaded by a new process, then retrained after damage."
    cold, a = _run(tmp_path, "cold")
    assert cold["source"] == "trained" and not cold["warnings"]
    path = Path(cold["path"])
    assert path.parent == tmp_path / "cache" / "models" / "MSFT" and path.name.startswith("2025-10-08_")
    warm, b = _run(tmp_path, "warm")
    assert warm["source"] == "cache" and warm["path"] == cold["path"] and not warm["warnings"]
    np.testing.assert_array_equal(a, b)  # the loaded model forecasts bit for bit like the trained one
    path.write_bytes(b"not a model")
    fixed, c = _run(tmp_path, "fixed")
    assert fixed["source"] == "trained"
    assert any("unusable, training it again" in m for m in fixed["warnings"]), fixed["warnings"]
    np.testing.assert_array_equal(a, c)  # same seed, same model
    again, _ = _run(tmp_path, "again")
    assert again["source"] == "cache"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind
    print({name: {k: round(v, 3) for k, v in r.items() if k.endswith("_s")} for name, r in dict(cold=cold, warm=warm).items()})
