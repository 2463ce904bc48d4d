"""`python -m experiments bundle show bundle.json`: validate an HP bundle and print its summary.

Exits 2 with the reason when the bundle is invalid or was edited after export (hash mismatch).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.bundle.build import read_bundle


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `bundle` and its `show` sub-command."""
    p = subparsers.add_parser("bundle", help="inspect HP bundles", description=__doc__)
    sub = p.add_subparsers(dest="bundle_command", required=True, metavar="SUBCOMMAND")
    show = sub.add_parser("show", help="validate a bundle and print its summary")
    show.add_argument("path", type=Path)
    show.add_argument("--json", action="store_true", help="print the validated bundle as JSON")
    show.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    """Validate (schema + content hash) and print."""
    bundle = read_bundle(args.path)
    if args.json:
        print(json.dumps(bundle.body(), indent=1))
    else:
        print(bundle.summary())
        print("valid: schema and content hash check out")
    return 0
