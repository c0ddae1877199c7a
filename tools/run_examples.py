"""Run numbered notebooks in a fresh kernel and keep the outputs of their cheap example cells, as fastcore's notebooks do.

From the project root:  .venv/bin/python tools/run_examples.py nbs/07_metrics.ipynb [nbs/...]  (`make outputs` runs it on
every nbs/[0-9]*.ipynb). Each notebook runs top to bottom in its own kernel with nbs/ as the working folder, importing
lstm_forecast from this checkout; it skips the cells `nbdev_test` skips (`#| eval: false`, a `tst_flags` flag such as
`#| slow`, the `nbdev_export()` call). A cell that raises fails the script and leaves the notebook as it was.

A code cell keeps its outputs when it ran in under CHEAP seconds and its outputs are under LIMIT bytes of JSON, and it is
not exported (`#| export`, `#| exporti`, `#| exports`): the cells that train, and big figures (a plotly figure of many
points), stay without output. A plotly figure keeps only its JSON, which JupyterLab and VS Code draw: the HTML copy
repeats the data, loads MathJax from the web and gets a new random id each run, and the copy of plotly.js it needs goes
too. Outputs that would differ from one machine or run to the next go whatever the cell: stderr (warnings, progress
bars), widgets (their state is not saved), and text holding a random temporary folder, this checkout's path, the home
folder, a time measured in seconds or a timestamp of the run. The notebooks are then written back and cleaned by
`nbdev_clean` (no execution counts or metadata), so `make check-sync` holds.
"""
import argparse, configparser, copy, json, os, re, subprocess, sys, tempfile
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
CHEAP = 5.0  # seconds: a slower cell is training or a long computation, not an example to read
LIMIT = 100_000  # bytes of the cell's outputs as JSON: larger ones (big plotly figures) bloat the notebook and its diffs
TIMEOUT = 600  # seconds a cell may run before the script gives up
DIRECTIVE = re.compile(r"^#\|\s*([\w-]+:?)\s*(.*)$")
EXPORTED = {"export", "exporti", "exports"}
PLOTLY, WIDGET = "application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json"
# Text that differs between machines or runs: a `tempfile.mkdtemp()` folder, this checkout, the home folder, a duration.
UNSTEADY = [re.escape(tempfile.gettempdir()) + r"/tmp\w{8}", re.escape(str(ROOT)), re.escape(str(Path.home())),
            r"(?<![\w.%-])\d+\.\d+ s\b"]  # "0.22 s", not the "2.5s6.5" of an SVG path


def directives(cell) -> dict:
    "The `#| name value` lines that open `cell`'s source, as {name: value}."
    out = {}
    for line in cell.source.splitlines():
        m = DIRECTIVE.match(line.strip())
        if not m: break
        out[m[1]] = m[2].strip()
    return out


def skipped(cell, flags: set) -> bool:
    "Whether `nbdev_test` skips the code `cell`: `#| eval: false`, a test flag, or the `nbdev_export()` call."
    d = directives(cell)
    return d.get("eval:", "").lower() == "false" or bool(flags & d.keys()) or "nbdev_export(" in cell.source


def seconds(cell) -> float:
    "How long `cell` ran, from the timestamps nbclient records (`record_timing`)."
    t = cell.metadata.get("execution", {})
    return (datetime.fromisoformat(t["shell.execute_reply"]) - datetime.fromisoformat(t["iopub.execute_input"])).total_seconds()


def unsteady(*times: datetime) -> re.Pattern:
    "`UNSTEADY` and a timestamp on the day of one of `times` (the run's start and end), in local time or UTC."
    days = sorted({t.astimezone(tz).date().isoformat() for t in times for tz in (None, timezone.utc)})
    return re.compile("|".join(UNSTEADY + [d + r"[T ]\d\d:\d\d" for d in days]))


def trimmed(output):
    "`output`, or its plotly figure's JSON alone when it shows one."
    if PLOTLY not in output.get("data", {}): return output
    return nbformat.from_dict({**output, "data": {PLOTLY: output.data[PLOTLY]}})


def plotly_js(output) -> bool:
    "Whether `output` is the copy of plotly.js that the notebook renderer puts before the first figure (for the HTML copies)."
    return "window.PlotlyConfig" in output.get("data", {}).get("text/html", "") and PLOTLY not in output.data


def merged(outputs: list) -> list:
    "`outputs` with each run of one stream as one output (the kernel splits it as timing falls), minus what a `\\r` overwrote."
    out = []
    for o in outputs:
        if o.output_type == "stream" and out and out[-1].output_type == "stream" and out[-1].name == o.name:
            out[-1] = nbformat.from_dict({**out[-1], "text": out[-1].text + o.text})
        else: out.append(o)
    return [nbformat.from_dict({**o, "text": re.sub(r"[^\n\r]*\r(?!\n)", "", o.text)}) if o.output_type == "stream" else o
            for o in out]


def steadied(outputs: list, unsteady: re.Pattern) -> list:
    "`outputs` as they read on another machine and another run: no stderr, widget or plotly.js, no `unsteady` text."
    out = []
    for o in merged(outputs):
        if o.output_type == "stream":  # stdout without its lines that hold `unsteady` text
            text = "".join(l for l in o.text.splitlines(keepends=True) if not unsteady.search(l))
            if o.name == "stdout" and text: out.append(nbformat.from_dict({**o, "text": text}))
        elif WIDGET not in o.get("data", {}) and not plotly_js(o):
            o = trimmed(o)
            if not any(unsteady.search(v if isinstance(v, str) else json.dumps(v)) for v in o.data.values()): out.append(o)
    return merged(out)  # again: stdout that stderr had split


def kept(cell, ran, unsteady: re.Pattern) -> tuple[list, str]:
    "The outputs `cell` keeps from its executed copy `ran`, and why any were dropped ('' when none were)."
    if EXPORTED & directives(cell).keys(): return [], "exported" if ran.outputs else ""
    if (s := seconds(ran)) >= CHEAP: return [], f"{s:.1f} s"
    outs = steadied(ran.outputs, unsteady)
    if (n := len(json.dumps(outs))) >= LIMIT: return [], f"{n / 1e3:.0f} kB"
    return outs, "" if outs == [trimmed(o) for o in merged(ran.outputs)] else "some outputs left out"


def run(path: Path, flags: set) -> str:
    "Execute the notebook at `path` in a fresh kernel, write it back with its cheap outputs, and say what was kept."
    nb = nbformat.read(path, as_version=4)
    todo = copy.deepcopy(nb)
    for c in todo.cells:
        if c.cell_type == "code" and skipped(c, flags): c.source = ""  # nbclient does not run an empty cell
    t0 = datetime.now(timezone.utc)
    NotebookClient(todo, timeout=TIMEOUT, record_timing=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    t1 = datetime.now(timezone.utc)
    shown, dropped = 0, []
    for i, (c, r) in enumerate(zip(nb.cells, todo.cells)):
        if c.cell_type != "code": continue
        c.outputs, why = kept(c, r, unsteady(t0, t1)) if r.source else ([], "")
        shown += bool(c.outputs)
        if why: dropped.append(f"cell {i} ({why})")
    nbformat.write(nb, path)
    subprocess.run([Path(sys.executable).with_name("nbdev_clean"), "--fname", str(path)], cwd=ROOT, check=True)
    code = sum(c.cell_type == "code" for c in nb.cells)
    return f"{path.name}: {(t1 - t0).total_seconds():.0f} s, outputs kept in {shown} of {code} code cells" + \
        (f"; dropped: {', '.join(dropped)}" if dropped else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="+", type=Path, help="numbered notebooks, such as nbs/07_metrics.ipynb")
    a = ap.parse_args()
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    flags = set(cfg["DEFAULT"].get("tst_flags", "").split())
    # The kernels import lstm_forecast from this checkout, not from whatever the environment has installed.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    for p in a.notebooks: print(run(p.resolve(), flags), flush=True)


if __name__ == "__main__":
    sys.exit(main())
