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
