"The numbered notebooks show what their example cells give, as `make outputs` (tools/run_examples.py) leaves them: read as JSON."
import itertools, json, re
from pathlib import Path

import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"
SHOWN = tuple(sorted(p.stem for p in NBS.glob("[0-9]*.ipynb")))  # every numbered notebook, as `make outputs` leaves it
EXPORTED = re.compile(r"^#\|\s*export[is]?\b")


def code_cells(name: str) -> list:
    "The code cells of nbs/`name`.ipynb."
    return [c for c in json.loads((NBS / f"{name}.ipynb").read_text())["cells"] if c["cell_type"] == "code"]


def exported(cell) -> bool:
    "Whether the `#|` directives that open `cell` hold `export`, `exporti` or `exports`."
    lines = "".join(cell["source"]).splitlines()
    return any(EXPORTED.match(l) for l in itertools.takewhile(lambda l: l.startswith("#|"), lines))


@pytest.mark.parametrize("name", SHOWN)
def test_outputs_kept(name):
    cells = code_cells(name)
    assert any(c["outputs"] for c in cells if not exported(c)), f"{name}: no example cell keeps its outputs: run make outputs"
    assert not [c["id"] for c in cells if exported(c) and c["outputs"]], f"{name}: exported cells keep outputs"
    stderr = [c["id"] for c in cells if any(o.get("name") == "stderr" for o in c["outputs"])]
    assert not stderr, f"{name}: cells {stderr} keep stderr (warnings, progress bars)"


def test_shown_are_numbered_notebooks():
    assert set(SHOWN) <= {p.stem for p in NBS.glob("[0-9]*.ipynb")}
