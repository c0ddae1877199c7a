"""What the Voila dashboard costs: time to first render, forecast latency cold (training) and warm (cached model),
and the memory and time of five concurrent page sessions. Default config on the bundled ^GSPC, offline.

usage: .venv/bin/python bench/dashboard.py   (about 2-3 minutes on 2 cores; prints a table of numbers)"""
import argparse, asyncio, os, re, tempfile, time, urllib.error, urllib.request
from pathlib import Path

# the tests' browser and network settings, and their way of serving the dashboard
from lstm_forecast.testing import CHROMIUM, CHROMIUM_ARGS, OFFLINE, ROOT, free_port, make_dashboard_args, start_server

LONG = 150_000  # ms
CANDLES = "() => [...document.querySelectorAll('.js-plotly-plot')].some(d => (d.data || []).some(t => t.type === 'candlestick'))"


def tree(pid: int) -> list[int]:
    "`pid` and all its descendants, from /proc."
    kids = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try: ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError): continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(); out.append(p); todo += kids.get(p, [])
    return out


def memory(pid: int) -> tuple[float, float, int]:
    "(RSS MB, PSS MB, processes) of `pid` and its descendants (voila and its kernels)."
    rss = pss = 0
    pids = tree(pid)
    for p in pids:
        try:
            rss += int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{p}/status").read_text()).group(1))
            pss += int(re.search(r"^Pss:\s+(\d+)", Path(f"/proc/{p}/smaps_rollup").read_text(), re.M).group(1))
        except (OSError, AttributeError): pass
    return rss / 1024, pss / 1024, len(pids)


async def offline_page(browser):
    context = await browser.new_context(viewport=dict(width=1400, height=1600))  # a user of its own: own connections
    page = await context.new_page()
    local = re.compile(r"^https?://(localhost|127\.0\.0\.1)(:\d+)?/")
    async def route(r):
        await (r.continue_() if local.match(r.request.url) else r.abort())
    await page.route("**/*", route)
    page.set_default_timeout(LONG)
    return page


async def open_dashboard(browser, url) -> tuple[object, float]:
    "A page showing the dashboard's candlestick, and the seconds it took."
    page, t0 = await offline_page(browser), time.perf_counter()
    await page.goto(url, timeout=LONG)
    await page.wait_for_function(CANDLES, timeout=LONG)
    return page, time.perf_counter() - t0


async def leave(page):
    "Close the page as a browser tab closes: its beforeunload beacon asks Voila to shut the kernel down."
    await page.goto("about:blank")
    await page.context.close()


async def generate(page) -> float:
    "Seconds from clicking Generate forecast to the 7-row table."
    t0 = time.perf_counter()
    await page.get_by_role("button", name="Generate forecast").click()
    await page.locator("table.forecast-table tbody tr").nth(6).wait_for(timeout=LONG)
    return time.perf_counter() - t0


async def main():
    from playwright.async_api import async_playwright
    rows = []
    say = lambda k, v: (rows.append((k, v)), print(f"{k:<58} {v}", flush=True))
    with tempfile.TemporaryDirectory() as cache:
        port = free_port()
        env = {**os.environ, **OFFLINE, "LSTM_FORECAST_CACHE": cache}
        env.pop("LSTM_FORECAST_OVERRIDES", None)  # the default config
        log = Path(tempfile.gettempdir()) / "lstm_forecast_bench_voila.log"  # kept for a look afterwards
        url = f"http://127.0.0.1:{port}/"
        # ping.png answers 404 without starting a kernel; on the way out voila's whole session stops, kernels too
        with start_server(make_dashboard_args(port), url + "voila/files/ping.png", env, log, timeout=60, cwd=ROOT) as proc:
            say("voila idle: RSS / PSS MB (processes)", "%.0f / %.0f (%d)" % memory(proc.pid))
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page, s = await open_dashboard(browser, url)
                say("first render in the browser (goto -> candlestick), s", f"{s:.1f}")
                say("one session: RSS / PSS MB (processes)", "%.0f / %.0f (%d)" % memory(proc.pid))
                say("forecast cold (trains the final model, default config), s", f"{await generate(page):.1f}")
                say("forecast warm (same page, model from the disk cache), s", f"{await generate(page):.1f}")
                await leave(page)
                page, s = await open_dashboard(browser, url)
                say("forecast warm (new session, model from the disk cache), s", f"{await generate(page):.1f}")
                await leave(page)
                await asyncio.sleep(3)  # closed pages shut their kernels down
                base = memory(proc.pid)
                say("after closing both pages: RSS / PSS MB (processes)", "%.0f / %.0f (%d)" % base)
                t0 = time.perf_counter()
                results = await asyncio.gather(*[open_dashboard(browser, url) for _ in range(5)], return_exceptions=True)
                wall = time.perf_counter() - t0
                opened = [r for r in results if not isinstance(r, BaseException)]
                say("five concurrent sessions: rendered, of 5", f"{len(opened)} (failures: {[type(r).__name__ for r in results if isinstance(r, BaseException)]})")
                say("five concurrent sessions: all rendered after, s", f"{wall:.1f} (each {', '.join(f'{s:.1f}' for _, s in opened)})")
                five = memory(proc.pid)
                say("five concurrent sessions: RSS / PSS MB (processes)", "%.0f / %.0f (%d)" % five)
                say("  per session (PSS above the server before them), MB", f"{(five[1] - base[1]) / 5:.0f}")
                t0 = time.perf_counter()
                times = await asyncio.gather(*[generate(pg) for pg, _ in opened])
                say(f"{len(opened)} concurrent warm forecasts: all done after, s", f"{time.perf_counter() - t0:.1f} (each {', '.join(f'{s:.1f}' for s in times)})")
                await browser.close()
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=600) as r: r.read()  # its kernel lives until culled: measured last
            say("GET / without a browser (kernel + notebook run + HTML), s", f"{time.perf_counter() - t0:.1f}")
    return rows


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()  # --help
    asyncio.run(main())
