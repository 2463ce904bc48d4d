"""Lazy public names for the engine's packages (PEP 562 module `__getattr__`).

A package lists `{public name: submodule}` and its names load on first use, so importing a
light submodule (`experiments.models.configs`, `experiments.tasks.config`) does not pull
torch in through the package's `__init__`. Type checkers see the eager imports each package
keeps under `TYPE_CHECKING`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `package.<exports[name]>` on first access.

    Args:
        package: the package's `__name__`.
        exports: public name -> submodule (relative to `package`) that defines it.
        namespace: the package's `globals()`: a loaded name is cached there, so later lookups
            skip the hook.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
