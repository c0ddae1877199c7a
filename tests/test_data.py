"Real-data and process-level checks of lstm_forecast.data; the behaviour lessons live in nbs/01_data.ipynb."
import os, re, subprocess, sys, time, warnings
import pandas as pd, pytest
from lstm_forecast.testing import CLI, STOCKS
from lstm_forecast.config import Config
from lstm_forecast.data import (OHLCV, DataError, cache_path, check_history, import_csv, load_prices, read_price_csv,
                                write_cache)

pytestmark = pytest.mark.usefixtures("cache")  # every test gets its own empty cache directory, never the user's


@pytest.fixture
def yahoo(monkeypatch):
    "A `yfinance.download` that serves `yahoo.px` (None: fails as offline) and records the `start` of each call."
    class Fake:
        px, starts = None, []
        def __call__(self, ticker, start=None, **kw):
            self.starts.append(start)
            if self.px is None: raise ConnectionError("offline")
            df = self.px.loc[start:]
            df.columns = pd.MultiIndex.from_product([df.columns, [ticker]], names=["Price", "Ticker"])
            return df
    fake = Fake(); fake.starts = []
    monkeypatch.setattr("yfinance.download", fake)
    return fake


def test_imported_msft_loads_offline(yahoo):
    raw = pd.read_csv(STOCKS / "MSFT.csv", index_col="Date", parse_dates=True)
    import_csv(STOCKS / "MSFT.csv", "msft")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the import is current, so nothing is refreshed
        df = load_prices("MSFT")
    assert yahoo.starts == []
    assert df.attrs == dict(ticker="MSFT", source="cache")
    assert (len(df), f"{df.index[0]:%Y-%m-%d}", f"{df.index[-1]:%Y-%m-%d}") == (5031, "2005-10-10", "2025-10-08")
    assert list(df.columns) == OHLCV and df.index.name == "Date" and df.index.tz is None
    assert (df.dtypes == "float64").all()
    pd.testing.assert_frame_equal(df, raw.astype("float64").rename_axis("Date"), check_freq=False, check_index_type=False)
    assert len(load_prices("MSFT", start="2020-01-01", end="2020-12-31")) == 253


def test_sample_is_the_sp500_without_network(yahoo):
    df = load_prices("^GSPC")
    assert yahoo.starts == []
    assert df.attrs == dict(ticker="^GSPC", source="sample")
    assert (len(df), df.index[0].year, df.index[-1].year) == (5031, 1999, 2018)
    assert abs(df.Close["2018-12-31"] - 2506.85) < 0.01
    check_history(df, Config())


def test_every_shared_csv_reads_cleanly():
    files = sorted(STOCKS.glob("*.csv"))
    assert len(files) == 31
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in files:
            df = read_price_csv(f)
            assert (df[["Open", "High", "Low", "Close"]] > 0).all(axis=None) and df.index.is_unique


def test_refresh_splices_the_missing_days_of_real_prices(yahoo):
    full = read_price_csv(STOCKS / "AAPL.csv")
    write_cache("AAPL", full.iloc[:-100], "yfinance")
    yahoo.px = full
    df = load_prices("AAPL", refresh=True)
    assert yahoo.starts == [f"{full.index[-101] - pd.Timedelta(days=7):%Y-%m-%d}"]
    pd.testing.assert_frame_equal(df, full, check_freq=False)
    assert df.attrs["source"] == "yfinance"


def test_too_short_history_says_what_to_do():
    short = load_prices("^GSPC", start="2018-01-01")
    with pytest.raises(DataError, match=r"'\^GSPC' has 251 daily rows but the config needs at least 598 .*earlier start"):
        check_history(short, Config())


def test_offline_and_nothing_cached(yahoo):
    with pytest.raises(DataError) as e:
        load_prices("MSFT")
    assert str(e.value) == ("Could not download 'MSFT' from Yahoo Finance (network error ConnectionError: offline?) and nothing is"
                            " cached for it: import a CSV with `lstm-forecast import-csv FILE MSFT`, or use the bundled sample '^GSPC'.")


WRITER = """
import sys
from lstm_forecast.data import read_price_csv, write_cache
df = read_price_csv(sys.argv[1])
print("ready", flush=True)
for i in range(10**6): write_cache("MSFT", df if i % 2 else df.iloc[:2000], "yfinance")
"""


def test_killed_writer_never_leaves_a_corrupt_cache(cache):
    "A process killed while it rewrites the cache leaves the old or the new file, never a mix."
    write_cache("MSFT", read_price_csv(STOCKS / "MSFT.csv"), "yfinance")
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(STOCKS / "MSFT.csv")], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "LSTM_FORECAST_CACHE": str(cache)})
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.kill(); proc.wait()
        df = load_prices("MSFT", source="cache")
        assert len(df) in (5031, 2000) and df.index[0] == pd.Timestamp("2005-10-10")
    assert [p.name for p in cache_path("MSFT").parent.glob("*.parquet")] == ["MSFT.parquet"]


def test_every_shared_csv_and_the_sample_load_unchanged_through_import_and_cache():
    "The validity and gap checks keep every row of the 31 real files and of the bundled sample."
    files = sorted(STOCKS.glob("*.csv"))
    assert len(files) == 31
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in files:
            raw = pd.read_csv(f, index_col="Date", parse_dates=True).astype("float64").rename_axis("Date")
            import_csv(f, f.stem)
            pd.testing.assert_frame_equal(load_prices(f.stem), raw, check_freq=False, check_index_type=False)
        from arch.data import sp500
        assert len(load_prices("^GSPC")) == len(sp500.load()) == 5031


def broken_msft(tmp_path, edit):
    "MSFT.csv as `edit(frame)` returns it, written to a new file."
    edit(pd.read_csv(STOCKS / "MSFT.csv", index_col="Date")).to_csv(tmp_path / "broken.csv")
    return tmp_path / "broken.csv"


def test_import_refuses_an_infinite_close_and_caches_nothing(tmp_path):
    path = broken_msft(tmp_path, lambda df: df.assign(Close=df.Close.where(df.index != "2015-03-02", float("inf"))))
    assert ",inf," in path.read_text()
    with pytest.raises(DataError) as e:
        import_csv(path, "MSFT")
    assert str(e.value) == f"CSV file '{path}' has an infinite Close value (inf) on 2015-03-02: fix the value or remove the row."
    assert not cache_path("MSFT").exists()


def test_import_refuses_high_below_low(tmp_path):
    swap = lambda df: df.assign(High=df.Low.where(df.index == "2019-06-03", df.High), Low=df.High.where(df.index == "2019-06-03", df.Low))
    with pytest.raises(DataError, match=r"has High \S+ below Low \S+ on 2019-06-03: fix or remove that row\.$"):
        import_csv(broken_msft(tmp_path, swap), "MSFT")
    assert not cache_path("MSFT").exists()


def test_a_13_year_hole_keeps_the_rows_after_it_with_a_warning(tmp_path):
    path = broken_msft(tmp_path, lambda df: df.drop(df.loc["2006-01-01":"2018-12-31"].index))
    with pytest.warns(UserWarning) as w:
        imported = import_csv(path, "MSFT")
    assert [str(m.message) for m in w] == [
        f"CSV file '{path}' has a 4,751-day gap from 2005-12-30 to 2019-01-02: using the 1,702 rows after it,"
        " 2019-01-02 to 2025-10-08; choose another stretch with start and end, or fill the gap."]
    assert len(imported) == 1702 + 58  # the whole file is cached: the gap is split when prices are loaded
    for load in (lambda: load_prices("MSFT"), lambda: load_prices("MSFT", source="csv", csv=path)):
        with pytest.warns(UserWarning, match=r"^'MSFT' has a 4,751-day gap from 2005-12-30 to 2019-01-02: using the 1,702 rows"):
            df = load()
        assert (len(df), df.index[0]) == (1702, pd.Timestamp("2019-01-02"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        early = load_prices("MSFT", end="2010-01-01")
    assert (len(early), early.index[-1]) == (58, pd.Timestamp("2005-12-30"))


def test_rows_with_a_missing_value_are_still_dropped_with_a_warning(tmp_path):
    path = broken_msft(tmp_path, lambda df: df.assign(Close=df.Close.where(df.index != "2015-03-02")))
    with pytest.warns(UserWarning, match=rf"^CSV file '{path}': dropped 1 row\(s\) with missing values\.$"):
        df = import_csv(path, "MSFT")
    assert len(df) == 5030 and pd.Timestamp("2015-03-02") not in df.index


def _bad_csv(tmp_path, edit) -> str:
    "MSFT's CSV with `edit(frame)` applied, written to a file; its path."
    df = pd.read_csv(STOCKS / "MSFT.csv")
    path = tmp_path / "bad.csv"
    edit(df).to_csv(path, index=False)
    return str(path)

def _set(df, row, **values):
    for col, v in values.items(): df.loc[row, col] = v
    return df

BAD_CSVS = [  # (edit of MSFT's CSV, the sentence's telling part)
    (lambda df: _set(df, 0, Date="1000-01-04"), "has the date 1000-01-04, outside 1900-01-01 to"),
    (lambda df: _set(df, len(df) - 1, Date="3737-01-05"), "has the date 3737-01-05, outside 1900-01-01 to"),
    (lambda df: _set(df, 100, Open=1e300, High=1e300, Low=1e300, Close=1e300), "has Open 1e+300 on 2006-03-06, above the 1e+09 a price can be"),
    (lambda df: df.assign(Open=50.0, High=50.0, Low=50.0, Close=50.0), "has the same Close (50) on all 5,031 days: give prices that move."),
]

@pytest.mark.parametrize("edit, says", BAD_CSVS)
def test_import_csv_refuses_impossible_dates_huge_and_constant_prices_in_one_sentence_exit_2(tmp_path, cache, edit, says):
    "Dates before 1900 or after tomorrow, prices above 1e9 and closes that never move stop `import-csv`: one sentence, exit 2, nothing cached."
    path = _bad_csv(tmp_path, edit)
    with pytest.raises(DataError, match=re.escape(says)): import_csv(path, "BAD")
    res = subprocess.run([str(CLI), "import-csv", path, "BAD"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == "" and "Traceback" not in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr, res.stderr
    assert not cache_path("BAD").exists()


def test_check_history_refuses_closes_that_never_change():
    "A report does not start on a flat history (one sentence), as it does on a real one."
    px = read_price_csv(STOCKS / "MSFT.csv")
    check_history(px, Config(), "MSFT")
    flat = px.assign(Open=20.0, High=20.0, Low=20.0, Close=20.0)
    with pytest.raises(DataError, match=r"^'MSFT' has the same Close \(20\) on all 5,031 days: give prices that move\.$"):
        check_history(flat, Config(), "MSFT")
