"""Run numbered notebooks in a fresh kernel and keep the outputs of their cheap example cells, as fastcore's notebooks do.

From the project root:  .venv/bin/python tools/run_examples.py nbs/07_metrics.ipynb [nbs/...]  (`make outputs` runs it on
every nbs/[0-9]*.ipynb). Each notebook runs top to bottom in its own kernel with nbs/ as the working folder, importing
lstm_forecast from this checkout; it skips the cells `nbdev_test` skips (`#| eval: false`, a `tst_flags` flag such as
`#| slow`, the `nbdev_export()` call). A cell that raises fails the script and leaves the notebook as it was.

A code cell keeps its outputs when it ran in under CHEAP seconds and its outputs are under LIMIT bytes of JSON, and it is
not exported (`#| export`, `#| exporti`, `#| exports`): the cells that train, and big figures (a plotly figure with its
data, or the cell that loads plotly.js into the page), stay without output. Outputs that would differ from one machine or
run to the next go whatever the cell: stderr (warnings, progress bars), widgets (their state is not saved), and text
holding a random temporary folder, this checkout's path or the home folder. The notebooks are then written back and
cleaned by `nbdev_clean` (no execution counts or metadata), so `make check-sync` holds.
"""
import argparse, configparser, copy, json, os, re, subprocess, sys, tempfile, time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CHEAP = 5.0  # seconds: a slower cell is training or a long computation, not an example to read
LIMIT = 100_000  # bytes of the cell's outputs as JSON: larger ones (big plotly figures) bloat the notebook and its diffs
TIMEOUT = 600  # seconds a cell may run before the script gives up
DIRECTIVE = re.compile(r"^#\|\s*([\w-]+:?)\s*(.*)$")
EXPORTED = {"export", "exporti", "exports"}
MACHINE = re.compile("|".join([re.escape(tempfile.gettempdir()) + r"/tmp\w{8}", re.escape(str(ROOT)), re.escape(str(Path.home()))]))


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


def steady(output) -> bool:
    "Whether `output` reads the same on another machine and another run: no stderr, no widget, no machine-specific path."
    if output.output_type == "stream": return output.name == "stdout" and not MACHINE.search(output.text)
    data = output.get("data", {})
    if "application/vnd.jupyter.widget-view+json" in data: return False
    return not any(MACHINE.search(v if isinstance(v, str) else json.dumps(v)) for v in data.values())


def kept(cell, ran) -> tuple[list, str]:
    "The outputs `cell` keeps from its executed copy `ran`, and why any were dropped ('' when none were)."
    if EXPORTED & directives(cell).keys(): return [], "exported" if ran.outputs else ""
    if (s := seconds(ran)) >= CHEAP: return [], f"{s:.1f} s"
    outs = [o for o in ran.outputs if steady(o)]
    if (n := len(json.dumps(outs))) >= LIMIT: return [], f"{n / 1e3:.0f} kB"
    return outs, "" if len(outs) == len(ran.outputs) else f"{len(ran.outputs) - len(outs)} unsteady outputs"


def run(path: Path, flags: set) -> str:
    "Execute the notebook at `path` in a fresh kernel, write it back with its cheap outputs, and say what was kept."
    nb = nbformat.read(path, as_version=4)
    todo = copy.deepcopy(nb)
    for c in todo.cells:
        if c.cell_type == "code" and skipped(c, flags): c.source = ""  # nbclient does not run an empty cell
    t0 = time.time()
    NotebookClient(todo, timeout=TIMEOUT, record_timing=True, resources={"metadata": {"path": str(path.parent)}}).execute()
    shown, dropped = 0, []
    for i, (c, r) in enumerate(zip(nb.cells, todo.cells)):
        if c.cell_type != "code": continue
        c.outputs, why = kept(c, r) if r.source else ([], "")
        shown += bool(c.outputs)
        if why: dropped.append(f"cell {i} ({why})")
    nbformat.write(nb, path)
    subprocess.run([Path(sys.executable).with_name("nbdev_clean"), "--fname", str(path)], cwd=ROOT, check=True)
    code = sum(c.cell_type == "code" for c in nb.cells)
    return f"{path.name}: {time.time() - t0:.0f} s, outputs kept in {shown} of {code} code cells" + \
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
