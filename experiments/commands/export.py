"""`python -m experiments export SWEEP_ID --target-width N [--target-depth L] [--target-batch B]
[--target-steps S] [--batch-rule R] [--horizon-rule R] --out bundle.json [--force]`.

Analyses the sweep, and writes an HP bundle (JSON, or YAML for .yaml/.yml) with the transferred
HPs, the base shapes, the per-parameter table at the target width and the evidence. A sweep whose
verdict is not confirmed is refused unless --force (the bundle then records forced: true). The
export is recorded in the store. A sweep with a depth ladder exports for (N, L): the bundle
records the base and target depth and rebuilds init, branch multipliers and optimizer groups at
that depth (without --target-depth: the base depth); --target-depth on a width-only sweep is
refused (experiments.bundle.ladder). A sweep with a batch or horizon ladder exports for batch B
and horizon S (steps at the sweep's base batch; the target trains S x base batch / B steps): the
LR, betas and eps are moved there by the sweep's scaling rule, and the bundle records the rule,
the ratios, the base settings and the ladders' verdicts; --target-batch/--target-steps without
that ladder, or off a base whose verdict is not confirmed, are refused unless --force
(experiments.bundle.training). --batch-rule / --horizon-rule apply another rule than the
sweep's (a named one, power:X, or `fitted`: the exponent the ladder measured); off the base its
priced regret at the largest rung is the evidence (experiments.bundle.rule_choice).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis import DEFAULT_TOLERANCE
from experiments.analysis.loss_choice import LOSS_CHOICES
from experiments.bundle.build import export_bundle, write_bundle
from experiments.commands.sweep import add_db_arg, db_path, find_sweep, open_store, parse_sweep_id
from experiments.errors import StoreError, UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` command."""
    p = subparsers.add_parser("export", help="write the sweep's transferred HPs as a bundle",
                              description=__doc__)
    p.add_argument("sweep_id")
    p.add_argument("--target-width", type=int, required=True, help="width of the target model")
    p.add_argument("--target-depth", type=int, default=None,
                   help="depth of the target model (sweeps with a depth ladder; default: the "
                        "base depth)")
    p.add_argument("--target-batch", type=int, default=None,
                   help="batch size of the target (sweeps with a batch ladder; default: the "
                        "base batch); the LR, betas and eps move by the sweep's scaling rule")
    p.add_argument("--target-steps", type=int, default=None,
                   help="training length of the target in steps at the sweep's base batch size "
                        "(sweeps with a horizon ladder; default: the base horizon); at "
                        "--target-batch B it trains steps x base batch / B steps")
    p.add_argument("--batch-rule", default=None,
                   help="apply this batch rule instead of the sweep's: none, sqrt, linear, "
                        "power:X, or fitted (the exponent the batch ladder measured); accepted "
                        "off the base batch when its priced regret is within the seed noise")
    p.add_argument("--horizon-rule", default=None,
                   help="apply this horizon rule instead of the sweep's: none, power:X, or "
                        "fitted (the exponent the horizon ladder measured)")
    p.add_argument("--out", type=Path, required=True, help="bundle path (.json, .yaml or .yml)")
    p.add_argument("--force", action="store_true",
                   help="export even when the verdict is not confirmed (recorded in the bundle)")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="allowed |µP drift| in log2 LR per width doubling (default 0.25)")
    p.add_argument("--loss", choices=LOSS_CHOICES, default="auto",
                   help="the loss the optima are taken on: val, train, or auto (default: "
                        "validation where the task has a validation split)")
    p.add_argument("--parametrization", default=None,
                   help="whose HPs to export (default mup, or the sweep's only parametrization)")
    add_db_arg(p)
    p.set_defaults(func=cmd_export)


def _rules(args: argparse.Namespace) -> dict[str, str] | None:
    """{axis: rule text} of the rule flags given (None: the sweep's rules)."""
    rules = {axis: text for axis, text in (("batch", args.batch_rule),
                                           ("horizon", args.horizon_rule)) if text}
    return rules or None


def cmd_export(args: argparse.Namespace) -> int:
    """Analyse, build, write and record the bundle."""
    sweep_id = parse_sweep_id(args.sweep_id)
    if args.target_width < 1:
        raise UserError(f"--target-width must be >= 1, got {args.target_width}")
    if not args.tolerance > 0:
        raise UserError(f"--tolerance must be > 0, got {args.tolerance}: use e.g. 0.25")
    if args.out.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise UserError(f"--out {args.out} must end in .json, .yaml or .yml")
    # The reads attach the store read-only, so a store this user cannot write still exports.
    store = open_store(db_path(args), read_only=True)
    find_sweep(store, sweep_id)
    bundle = export_bundle(store, sweep_id, args.target_width, force=args.force,
                           tolerance=args.tolerance, loss=args.loss,
                           parametrization=args.parametrization,
                           target_depth=args.target_depth, target_batch=args.target_batch,
                           target_steps=args.target_steps, rules=_rules(args))
    path = write_bundle(bundle, args.out)
    print(bundle.summary())
    print(f"wrote {path}")
    try:
        open_store(db_path(args)).record_export(sweep_id, bundle.body(), str(path.resolve()))
    except StoreError as exc:
        if exc.kind not in ("not_writable", "dir_not_writable"):
            raise
        print(f"warning: the export was not recorded in the store: {exc}", file=sys.stderr)
    return 0
