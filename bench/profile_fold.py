"""Where one walk-forward fold spends its time: pyinstrument over two folds of MSFT, default config, one thread.

Run by hand (not in CI):  .venv/bin/pip install pyinstrument && .venv/bin/python bench/profile_fold.py
"""
import torch
from pyinstrument import Profiler
from lstm_forecast.config import Config, with_overrides
from lstm_forecast.data import read_price_csv
from lstm_forecast.features import make_features
from lstm_forecast.walk_forward import make_folds, run_fold
from lstm_forecast.testing import STOCKS

torch.set_num_threads(1)
px = read_price_csv(STOCKS / "MSFT.csv").iloc[-2600:]
cfg = with_overrides(Config(), {"walk_forward.workers": 1})
feats = make_features(px, cfg.features)
folds = make_folds(int(feats.target.notna().sum()), cfg.walk_forward)
run_fold(feats, px, folds[0], cfg)  # warm-up (oneDNN)
p = Profiler(); p.start()
for f in folds[1:3]: run_fold(feats, px, f, cfg)
p.stop()
print(p.output_text(unicode=False, color=False))
