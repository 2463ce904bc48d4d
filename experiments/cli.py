"""Command-line entry point: one argparse parser, sub-commands registered by small modules.

Each module in `experiments.commands` exposes `register(subparsers)` and sets a `func` default
on its parser(s): `func(args) -> int` returns the exit code. A `UserError` (bad input) prints its
message and exits 2 without a traceback; nothing is written before input has been validated.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from experiments.errors import UserError

# Order is the order shown in --help.
COMMAND_MODULES = (
    "coord_check",
    "describe",
    "sweep",
    "runs",
    "analyze",
    "export",
    "bundle",
    "verify",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command module registered."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments",
        description="µTransfer experiments: coord checks, sweeps, analysis, HP bundles.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"experiments.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, map user errors to exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
