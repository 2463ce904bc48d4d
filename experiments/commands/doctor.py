"""`python -m experiments doctor`: is this model really µP, and if not, what is missing?

Static checks first (`mucore.check`: metadata, readout, multipliers, attention, tied weights,
optimizer groups), then dynamic checks over 30 steps (activation sizes judged by the
role-aware verdict, the readout keeping its own init; |dW|/|W| slopes against µP's), then,
when one fails under µP, an ablation naming the ingredient that fixes it. Exit code 0 when
healthy, 1 when something fails, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from experiments.commands.coord_check import add_ladder_args
from experiments.commands.models import model_from_args
from experiments.commands.optimizer_flags import optimizer_options
from experiments.coordcheck.check import parse_widths

_MARK = {"pass": " ok ", "warn": "warn", "fail": "FAIL"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `doctor` sub-command."""
    p = subparsers.add_parser(
        "doctor",
        help="diagnose a model's µP setup: static checks plus a role-aware coordinate check",
        description=__doc__,
    )
    add_ladder_args(p, steps_help="dynamic-check steps (1 = at init; >= 30 lets late "
                    "output growth show)", lr_help="dynamic-check LR")
    p.add_argument("--json", type=Path, default=None,
                   help="write {verdict, findings: [{check, status, message, fix, evidence}]}")
    # experiments.doctor.dynamic.DYNAMIC_STEPS and DYNAMIC_LR (not imported here: they would
    # load torch).
    p.set_defaults(func=run, steps=30, lr=1e-3)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """One line per finding (with its fix when it did not pass), then the verdict."""
    lines = []
    for f in report["findings"]:
        lines.append(f"[{_MARK[f['status']]}] {f['check']}: {f['message']}")
        if f["status"] != "pass" and f["fix"]:
            lines.append(f"       fix: {f['fix']}")
    lines.append(f"{report['model']} ({report['param']}): {report['verdict'].upper()}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Validate, diagnose, write JSON, print the findings; 0 healthy, 1 problems."""
    from experiments.doctor.diagnose import run_doctor  # torch loads only when the command runs

    widths = parse_widths(args.widths)
    model, task = model_from_args(args)
    report = run_doctor(model, args.param, widths, steps=args.steps, optimizer=args.optimizer,
                        lr=args.lr, seed=args.seed, base_width=args.base_width, task=task,
                        optimizer_options=optimizer_options(args))
    payload = report.to_dict()
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(args.json)  # readers never see a half-written file
    print("\n".join(summary_lines(payload)))
    return 0 if report.verdict == "healthy" else 1
