"""`python -m experiments describe`: the µP table of a zoo or registered model (role,
multipliers, init, LR)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from experiments.commands.models import add_model_args, model_from_args
from experiments.commands.optimizer_flags import add_optimizer_args, optimizer_options
from experiments.coordcheck.check import describe_rows
from mucore.parametrizations import parametrization_names

COLUMNS = ("name", "shape", "role", "width_mult", "init", "init_std", "forward_mult", "lr_mult")
# Printed when the table has them: depth (a depth-aware table), update (muon: which optimizer).
DEPTH_COLUMNS = ("depth_mult", "branch_mult", "update")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `describe` sub-command."""
    p = subparsers.add_parser(
        "describe",
        help="per-parameter µP table: role, width mult, init std, forward mult, LR mult",
        description=__doc__,
    )
    add_model_args(p)
    p.add_argument("--param", default="mup",
                   help=f"parametrization: {', '.join(parametrization_names())} or a table the "
                   "user registers")
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--base-width", type=int, default=64)
    add_optimizer_args(p)
    p.add_argument("--depth", type=int, default=None,
                   help="residual blocks of the described model (with --base-depth): block "
                   "rows then show depth_mult m_L and branch_mult (the tables with depth rules)")
    p.add_argument("--base-depth", type=int, default=None,
                   help="the depth the depth rules measure against (with --depth)")
    p.add_argument("--json", type=Path, default=None, help="write {'rows': [...]} here")
    p.set_defaults(func=run)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of describe rows."""

    columns = COLUMNS + tuple(c for c in DEPTH_COLUMNS if any(c in r for r in rows))

    def cell(row: dict[str, Any], col: str) -> str:
        v = row.get(col, "-")
        if col == "shape":
            return "x".join(str(s) for s in v)
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[cell(r, c) for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Build the table, write JSON, print it."""
    model, task = model_from_args(args)
    options = optimizer_options(args)
    rows = describe_rows(model, args.param, args.width, args.base_width, args.optimizer,
                         task=task, depth=args.depth, base_depth=args.base_depth,
                         optimizer_options=options)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "model": args.model,
                    "model_block": model.model_dump(mode="json"),
                    "param": args.param,
                    "width": args.width,
                    "base_width": args.base_width,
                    "optimizer": args.optimizer,
                    **({"optimizer_options": options} if options else {}),
                    **({"depth": args.depth, "base_depth": args.base_depth}
                       if args.depth is not None else {}),
                    "rows": rows,
                }
            )
        )
    print(format_table(rows))
    return 0
