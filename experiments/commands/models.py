"""`python -m experiments models [--json]`: the zoo's models and the registered ones.

A registered model is a `NAME.py` defining `build(width, *, task, **options)` in a folder of
the setting `MUTRANSFER_MODEL_DIRS`, or a package's entry point in the group
`mutransfer.models` (see `experiments.models.registry`). Each is listed with its source and
options (type and default); a registered model that fails to import is listed with its error
(file and line) and warned about on stderr, while the zoo and the other models stay listed.

This module also holds the model flags that `coord-check` and `describe` share.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from experiments.errors import UserError
from experiments.models.catalog import ModelInfo, list_models, model_config, parse_option_args
from experiments.models.configs import ModelConfig
from experiments.tasks.config import TaskConfig

# Context length of LM tasks picked with --task (the coord check's default for the GPT).
TASK_SEQ_LEN = 32


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `models` command."""
    p = subparsers.add_parser("models", help="list zoo and registered models with their options",
                              description=__doc__)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="OUT.json",
                   help="write {'models': [...]} as JSON to OUT.json (like every command's "
                   "--json), or to stdout when no path is given")
    p.set_defaults(func=run)


def add_model_args(p: argparse.ArgumentParser) -> None:
    """`--model NAME`, repeated `--option KEY=VALUE` and `--task NAME` (coord-check, describe)."""
    p.add_argument("--model", required=True,
                   help="a zoo model (mlp, gpt, cnn, ...) or a registered model (see `models`)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option (repeatable), e.g. --option depth=3; values are JSON "
                   "or text")
    p.add_argument("--task", default=None,
                   help="task name (digits, synthetic, bytes, synthetic-lm); default: the "
                   "model's usual task (registered models: digits)")


def model_from_args(args: argparse.Namespace) -> tuple[ModelConfig, TaskConfig | None]:
    """The model config and task override that `add_model_args` flags ask for.

    Raises:
        UserError: unknown model, bad options or task (each named).
    """
    cfg = model_config(args.model, parse_option_args(args.option))
    if args.task is None:
        return cfg, None
    try:
        return cfg, TaskConfig.model_validate({"name": args.task, "seq_len": TASK_SEQ_LEN})
    except ValidationError as exc:
        raise UserError(f"--task {args.task!r}: {exc.errors()[0]['msg']}") from None


def _option_text(option: dict[str, Any]) -> str:
    kind = option["type"]
    if option.get("choices"):
        kind = "|".join(str(c) for c in option["choices"])
    return f"{option['name']}: {kind} = {option['default']!r}"


def format_table(models: list[ModelInfo]) -> str:
    """One line per model: name, kind, source, then its options (or, for a registered model
    that cannot be used, "ERROR: " and why)."""
    rows = [(m.name, m.kind, m.source,
             f"ERROR: {m.error}" if m.error is not None else
             ", ".join(_option_text(o.to_dict()) for o in m.options) or "-") for m in models]
    head = ("name", "kind", "source", "options")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(3)]
    lines = ["  ".join([*(h.ljust(w) for h, w in zip(head, widths, strict=False)), head[3]])]
    lines += ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[3]])
              for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the models (JSON or a table); a registered model that cannot be used is listed
    with its error, and warned about on stderr, while the others stay listed (exit 0)."""
    models = list_models()
    for m in models:
        if m.error is not None:
            print(f"warning: registered model '{m.name}' cannot be used: {m.error}",
                  file=sys.stderr)
    if args.json is not None:
        text = json.dumps({"models": [m.to_dict() for m in models]}, indent=2)
        if args.json == "-":
            print(text)
        else:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n", encoding="utf-8")
            print(f"wrote {len(models)} models to {out}")
    else:
        print(format_table(models))
    return 0
