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
    "experiments.spec.sweep",
    "experiments.spec.run",
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
        "import experiments.bundle.build as b\n": ["experiments.bundle.build"],
        "from experiments import sweep, service\n": ["experiments.sweep"],
        "def page():\n    from experiments.bundle.verify import verify\n": ["experiments.bundle.verify"],
        "if TYPE_CHECKING:\n    from experiments.spec.estimate import SweepEstimate\n": ["experiments.spec.estimate"],
        "from experiments.analysis import analyze, param_order\n": ["experiments.analysis.analyze"],
        "from experiments.analysis.report import analyze\n": ["experiments.analysis.report"],
        "import importlib\nimportlib.import_module('experiments.train')\n": ["experiments.train"],
    }
    for source, want in cases.items():
        assert forbidden_engine_imports(source) == want, source
    allowed = (
        "from experiments.service import Service, ServiceError\n"
        "from experiments.spec.sweep import SweepSpec\n"
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
        "import experiments.service, experiments.spec.sweep\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


MAX_FUNCTION_LINES = 60
# The docstring phrase that lets a function run longer: it must say why it is not split.
LONG_FUNCTION_EXCUSE = "long on purpose"


def _code_lines(lines: list[str], start: int, end: int) -> int:
    """How many of `lines[start:end]` are code: blank lines and comments do not count."""
    return sum(1 for ln in lines[start:end] if ln.strip() and not ln.strip().startswith("#"))


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
        code = _code_lines(lines, body_start, node.end_lineno or node.lineno)
        if code > MAX_FUNCTION_LINES and LONG_FUNCTION_EXCUSE not in doc:
            out.append(f"{filename}:{node.lineno} {node.name} ({code} lines)")
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


# A page is a script Streamlit runs top to bottom on every rerun: its top-level code is a
# function body in all but name, so it is held to the same limit. Counted like a function body
# (code lines; blank lines and comments do not count), leaving out the module docstring, the
# imports, and `def`/`class` statements whole (the function rule above covers their bodies).
# Everything else at module level counts, constants and `with`/`if` blocks included.
PAGE_SCRIPTS = ("app/main.py", "app/views/*.py")
_NOT_PAGE_CODE = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def long_page_script(source: str, filename: str = "<src>") -> list[str]:
    """The page, if its top-level code runs over MAX_FUNCTION_LINES lines (see above)."""
    tree = ast.parse(source, filename=filename)
    lines = source.splitlines()
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    code = sum(_code_lines(lines, node.lineno - 1, node.end_lineno or node.lineno)
               for node in body if not isinstance(node, _NOT_PAGE_CODE))
    return [f"{filename} top level ({code} lines)"] if code > MAX_FUNCTION_LINES else []


def test_no_page_script_runs_over_sixty_top_level_lines() -> None:
    pages = sorted({path for pattern in PAGE_SCRIPTS for path in ROOT.glob(pattern)})
    assert len(pages) > 1, "no page scripts found: has app/views moved?"
    offenders = [o for path in pages
                 for o in long_page_script(path.read_text(), str(path.relative_to(ROOT)))]
    assert offenders == [], ("move these pages' sections into named functions:\n"
                             + "\n".join(offenders))


def test_the_page_check_counts_top_level_code_only() -> None:
    head = ("'''A page.\n\nMore doc.\n'''\n\n"
            "from __future__ import annotations\n\nimport streamlit as st\n")
    function = "def section() -> None:\n" + "\n".join(f"    st.write({i})" for i in range(50)) + "\n"
    statements = [f"st.write({i})" for i in range(MAX_FUNCTION_LINES)]
    page = head + function + "# why\n\n" + "\n".join(statements) + "\n"
    assert long_page_script(page) == []  # 60 lines: the docstring, imports and def do not count
    assert long_page_script(page + "section()\n") == ["<src> top level (61 lines)"]
    # A block counts every code line it holds, its header included.
    blocked = head + "with st.sidebar:\n" + "\n".join(f"    {s}" for s in statements) + "\n"
    assert long_page_script(blocked) == ["<src> top level (61 lines)"]


# --- Import cycles ------------------------------------------------------------------------------

# Module name -> (source, is a package's __init__).
Sources = dict[str, tuple[str, bool]]


def _package_sources(package: str) -> Sources:
    """Every module of a top-level package, by dotted name, read from disk."""
    out: Sources = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (path.read_text(), is_package)
    return out


def _type_only_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside an `if TYPE_CHECKING:` body (at any depth)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                out.update(id(n) for n in ast.walk(stmt))
    return out


def _imported_names(module: str, source: str, is_package: bool,
                    type_only: bool) -> set[tuple[str, str]]:
    """Every import of a module's source as (the submodule it may name, the module it names):
    module level, inside functions and, when `type_only`, under TYPE_CHECKING. Relative imports
    are resolved; `from pkg import x` is ("pkg.x", "pkg") and `import a.b` is ("a.b", "a.b")."""
    tree = ast.parse(source, filename=module)
    skip = set() if type_only else _type_only_nodes(tree)
    here = module.split(".") if is_package else module.split(".")[:-1]
    names: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update((alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            names.update((f"{target}.{alias.name}", target) for alias in node.names)
    return names


def import_graph(sources: Sources, *, type_only: bool = True) -> dict[str, set[str]]:
    """Module -> the modules of `sources` it imports. `from pkg import x` is an edge to the
    submodule `pkg.x` when there is one, else to `pkg`; an import of `a.b.c` where only `a.b`
    is known is an edge to `a.b`; imports of other packages are left out. The parent packages
    Python loads first are not edges: a package face importing its own submodules is no loop."""
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        edges = set()
        for submodule, name in _imported_names(module, source, is_package, type_only):
            if submodule in sources:
                name = submodule
            while name and name not in sources:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def _one_loop(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest import loop through the component's first module: [a, b, ..., a]."""
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & set(component)):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"{component} is not a cycle")


def import_cycles(sources: Sources, *, type_only: bool = True) -> list[str]:
    """One line per import cycle among `sources`: its modules, and one loop through them."""
    graph = import_graph(sources, type_only=type_only)
    return [f"{', '.join(c)} (e.g. {' -> '.join(_one_loop(c, graph))})"
            for c in _strongly_connected(graph)]


_CYCLE_ADVICE = ("cut it: move the piece both modules need into a module below them, or invert "
                 "the dependency (a Protocol naming the fields read instead of the importer's "
                 "type); a function-local or TYPE_CHECKING import does not cut a cycle")


def test_no_import_cycle_in_the_engine_or_the_app() -> None:
    sources = _package_sources("experiments") | _package_sources("app")
    assert len(sources) > 100, "the sources were not found"
    cycles = import_cycles(sources)
    assert cycles == [], f"import cycles ({_CYCLE_ADVICE}):\n" + "\n".join(cycles)


def test_no_import_cycle_in_mucore_beyond_type_only_imports() -> None:
    sources = _package_sources("mucore")
    assert len(sources) > 10, "mucore's sources were not found"
    cycles = import_cycles(sources, type_only=False)
    assert cycles == [], f"import cycles in mucore ({_CYCLE_ADVICE}):\n" + "\n".join(cycles)


def test_the_cycle_checker_catches_each_kind_of_cycle() -> None:
    def pkg(**modules: str) -> Sources:
        out: Sources = {"p": ("", True)}
        out.update({f"p.{name}": (src, False) for name, src in modules.items()})
        return out

    loops = {
        "module level": pkg(a="import p.b\n", b="from p.a import x\n"),
        "inside a function": pkg(a="from p.b import y\n", b="def f():\n    from p.a import x\n"),
        "type only": pkg(a="from p.b import y\n",
                         b="if TYPE_CHECKING:\n    from p.a import X\n"),
        "relative": pkg(a="from .b import y\n", b="from . import a\n"),
        "submodule by name": pkg(a="from p import b\n", b="from p.a import x\n"),
        "three modules": pkg(a="import p.b\n", b="import p.c\n", c="import p.a.x\n"),
    }
    for kind, sources in loops.items():
        found = import_cycles(sources)
        assert len(found) == 1 and found[0].startswith("p.a, p.b"), (kind, found)
    assert import_cycles(loops["three modules"]) == [
        "p.a, p.b, p.c (e.g. p.a -> p.b -> p.c -> p.a)"]
    assert import_cycles(loops["type only"], type_only=False) == []
    assert import_cycles(loops["inside a function"], type_only=False) != []
    # A package face importing its submodules, which import a sibling: no loop.
    acyclic = pkg(a="from p.b import y\n", b="import os\nfrom p import c\n", c="x = 1\n")
    acyclic["p"] = ("if TYPE_CHECKING:\n    from p.a import z\n    from p.b import y\n", True)
    assert import_cycles(acyclic) == []
    # The face is a module of its own: a submodule importing a name from it closes a loop.
    acyclic["p.c"] = ("from p import z\n", False)
    acyclic["p"] = ("from p.c import w\n", True)
    assert import_cycles(acyclic) == ["p, p.c (e.g. p -> p.c -> p)"]


def test_each_lazy_export_list_is_its_type_checking_imports() -> None:
    """A lazy package's public names are read from its `if TYPE_CHECKING:` imports (written
    once), and each of them loads from the module that block names."""
    import importlib

    from experiments.lazy import type_checking_exports

    for name in ("experiments.analysis", "experiments.models", "experiments.tasks",
                 "experiments.service"):
        module = importlib.import_module(name)
        exports = type_checking_exports(name, vars(module))
        assert set(exports) <= set(module.__all__), name
        for public, source in exports.items():
            assert getattr(module, public) is getattr(importlib.import_module(source), public)
    assert {"analyze", "seed_summary"} <= set(importlib.import_module("experiments.analysis").__all__)
