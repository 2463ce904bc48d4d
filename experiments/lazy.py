"""Lazy public names for the engine's packages (PEP 562 module `__getattr__`).

A package's names load on first use, so importing a light submodule
(`experiments.models.configs`, `experiments.tasks.config`) does not pull torch in through the
package's `__init__`. The export list is written once, as the eager imports the package keeps
under `if TYPE_CHECKING:` (what type checkers read):

    if TYPE_CHECKING:
        from experiments.analysis.report import analyze

    _EXPORTS = type_checking_exports(__name__, globals())    # {"analyze": "...report"}
    __all__ = sorted(_EXPORTS)
    __getattr__ = lazy_exports(__name__, _EXPORTS, globals())

so a name added to that block is importable at run time too, and one left out of it is not
exported at all: the two can never disagree.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `typing.TYPE_CHECKING`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def type_checking_exports(package: str, namespace: dict[str, Any]) -> dict[str, str]:
    """{public name: defining module} read from the module's top-level `if TYPE_CHECKING:` blocks.

    Every `from module import name [as alias]` there is one export (the alias when given);
    relative imports resolve against `package`. Plain `import x` lines are not exports.

    Args:
        package: the importing module's `__name__`.
        namespace: its `globals()` (its `__file__` is parsed, its `__package__` resolves
            relative imports).

    Raises:
        RuntimeError: the module declares no such import (a lazy package with nothing to
            export is a mistake, not an empty face).
    """
    path = Path(namespace["__file__"])
    base = namespace.get("__package__") or package
    exports: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.ImportFrom):
                continue
            module = stmt.module or ""
            if stmt.level:
                module = importlib.util.resolve_name("." * stmt.level + module, base)
            for alias in stmt.names:
                exports[alias.asname or alias.name] = module
    if not exports:
        raise RuntimeError(f"{path}: no `from ... import ...` under `if TYPE_CHECKING:`: a lazy "
                           "package lists its exports there")
    return exports


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `exports[name]` on first access.

    Args:
        package: the package's `__name__` (for the error message).
        exports: public name -> module that defines it (`type_checking_exports`).
        namespace: the package's `globals()`: a loaded name is cached there, so later lookups
            skip the hook.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
