"""`python -m experiments coord-check`: is a zoo model really in µP? (TP5, Appendix D)

Trains the model a few steps at each width of a ladder on one fixed batch, fits the slope of
log2(mean |activation|) against log2(width) per module and step, and says pass or fail.
With `--depths 2,4,8,16 --width 64` it checks depth instead: the model at each depth (residual
blocks) at one width, slopes against log2(depth) (`axis: "depth"` in the JSON; CompleteP, Dey et
al. 2025, arXiv 2505.01618, keeps them flat).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.commands.models import add_model_args, model_from_args
from experiments.commands.optimizer_flags import add_optimizer_args, optimizer_options
from experiments.coordcheck.check import (
    coord_payload,
    parse_widths,
    run_coord_check,
    run_coord_check_depth,
)
from experiments.coordcheck.request import DEFAULT_DEPTH_WIDTH, parse_depths
from experiments.errors import UserError
from mucore.parametrizations import parametrization_names

WIDTHS_DEFAULT = "64,128,256,512"


def add_ladder_args(p: argparse.ArgumentParser, steps_help: str, lr_help: str) -> None:
    """The model and width-ladder flags a coordinate check takes (also the doctor's)."""
    add_model_args(p)
    p.add_argument("--param", default="mup",
                   help=f"parametrization: {', '.join(parametrization_names())} or a table the "
                   "user registers (those with depth rules scale residual branches with depth)")
    p.add_argument("--widths", default=WIDTHS_DEFAULT, help="increasing, comma-separated")
    p.add_argument("--steps", type=int, default=5, help=steps_help)
    add_optimizer_args(p)
    p.add_argument("--lr", type=float, default=1e-2, help=lr_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-width", type=int, default=None, help="default: the first width")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `coord-check` sub-command."""
    p = subparsers.add_parser(
        "coord-check",
        help="coordinate check: do activations stay width-independent (µP) or grow (SP)?",
        description=__doc__,
    )
    add_ladder_args(p, steps_help="recorded steps (step 1 = at init)",
                    lr_help="global LR; fairly large on purpose")
    p.add_argument("--tolerance", type=float, default=0.15, help="largest |slope| that passes")
    p.add_argument(
        "--zero-readout",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="zero-init the readout (TP5's advice; output exactly 0 at step 1); with "
        "--no-zero-readout the output shrinks like 1/sqrt(m) at init, which the verdict allows",
    )
    p.add_argument("--depths", default=None,
                   help="a depth ladder, e.g. 2,4,8,16: check over depth (residual blocks) at "
                   "the fixed --width instead of over --widths")
    p.add_argument("--width", type=int, default=None,
                   help=f"the fixed width of a --depths check (default {DEFAULT_DEPTH_WIDTH})")
    p.add_argument("--base-depth", type=int, default=None,
                   help="with --depths: the depth the depth rules measure against (default: "
                   "the first depth)")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    p.add_argument("--db", type=Path, default=None, help="also record the result in this store")
    p.set_defaults(func=run)


def _store_recorder(db: Path) -> Callable[[dict[str, Any]], int]:
    """What records a coord check's `--json` payload (CLI arguments under "args") in `db`."""
    from experiments.store import Store

    return lambda payload: Store(db).record_coord_check(payload)


def summary_lines(result: dict[str, Any], top: int = 5) -> list[str]:
    """A few human lines: verdict, worst slope, worst modules, the rules broken, notes."""
    axis = result.get("axis", "width")
    ladder = result["depths"] if axis == "depth" else result["widths"]
    at = f" at width {result['width']}" if axis == "depth" else ""
    lines = [
        f"{result['param']}: {result['verdict'].upper()} (max |slope| {result['max_abs_slope']:.3f}, "
        f"tolerance {result['tolerance']:g}, {axis}s {ladder}{at})"
    ]
    worst: dict[str, tuple[float, int]] = {}
    for row in result["modules"]:
        a = abs(row["slope"]) if not math.isnan(row["slope"]) else math.inf
        if row["module"] not in worst or a > worst[row["module"]][0]:
            worst[row["module"]] = (a, row["step"])
    ranked = sorted(worst.items(), key=lambda kv: -kv[1][0])[:top]
    for module, (a, step) in ranked:
        mark = "!" if module in result["offenders"] else " "
        lines.append(f" {mark} {module:<28} |slope| {a:6.3f} (step {step})")
    # The role-aware verdict says which µP rule each failing module broke (mucore.coord).
    lines += [f" ! {v['message']}" for v in result.get("violations", [])[:top]]
    lines += [f" note: {note}" for note in result.get("notes", [])]
    return lines


def run(args: argparse.Namespace) -> int:
    """Validate, run the coord check, write JSON, print a summary.

    Exits 0 whether the verdict is pass or fail (a fail is a result, not an error; SP is
    expected to fail); bad input raises UserError (exit 2).
    """
    if args.depths is not None:
        return _run_depth(args)
    if args.width is not None or args.base_depth is not None:
        raise UserError("--width and --base-depth belong to a depth check: add --depths "
                        "(e.g. --depths 2,4,8,16 --width 64), or use --widths for a width check")
    widths = parse_widths(args.widths)
    model, task = model_from_args(args)
    record = _store_recorder(args.db) if args.db is not None else None
    options = optimizer_options(args)
    result = run_coord_check(
        model,
        args.param,
        widths,
        steps=args.steps,
        optimizer=args.optimizer,
        optimizer_options=options,
        lr=args.lr,
        seed=args.seed,
        base_width=args.base_width,
        zero_readout=args.zero_readout,
        tolerance=args.tolerance,
        task=task,
    )
    payload = coord_payload(result)
    payload["args"] = {
        "model": args.model,
        "model_block": model.model_dump(mode="json"),
        "task": args.task,
        "param": args.param,
        "widths": widths,
        "steps": args.steps,
        "optimizer": args.optimizer,
        **({"optimizer_options": options} if options else {}),
        "lr": args.lr,
        "seed": args.seed,
        "base_width": args.base_width or widths[0],
        "zero_readout": args.zero_readout,
    }
    return _emit(args, payload, record)


def _emit(args: argparse.Namespace, payload: dict[str, Any],
          record: Callable[[dict[str, Any]], int] | None) -> int:
    """Write the JSON (atomically), record it in the store, print the summary."""
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(args.json)  # readers never see a half-written file
    if record is not None:
        record(payload)
    print("\n".join(summary_lines(payload)))
    return 0


def _run_depth(args: argparse.Namespace) -> int:
    """`--depths`: the coordinate check over depth at the fixed `--width`.

    The JSON is the width check's shape with `axis: "depth"`, `depths` and `width`; a bad
    ladder, a model without residual blocks or a depth table with SGD exits 2.
    """
    depths = parse_depths(args.depths)
    if args.widths != WIDTHS_DEFAULT:
        raise UserError("--widths and --depths are two axes: give one (a depth check runs at "
                        "the one --width)")
    if optimizer_options(args):
        raise UserError("--muon-adjust and --no-hidden-lr-correction belong to a width check: "
                        "drop them with --depths (the depth tables refuse Muon)")
    width = DEFAULT_DEPTH_WIDTH if args.width is None else args.width
    model, task = model_from_args(args)
    record = _store_recorder(args.db) if args.db is not None else None
    result = run_coord_check_depth(
        model, args.param, depths, width, steps=args.steps, optimizer=args.optimizer,
        lr=args.lr, seed=args.seed, base_width=args.base_width, base_depth=args.base_depth,
        zero_readout=args.zero_readout, tolerance=args.tolerance, task=task,
    )
    payload = coord_payload(result)
    payload["args"] = {
        "model": args.model, "model_block": model.model_dump(mode="json"), "task": args.task,
        "param": args.param, "depths": depths, "width": width, "steps": args.steps,
        "optimizer": args.optimizer, "lr": args.lr, "seed": args.seed,
        "base_width": args.base_width or width, "base_depth": args.base_depth or depths[0],
        "zero_readout": args.zero_readout,
    }
    return _emit(args, payload, record)
