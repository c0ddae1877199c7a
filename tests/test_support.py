"""What tests and benchmarks share is in `lstm_forecast.testing`, once: no benchmark imports a test file, and no test or
benchmark keeps its own copy of a path, a fast config or a helper that lives there (issue 19). Read from the syntax trees."""
import ast, re

from lstm_forecast import testing
from lstm_forecast.testing import FAST, FAST_API, ROOT

TESTS, BENCH = ROOT / "tests", ROOT / "bench"
SHARED = set(testing.__all__) - {"FAST", "FAST_TREND", "FAST_SERIAL", "FAST_API"}  # a test's own FAST is another thing
STOCKS_PATH = re.compile(r"""["']shared["']\s*/\s*["']data["']\s*/\s*["']stocks["']""")


def sources():
    for f in sorted([*TESTS.glob("*.py"), *BENCH.glob("*.py")]): yield f, ast.parse(f.read_text())


def test_no_benchmark_imports_a_test_file():
    test_modules = {f.stem for f in TESTS.glob("*.py")} | {"tests"}
    for f in sorted(BENCH.glob("*.py")):
        tree = ast.parse(f.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {m.split(".")[0] for m in imported} & test_modules, f"{f.name} imports a test file: use lstm_forecast.testing"
        sys_path = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "path"
                    and isinstance(n.value, ast.Name) and n.value.id == "sys"]
        assert not sys_path, f"{f.name} changes sys.path (line {sys_path[0].lineno if sys_path else 0})"


def test_the_shared_folder_is_named_once():
    for f in sorted([*TESTS.glob("*.py"), *BENCH.glob("*.py")]):
        assert not STOCKS_PATH.search(f.read_text()), f"{f.name} builds the path of the shared stocks: use lstm_forecast.testing.STOCKS"


def test_nothing_shared_is_defined_again():
    for f, tree in sources():
        assigned = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not (assigned | defined) & SHARED, f"{f.name} defines {sorted((assigned | defined) & SHARED)}: import them from lstm_forecast.testing"
        for n in ast.walk(tree):
            if isinstance(n, ast.Dict):
                try: value = ast.literal_eval(n)
                except ValueError: continue
                assert value not in (FAST, FAST_API), f"{f.name}:{n.lineno} copies a fast config of lstm_forecast.testing"


def test_conftest_holds_only_fixtures():
    tree = ast.parse((TESTS / "conftest.py").read_text())
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert any("fixture" in ast.unparse(d) for d in n.decorator_list), f"conftest.py defines {n.name}, not a fixture"


def test_what_a_report_run_writes_in_reports_is_ignored_by_git():
    "The report folder's files and `store.locked`'s lock beside the failures (`reports/.failures.json.lock`) stay out of `git status`."
    import subprocess
    from lstm_forecast.store import FAILURES, INDEX
    names = [INDEX, FAILURES, f".{FAILURES}.lock", f".{INDEX}.lock", "^GSPC.html", "^GSPC.run.zip", "^GSPC.bands.parquet"]
    res = subprocess.run(["git", "-c", "safe.directory=*", "check-ignore", "--no-index", *(f"reports/{n}" for n in names)], cwd=ROOT,
                         capture_output=True, text=True)
    assert sorted(res.stdout.split()) == sorted(f"reports/{n}" for n in names), res.stdout + res.stderr
