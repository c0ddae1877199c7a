"Figures drawn in a real browser: labels inside the figure, axis titles clear of the tick labels; screenshots left in tests/artifacts."
import numpy as np, pandas as pd, plotly.io as pio, pytest

from lstm_forecast.testing import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from lstm_forecast import tearsheet as ts
from lstm_forecast.plots import (attention_by_lag, daily_returns_chart, distribution_chart, drawdown_periods_chart, ic_bars,
                                 rolling_sortino_chart, rolling_volatility_chart, volatility_matched_chart)


def many_folds(n=70, start="2001-03-05", test=63):
    "IC per fold of `n` quarterly folds, as `bt.ic_folds` and `bt.wf.folds` give them (a 2001-2018 report has ~70)."
    days = pd.bdate_range(start, periods=n * test)
    folds = pd.DataFrame(dict(test_start=days[::test], test_end=days[test - 1::test]))
    rng = np.random.default_rng(1)
    ic = pd.DataFrame(dict(n=test, ic=rng.normal(0.01, 0.08, n), rank_ic=rng.normal(0.01, 0.08, n)))
    ic.loc["all"] = [n * test, 0.012, 0.009]
    return ic, folds


def near_uniform_attention(seq_len=60, days=500):
    "Attention within 0.5 % of uniform, as a trained model gives it."
    w = (1 + 0.005 * np.sin(np.arange(seq_len) / 5))[None, :] * np.ones((days, 1))
    return pd.DataFrame(w / w.sum(1, keepdims=True), columns=[f"lag_{k}" for k in range(seq_len - 1, -1, -1)])


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport=dict(width=1000, height=600))
        browser.close()


def tear_sheet_figures() -> dict:
    "The tear sheet's figures of QuantStats' and pyfolio's of a seeded strategy, buy-and-hold and benchmark over eight years."
    days = pd.bdate_range("2011-01-03", periods=2000)
    rng = np.random.default_rng(3)
    bh = pd.Series(rng.normal(3e-4, 0.011, len(days)), index=days, name="buy_hold")
    net = (0.05 * bh * np.sign(rng.normal(0.1, 1, len(days)))).rename("net")
    series = {"strategy (net)": net, "buy and hold": bh, "benchmark (SPY)": bh + rng.normal(0, 0.002, len(days))}
    k = ts.volatility_scale(net, bh)
    return dict(
        volatility_matched=volatility_matched_chart(pd.DataFrame({"net": ts.match_volatility(net, bh), "buy_hold": bh}), k),
        drawdown_periods=drawdown_periods_chart(net, ts.worst_drawdowns(net, 10)),
        daily_returns=daily_returns_chart(net),
        rolling_volatility=rolling_volatility_chart(pd.DataFrame({n: ts.rolling_volatility(r) for n, r in series.items()})),
        rolling_sortino=rolling_sortino_chart(pd.DataFrame({n: ts.rolling_sortino(r) for n, r in series.items()})),
        monthly_distribution=distribution_chart(ts.return_histograms(pd.DataFrame({n: ts.period_returns(r) for n, r in series.items()}))))


def draw(page, fig, name, ready=".xtick text"):
    "Render `fig` (plotly.js inline, no network) and screenshot it to tests/artifacts/<name>.png, once `ready` is drawn."
    ARTIFACTS.mkdir(exist_ok=True)
    html = ARTIFACTS / f"{name}.html"
    html.write_text(pio.to_html(fig, include_plotlyjs=True, config=dict(displayModeBar=False)))
    page.goto(html.as_uri())
    page.wait_for_selector(ready)
    page.locator(".js-plotly-plot").first.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    html.unlink()


def boxes(page, selector):
    return page.eval_on_selector_all(selector, "els => els.map(e => { const b = e.getBoundingClientRect();"
                                               " return {top: b.top, bottom: b.bottom, text: e.textContent}; })")


def test_ic_bars_labels_fit(page):
    "Many folds: every tick label is a whole YYYY-MM inside the figure, and the axis title sits below all of them."
    ic, folds = many_folds()
    draw(page, ic_bars(ic, folds), "ic_bars")
    ticks, title = boxes(page, ".xtick text"), boxes(page, ".g-xtitle text")[0]
    figure = page.locator(".main-svg").first.bounding_box()
    assert max(t["bottom"] for t in ticks) <= title["top"]  # before the fix: labels 43 px into the title
    assert title["bottom"] <= figure["y"] + figure["height"]  # ... and beyond the figure's bottom edge
    assert all(len(t["text"]) == 7 and t["text"][4] == "-" for t in ticks), [t["text"] for t in ticks][:5]


def test_attention_axis_spans_uniform(page):
    "Attention within 0.5 % of uniform is drawn relative to uniform on a 0.9-1.1 axis: the y tick labels say so."
    draw(page, attention_by_lag(near_uniform_attention()), "attention_by_lag")
    values = [float(t["text"]) for t in boxes(page, ".ytick text")]
    assert min(values) <= 0.9 and max(values) >= 1.1


@pytest.mark.parametrize("width", [768, 1400])
def test_tear_sheet_legends_clear_of_title_and_axes(page, width):
    "At 768 and 1400 px the tear sheet's legends lie below the title, the plot and its labels, inside the figure."
    page.set_viewport_size(dict(width=width, height=700))
    for name, fig in tear_sheet_figures().items():
        draw(page, fig, f"{name}_{width}", ready=".xaxislayer-above text")
        labels = boxes(page, ".xaxislayer-above text, .yaxislayer-above text, .g-xtitle text, .g-x2title text")
        if not fig.layout.showlegend and len(fig.data) == 1 and not fig.layout.shapes: continue  # one trace: plotly draws no legend
        bottom = lambda b: b["y"] + b["height"]
        legend, title = page.locator(".legend").first.bounding_box(), page.locator(".gtitle").first.bounding_box()
        figure = page.locator(".main-svg").first.bounding_box()
        assert bottom(title) <= legend["y"], name
        assert max(t["bottom"] for t in labels) <= legend["y"] and bottom(legend) <= bottom(figure), name
