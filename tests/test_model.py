"""Checks of lstm_forecast.model a notebook cannot hold: the default (fold-sized) config on real prices,
repeated in separate processes, and a saved model reloaded in a fresh process."""
import subprocess, sys
import numpy as np
import pytest
from lstm_forecast.testing import stock_csv

# One walk-forward-sized fit (444 sequences of 60 x 5, default ModelConfig) on MSFT, in a fresh interpreter.
# The inputs are simple lagged MSFT quantities (a fixture, not the project's feature pipeline).
PRELUDE = r"""
import sys, numpy as np, pandas as pd
csv, out = sys.argv[1], sys.argv[2]
px = pd.read_csv(csv, index_col="Date", parse_dates=True).iloc[-700:]
r = np.log(px.Close).diff()
F = pd.DataFrame(dict(v10=r.rolling(10).std(), v30=r.rolling(30).std(), m10=px.Close.pct_change(10),
                      m30=px.Close.pct_change(30), vz=np.log(px.Volume).diff())).shift(1)
F["target"] = np.log(px.Close.shift(-1) / px.Close)
F = F.dropna().iloc[:503 + 63]
"""

FIT = PRELUDE + r"""
from sklearn.preprocessing import StandardScaler
from lstm_forecast.config import ModelConfig
from lstm_forecast.model import make_sequences, train_model, predict, save_model
seed = int(sys.argv[3])
sc = StandardScaler().fit(F.iloc[:503, :5])
S = make_sequences(sc.transform(F.iloc[:, :5]), 60)
y = F.target.to_numpy()[59:]
model, losses = train_model(S[:444], y[:444], ModelConfig(), seed=seed, progress=False)
pred, att = predict(model, S[444:])
np.savez(out, pred=pred, att=att, losses=np.array(losses), y_train=y[:444])
save_model(out + ".pt", model, scaler=sc, feature_names=list(F.columns[:5]), cfg=ModelConfig(),
           train_window=(F.index[0], F.index[502]), seed=seed)
"""

LOAD = PRELUDE + r"""
from lstm_forecast.model import make_sequences, predict, load_model
model, meta = load_model(out + ".pt")
S = make_sequences(meta["scaler"].transform(F[meta["feature_names"]].to_numpy()), meta["config"].seq_len)
np.save(out + ".reloaded.npy", predict(model, S[444:])[0])
"""


def _run(code, *args):
    subprocess.run([sys.executable, "-c", code, *map(str, args)], check=True, timeout=300)


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    csv = stock_csv("MSFT")
    d = tmp_path_factory.mktemp("fits")
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]: _run(FIT, csv, d / name, seed)
    _run(LOAD, csv, d / "a")
    return d, {k: np.load(d / f"{k}.npz") for k in "abc"}


def test_same_seed_other_process_is_bit_identical(fits):
    _, r = fits
    np.testing.assert_array_equal(r["a"]["pred"], r["b"]["pred"])
    np.testing.assert_array_equal(r["a"]["losses"], r["b"]["losses"])
    assert not np.array_equal(r["a"]["pred"], r["c"]["pred"])


def test_real_fit_answers_in_log_returns(fits):
    _, r = fits
    pred, att, losses, y = r["a"]["pred"], r["a"]["att"], r["a"]["losses"], r["a"]["y_train"]
    assert pred.shape == (63,) and att.shape == (63, 60) and 1 <= len(losses) <= 15  # the default stops early
    np.testing.assert_allclose(att.sum(1), 1, rtol=1e-5)
    # daily log-return scale: near the training mean, well inside one training std
    assert np.all(np.abs(pred - y.mean()) < y.std())
    assert losses[-1] < 1.1 * y.var()


def test_reloaded_in_fresh_process_predicts_identically(fits):
    d, r = fits
    np.testing.assert_array_equal(np.load(d / "a.reloaded.npy"), r["a"]["pred"])
