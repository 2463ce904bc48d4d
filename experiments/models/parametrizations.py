"""The parametrization tables a spec may name: mucore's own, plus the ones the user registers.

A user adds a table in one of two ways (the contract, beside the registered models'):

1. A registered model's file (see `experiments.models.registry`) calls
   `mucore.register_parametrization(table)` when it is imported;
2. an installed package's entry point in the group `mutransfer.parametrizations` names a
   `mucore.Parametrization`, e.g. `[project.entry-points."mutransfer.parametrizations"]
   my-mup = "package.module:MY_MUP"`.

Every lookup tries mucore's registry first, so mucore's tables cost no import of model code;
an unknown name then loads the user's tables (importing the registered models' files) and tries
again. Callers ask tables for their traits (`label`, `width_stable`, `has_depth_rules`,
`supports`) instead of spelling lists of names. Torch-free at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from experiments.errors import UserError
from experiments.models.registry import discover, get_model
from mucore.parametrizations import (
    Parametrization,
    get_parametrization,
    parametrization_names,
    register_parametrization,
)

ENTRY_POINT_GROUP = "mutransfer.parametrizations"


def _entry_point_problems() -> list[str]:
    problems = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point '{ep.name}' ({ep.value}) in group {ENTRY_POINT_GROUP}"
        try:
            table = ep.load()
        except Exception as exc:
            problems.append(f"{where} failed to import: {type(exc).__name__}: {exc}")
            continue
        if not isinstance(table, Parametrization):
            problems.append(f"{where} names a {type(table).__name__}, not a "
                            "mucore.Parametrization")
            continue
        try:
            register_parametrization(table)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def load_user_tables() -> list[str]:
    """Register the user's tables: import every registered model (its file may register one)
    and every entry point of `ENTRY_POINT_GROUP`.

    Returns:
        One line per source that failed (a broken model file, an entry point that is not a
        table); the tables that loaded are registered all the same.
    """
    problems = []
    try:
        names = sorted(discover())
    except UserError as exc:
        names, problems = [], [str(exc)]
    for name in names:
        try:
            get_model(name)
        except UserError as exc:
            problems.append(str(exc))
    return problems + _entry_point_problems()


def _registered(name: str) -> Parametrization | None:
    try:
        return get_parametrization(name)
    except ValueError:
        return None


def find_parametrization(name: str) -> Parametrization | None:
    """The table named `name` (mucore's, else the user's), or None when nobody registers it."""
    table = _registered(name)
    if table is None:
        load_user_tables()
        table = _registered(name)
    return table


def resolve_parametrization(name: str) -> Parametrization:
    """The table named `name`.

    Raises:
        UserError: no table has that name; the message lists the registered ones and how to
            register a table (and any user source that failed to load).
    """
    table = _registered(name)
    if table is not None:
        return table
    problems = load_user_tables()
    table = _registered(name)
    if table is not None:
        return table
    failed = f" (these failed to load: {'; '.join(problems)})" if problems else ""
    raise UserError(
        f"unknown parametrization '{name}': registered parametrizations are "
        f"{', '.join(parametrization_names())}; fix the name, or register a table with "
        "mucore.register_parametrization in a registered model's file (MUTRANSFER_MODEL_DIRS) "
        f"or through the entry point group {ENTRY_POINT_GROUP}{failed}")


def all_parametrization_names() -> list[str]:
    """Every registered name, the user's tables loaded first (imports the registered models)."""
    load_user_tables()
    return parametrization_names()


def parametrization_label(name: str) -> str:
    """Display name of a parametrization ("mup" -> "µP"); a name no table registered in this
    process has is shown as is (a label never imports the user's model files: the dashboard
    draws charts without torch)."""
    table = _registered(name)
    return name if table is None else table.display_label


def parametrization_short_label(name: str) -> str:
    """Short display name ("sp" -> "SP", for tiles and sentences); else as `parametrization_label`."""
    table = _registered(name)
    return name if table is None else table.display_short_label


def is_width_stable(name: str) -> bool:
    """Whether the table's optimum should not drift with width (False for an unknown name:
    a stored sweep whose table is no longer registered makes no stability claim)."""
    table = find_parametrization(name)
    return table is not None and table.width_stable


def has_depth_rules(name: str) -> bool:
    """Whether the table scales with depth (False for an unknown name)."""
    table = find_parametrization(name)
    return table is not None and table.has_depth_rules


def depth_rule_names(names: Iterable[str] | None = None) -> list[str]:
    """The tables with depth rules, A-Z, among `names` (None: among the tables registered in
    this process, which loads no user code)."""
    pool = parametrization_names() if names is None else sorted(names)
    return [n for n in pool if has_depth_rules(n)]
