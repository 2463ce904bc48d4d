"""The optimizer flags every command that trains or describes takes: `--optimizer` and Muon's
two settings (torch-free: parsing them never loads torch)."""

from __future__ import annotations

import argparse
from typing import Any

from experiments.errors import UserError
from mucore.optimizers import MUON_ADJUSTMENTS, optimizer_names, rule_family


def add_optimizer_args(p: argparse.ArgumentParser) -> None:
    """`--optimizer`, `--muon-adjust` and the diagnostic `--no-hidden-lr-correction`."""
    p.add_argument("--optimizer", default="adam", choices=optimizer_names(),
                   help="muon: torch Muon on the hidden matrices, AdamW on the rest; lion: "
                   "sign updates (Adam's µP rules)")
    p.add_argument("--muon-adjust", default=None, choices=MUON_ADJUSTMENTS,
                   help="muon only: torch's LR adjustment (default original: hidden LR "
                   "width-constant; match_rms_adamw: hidden LR / sqrt(m))")
    p.add_argument("--no-hidden-lr-correction", dest="hidden_lr_correction",
                   action="store_false",
                   help="muon with match_rms_adamw only: leave out the hidden LR's / sqrt(m). "
                   "Diagnostic: deliberately not µP, to see what the checks catch")


def optimizer_options(args: argparse.Namespace) -> dict[str, Any]:
    """Muon's settings from the flags ({} at their defaults).

    Raises:
        UserError: a Muon flag with another optimizer (exit 2, naming the flag).
    """
    options: dict[str, Any] = {}
    if args.muon_adjust is not None:
        options["adjust_lr_fn"] = args.muon_adjust
    if not args.hidden_lr_correction:
        options["hidden_lr_correction"] = False
    try:
        rule_family(args.optimizer, options.get("adjust_lr_fn"),
                    options.get("hidden_lr_correction", True))
    except ValueError:
        raise UserError(f"--muon-adjust and --no-hidden-lr-correction are Muon settings: add "
                        f"--optimizer muon, or drop them for --optimizer {args.optimizer}") from None
    return options
