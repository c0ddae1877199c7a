"""One rule of "same data" and one of "same model": every module asks the store, none keeps its own.

The store's keys are tested in nbs/00a_store.ipynb; here the rest of the package is read (its syntax tree) to check
that nobody else hashes prices or configs, and that the band, the model cache and the report's freshness follow
the store's keys when they change."""
import ast
from pathlib import Path

import lstm_forecast
from lstm_forecast import store

PKG = Path(lstm_forecast.__file__).parent
RULES = {"data_digest", "model_key", "config_key"}  # the store's identities


def modules():
    for f in sorted(PKG.glob("*.py")):
        if f.name not in ("store.py", "_modidx.py"): yield f, ast.parse(f.read_text())


def test_nobody_but_the_store_hashes():
    for f, tree in modules():
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "hashlib" not in imported, f"{f.name} imports hashlib: digests belong to lstm_forecast.store"
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not defined & RULES and not {d for d in defined if d.endswith("_digest")}, f"{f.name} defines its own identity"


def test_every_use_of_an_identity_is_the_stores():
    users = set()
    for f, tree in modules():
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} & RULES
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} & RULES
        from_store = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module in ("lstm_forecast.store", "store")
                      and n.level in (0, 1) for a in n.names}
        assert names <= from_store, f"{f.name} uses {sorted(names - from_store)} without importing them from lstm_forecast.store"
        if names or attrs: users.add(f.name)
    # the model cache and the band (forecast), report freshness (universe), the summary (report), the API's training key
    assert {"forecast.py", "universe.py", "run.py", "api.py", "service.py"} <= users, users


def test_the_band_follows_the_model_key(monkeypatch):
    "Changing the store's rule changes the forecast's decision: the forecast has no rule of its own."
    from lstm_forecast.config import Config, with_overrides
    from lstm_forecast.data import synthetic_prices
    from lstm_forecast.forecast import fit_final, forecast
    from lstm_forecast.walk_forward import walk_forward
    cfg = with_overrides(Config(), {"model.epochs": 1, "model.hidden": 4, "model.seq_len": 10, "walk_forward.train": 150,
                                    "walk_forward.test": 50, "walk_forward.step": 50, "regime.method": "none",
                                    "walk_forward.workers": 1, "forecast.band_min_errors": 30})
    px = synthetic_prices(500, seed=4)
    final = fit_final(px, cfg, progress=False, cache=False)
    other = walk_forward(px, with_overrides(cfg, {"seed": 7}), progress=False)  # another seed: another model
    assert forecast(final, px, 5, wf=other).attrs["band_note"].startswith("no band: the walk-forward ran another model")
    monkeypatch.setattr(store, "model_key", lambda c: "one model")  # a rule under which every config is the same model
    assert not forecast(final, px, 5, wf=other).attrs["band_note"].startswith("no band")
