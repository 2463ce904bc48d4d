"""`python -m experiments runs SWEEP_ID [--json OUT.json]`: one row per run of a sweep.

JSON: a list of objects with width, parametrization, lr, log2_lr, seed, state,
final_train_loss, final_val_loss and the other run columns of the store, `note` among them (what
went wrong beside the run's outcome, e.g. a metric chunk that could not be read and was
quarantined; null when nothing). The store is opened read-only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.commands.sweep import add_db_arg, db_path, find_sweep, open_store, parse_sweep_id

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.store import Store

TABLE_COLUMNS = ("width", "parametrization", "lr", "seed", "state", "final_train_loss",
                 "final_val_loss")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `runs` command."""
    p = subparsers.add_parser("runs", help="list a sweep's runs (table, or JSON with --json)",
                              description=__doc__)
    p.add_argument("sweep_id")
    p.add_argument("--json", type=Path, default=None, help="write a JSON list of runs here")
    add_db_arg(p)
    p.set_defaults(func=cmd_runs)


def _clean(value: Any) -> Any:
    """JSON-safe scalars: NaN -> None, numpy scalars -> Python, timestamps -> ISO text."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        with contextlib.suppress(ValueError, AttributeError):
            value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool):
        return value
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value, default=str))
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def run_records(store: Store, sweep_id: int) -> list[dict[str, Any]]:
    """The sweep's runs as JSON-ready dicts (store columns, NaN as null)."""
    frame = store.runs_frame(sweep_id)
    return [{str(k): _clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def cmd_runs(args: argparse.Namespace) -> int:
    """Write the runs as JSON, or print them as a table (then each run's note, if any)."""
    sweep_id = parse_sweep_id(args.sweep_id)
    store = open_store(db_path(args), read_only=True)
    find_sweep(store, sweep_id)
    records = run_records(store, sweep_id)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(records, indent=1))
        print(f"wrote {len(records)} runs to {args.json}")
        return 0
    cells = [[_fmt(r.get(c)) for c in TABLE_COLUMNS] for r in records]
    widths = [max(len(c), *(len(line[i]) for line in cells)) if cells else len(c)
              for i, c in enumerate(TABLE_COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(TABLE_COLUMNS, widths, strict=True)))
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    for r in records:
        if r.get("note"):
            print(f"note: run {r['run_id']}: {r['note']}")
    return 0


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
