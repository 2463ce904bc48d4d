"""`python -m experiments verify bundle.json [--bracket 2] [--json OUT.json]`.

Trains the bundle's target-width model at the transferred LR and at --bracket grid steps on
each side (plus SP at its extrapolated LR as a baseline), in-process, and reports whether the
transferred LR is within one grid step of the target's own optimum and the loss gap to the best
bracket point. Exit code 0 whatever the outcome (the outcome is data); 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.bundle.build import read_bundle
from experiments.bundle.verify import verify_bundle


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `verify` command."""
    p = subparsers.add_parser("verify", help="train the target with a bundle's HPs and check",
                              description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("--bracket", type=int, default=2,
                   help="grid steps on each side of the transferred LR (default 2)")
    p.add_argument("--step", type=float, default=None,
                   help="bracket spacing in log2 units (default: the sweep's LR grid step)")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds per point (default: the sweep's)")
    p.add_argument("--steps", type=int, default=None, help="steps per run (default: the sweep's)")
    p.add_argument("--device", default=None, help="cpu, cuda, auto (default: the sweep's)")
    p.add_argument("--no-sp-baseline", action="store_true", help="skip the SP baseline run")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--progress", type=Path, default=None,
                   help="rewrite this JSON file while training: runs done, the current run's "
                        "step and loss, the ETA (for the dashboard)")
    p.add_argument("--db", type=Path, default=None,
                   help="store to record the verification in, beside the bundle's sweep")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify, print, write JSON."""
    bundle = read_bundle(args.bundle)
    report = verify_bundle(bundle, args.bracket, step=args.step, seeds=args.seeds,
                           steps=args.steps, device=args.device,
                           sp_baseline=not args.no_sp_baseline, progress=print,
                           progress_file=args.progress)
    doc = report.to_contract_json()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False))
    if args.db is not None:
        from experiments.store import Store

        Store(args.db).record_verification(bundle.evidence.sweep_id, doc, bundle.content_hash)
    print(report.summary())
    return 0
