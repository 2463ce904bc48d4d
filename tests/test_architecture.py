"""Import direction: app -> experiments -> mucore. mucore depends on torch only; neither mucore
nor experiments ever imports streamlit (checked on the real import graph, in a fresh process).
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules(package: str) -> list[str]:
    pkg_dir = ROOT / package
    names = [package]
    for info in pkgutil.walk_packages([str(pkg_dir)], prefix=f"{package}."):
        names.append(info.name)
    return names


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def test_mucore_imports_only_torch_and_stdlib() -> None:
    allowed = set(sys.stdlib_module_names) | {"torch", "mucore"}
    offenders = {}
    for path in (ROOT / "mucore").rglob("*.py"):
        bad = _imported_top_levels(path) - allowed
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, f"mucore must depend on torch only: {offenders}"


def test_experiments_never_imports_app_or_streamlit_in_source() -> None:
    offenders = {}
    for pkg in ("mucore", "experiments"):
        for path in (ROOT / pkg).rglob("*.py"):
            bad = _imported_top_levels(path) & {"streamlit", "app"}
            if bad:
                offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}, offenders


def test_importing_every_engine_module_pulls_no_streamlit() -> None:
    modules = _modules("mucore") + _modules("experiments")
    code = (
        "import importlib, json, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods:\n"
        "    if m.endswith('__main__'):\n"
        "        continue\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('streamlit', 'app'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# --- The app's door into the engine -------------------------------------------------------------

# The experiments modules `app/` may import: the service (the engine's one door) and the
# torch-free value types the Setup form is generated from.
APP_ALLOWED_ENGINE_MODULES = frozenset({
    "experiments.service",
    "experiments.spec",
    "experiments.config",
    "experiments.errors",
    "experiments.settings",
    "experiments.models.configs",
    "experiments.tasks.config",
})
# From `experiments.analysis`, only the pure display helpers the charts share with the verdict
# (so a chart draws the curve the verdict is computed on); never `analyze` or the report code.
APP_ALLOWED_ANALYSIS_NAMES = frozenset({
    "FINISHED_STATES",
    "PARAM_ORDER",
    "diverged_mask",
    "finished",
    "grid_optima",
    "param_order",
    "seed_mean",
    "seed_summary",
})
# Per file, beyond those: the `mutransfer` command is the engine's CLI plus `dashboard`.
APP_FILE_EXTRA_ENGINE_MODULES = {"app/cli.py": frozenset({"experiments.cli"})}
_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})


def _is_engine(module: str) -> bool:
    return module == "experiments" or module.startswith("experiments.")


def forbidden_engine_imports(source: str, filename: str = "<app>") -> list[str]:
    """The engine imports of one app file that are outside the allowed list, in source order.

    Every import counts wherever it is (module level, inside a function, under TYPE_CHECKING),
    and so does `importlib.import_module("experiments...")` with a literal name. A forbidden
    name imported from `experiments.analysis` is reported as `experiments.analysis.<name>`.
    """
    bad: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names
                    if _is_engine(a.name) and a.name not in APP_ALLOWED_ENGINE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "experiments":  # `from experiments import store`
                bad += [f"experiments.{a.name}" for a in node.names
                        if f"experiments.{a.name}" not in APP_ALLOWED_ENGINE_MODULES]
            elif node.module == "experiments.analysis":
                bad += [f"experiments.analysis.{a.name}" for a in node.names
                        if a.name not in APP_ALLOWED_ANALYSIS_NAMES]
            elif _is_engine(node.module) and node.module not in APP_ALLOWED_ENGINE_MODULES:
                bad.append(node.module)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if (name in _DYNAMIC_IMPORTS and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str) and _is_engine(arg.value)
                    and arg.value not in APP_ALLOWED_ENGINE_MODULES):
                bad.append(arg.value)
    return bad


def test_app_reaches_the_engine_only_through_the_service() -> None:
    app_files = sorted((ROOT / "app").rglob("*.py"))
    assert len(app_files) > 10, "the app's sources were not found"
    offenders = {}
    for path in app_files:
        rel = path.relative_to(ROOT).as_posix()
        extra = APP_FILE_EXTRA_ENGINE_MODULES.get(rel, frozenset())
        bad = [m for m in forbidden_engine_imports(path.read_text(), filename=str(path))
               if m not in extra]
        if bad:
            offenders[rel] = bad
    assert offenders == {}, (
        "app/ may import from experiments only "
        f"{sorted(APP_ALLOWED_ENGINE_MODULES)} and display helpers of experiments.analysis "
        f"({sorted(APP_ALLOWED_ANALYSIS_NAMES)}); add what a page needs to "
        f"experiments.service instead. Offending imports by file: {offenders}"
    )


def test_the_import_checker_catches_each_kind_of_violation() -> None:
    cases = {
        "from experiments.store import Store\n": ["experiments.store"],
        "import experiments.runner\n": ["experiments.runner"],
        "import experiments.bundle as b\n": ["experiments.bundle"],
        "from experiments import sweeps, service\n": ["experiments.sweeps"],
        "def page():\n    from experiments.verify import verify\n": ["experiments.verify"],
        "if TYPE_CHECKING:\n    from experiments.estimate import SweepEstimate\n": ["experiments.estimate"],
        "from experiments.analysis import analyze, param_order\n": ["experiments.analysis.analyze"],
        "from experiments.analysis.report import analyze\n": ["experiments.analysis.report"],
        "import importlib\nimportlib.import_module('experiments.train')\n": ["experiments.train"],
    }
    for source, want in cases.items():
        assert forbidden_engine_imports(source) == want, source
    allowed = (
        "from experiments.service import Service, ServiceError\n"
        "from experiments.spec import SweepSpec\n"
        "from experiments.models.configs import ModelConfig\n"
        "from experiments.tasks.config import TaskConfig\n"
        "from experiments.analysis import param_order, seed_summary\n"
        "import experiments.settings\n"
        "from app import state\n"
        "import pandas as pd\n"
    )
    assert forbidden_engine_imports(allowed) == []


def test_the_service_and_the_spec_import_without_torch() -> None:
    code = (
        "import json, sys\n"
        "import experiments.service, experiments.spec\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


MAX_FUNCTION_LINES = 60
# The docstring phrase that lets a function run longer: it must say why it is not split.
LONG_FUNCTION_EXCUSE = "long on purpose"


def long_functions(source: str, filename: str = "<src>") -> list[str]:
    """Functions over MAX_FUNCTION_LINES lines of code (docstring, comments and blank lines
    excluded) whose docstring does not say why ("long on purpose: ...")."""
    lines = source.splitlines()
    out = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        doc = ast.get_docstring(node) or ""
        first = node.body[0]
        body_start = first.end_lineno if doc and first.end_lineno else node.lineno
        code = [ln for ln in lines[body_start:node.end_lineno]
                if ln.strip() and not ln.strip().startswith("#")]
        if len(code) > MAX_FUNCTION_LINES and LONG_FUNCTION_EXCUSE not in doc:
            out.append(f"{filename}:{node.lineno} {node.name} ({len(code)} lines)")
    return out


def test_no_function_in_the_engine_or_app_is_over_sixty_lines() -> None:
    offenders = []
    for pkg in ("experiments", "app", "mucore"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            offenders += long_functions(path.read_text(), str(path.relative_to(ROOT)))
    assert offenders == [], "split these at their natural seams (or say why not):\n" + "\n".join(
        offenders)


def test_the_length_check_counts_code_not_docstrings() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    long_fn = f"def f():\n    '''Doc.\n\n    More doc.\n    '''\n{body}\n"
    assert long_functions(long_fn) == ["<src>:1 f (61 lines)"]
    short = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    padded = f"def g():\n    '''Doc.'''\n    # why\n\n{short}\n"
    assert long_functions(padded) == []
    excused = long_fn.replace("Doc.", f"Doc: {LONG_FUNCTION_EXCUSE}, one table of cases.")
    assert long_functions(excused) == []
