"The tests' pytest fixtures: a private price cache, no network. What tests and benchmarks share is `lstm_forecast.testing`."
import pytest
from lstm_forecast.testing import CACHE_VAR, OFFLINE
from lstm_forecast.testing import *  # noqa: F403 (re-exported: a test may still import them from conftest)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    "An empty price cache for one test, never the user's."
    path = tmp_path / "cache"
    path.mkdir()
    monkeypatch.setenv(CACHE_VAR, str(path))
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    "One empty price cache for all the tests of a module, never the user's."
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_VAR, str(path))
        yield path


@pytest.fixture
def offline(monkeypatch):
    "No network for one test (and the processes it starts): every download fails at once."
    for k, v in OFFLINE.items(): monkeypatch.setenv(k, v)
