"""Command-line entry point: one argparse parser, sub-commands registered by small modules.

Each module in `experiments.commands` exposes `register(subparsers)` and sets a `func` default
on its parser(s): `func(args) -> int` returns the exit code. A `UserError` (bad input) prints its
message and exits 2 without a traceback; nothing is written before input has been validated.
The installed `mutransfer` command (`app.cli`) is this parser plus `dashboard`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from experiments.errors import UserError

# What a command module's `register` is: adds its sub-parser(s) to the CLI's sub-parsers.
Register = Callable[[argparse._SubParsersAction], None]

# Order is the order shown in --help.
COMMAND_MODULES = (
    "models",
    "coord_check",
    "doctor",
    "describe",
    "sweep",
    "runs",
    "analyze",
    "export",
    "bundle",
    "verify",
)


def build_parser(
    prog: str = "python -m experiments", extra_commands: Sequence[Register] = ()
) -> argparse.ArgumentParser:
    """The full parser, with every command module registered.

    Args:
        prog: the command name shown in usage lines and errors.
        extra_commands: `register` functions of commands defined outside the engine (the
            dashboard's), listed first in --help.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description="µTransfer experiments: coord checks, sweeps, analysis, HP bundles.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in extra_commands:
        register(sub)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"experiments.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, map user errors to exit code 2."""
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed command: its exit code, 2 for a user error, 130 for Ctrl-C."""
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
