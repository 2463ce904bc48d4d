"""Validation errors of the Setup form in the form's own words (pure, tested).

pydantic reports a location (`("widths", 2)`), a type (`int_parsing`) and a message written
for code ("Input should be a valid integer, unable to parse string as an integer"), and the
spec's own checks name fields by their code names ("lr_grid is empty: log2_min -2 > log2_max
-8"). A person filling the form sees labels ("width ladder", "log2 min"), so every message is
rewritten to name the field by its label, say which entry of a list is wrong, why, and what to
type instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

# Spec paths and the labels the Setup form draws them with (a path not here: its last part
# with spaces, which is how `ModelForm` labels a generated field).
LABELS = {
    "name": "Sweep name",
    "widths": "width ladder",
    "base_width": "base width",
    "batch_size": "batch size",
    "lr_grid": "Learning rates",
    "lr_grid.log2_min": "log2 min",
    "lr_grid.log2_max": "log2 max",
    "lr_grid.step": "step (log2)",
    "lrs": "learning rates",
    "task.seq_len": "sequence length",
    "task.path": "Dataset file",
    "task.vocab_size": "vocabulary size",
    "task.dtype": "id dtype",
    "model.name": "Registered model",
    "horizons": "horizon steps",
    "base_batch_size": "base batch",
    "base_horizon": "base horizon",
    "scaling.batch": "batch rule",
    "scaling.horizon": "horizon rule",
}
# Code names inside the engine's messages, and the form's words for them (longest first when
# replacing, so `lr_grid.step` is not read as `lr_grid` + `.step`).
CODE_WORDS = {
    "lr_grid.step": "step (log2)",
    "lr_grid": "the learning-rate grid",
    "log2_min": "log2 min",
    "log2_max": "log2 max",
    "base_width": "base width",
    "batch_size": "batch size",
    "log_every": "log every",
    "seq_len": "sequence length",
    "widths": "width ladder",
    "batch_sizes": "batch sizes",
    "base_batch_size": "base batch",
    "horizons": "horizon steps",
    "base_horizon": "base horizon",
    "scaling.batch": "batch rule",
    "scaling.horizon": "horizon rule",
    "[sp, mup]": "SP and µP",
    "e.g. [0] or [0, 1]": "e.g. 0, or 0, 1",
}
# Fields typed as comma-separated numbers, and an example of what to type in each.
LIST_EXAMPLES = {"widths": "64, 128, 256", "seeds": "0, 1, 2", "lrs": "0.001, 0.003, 0.01"}


def label(path: str) -> str:
    """The form's label of a dotted spec path."""
    if path in LABELS:
        return LABELS[path]
    return path.rsplit(".", 1)[-1].replace("_", " ") if path else "the spec"


def in_form_words(text: str) -> str:
    """An engine message with its code names replaced by the form's labels."""
    for code in sorted(CODE_WORDS, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(code)}(?![\w])", CODE_WORDS[code], text)
    return text


def _typed(kind: str, value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _number_message(err: Mapping[str, Any], where: str, path: str) -> str | None:
    """Messages for a value that is not the number the field takes."""
    kind, value = err["type"], err.get("input")
    example = LIST_EXAMPLES.get(path)
    what = f"type numbers separated by commas, e.g. {example}" if example else "type a number"
    if kind in ("int_parsing", "float_parsing", "int_type", "float_type"):
        whole = "whole number" if kind.startswith("int") else "number"
        return f"{where} is {_typed(kind, value)}, not a {whole}: {what}"
    if kind == "int_from_float":
        return f"{where} is {value}, not a whole number: {what}"
    return None


def _bound_message(err: Mapping[str, Any], where: str) -> str | None:
    """Messages for a number outside the field's bounds."""
    ctx, value = err.get("ctx") or {}, err.get("input")
    words = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
             "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}
    if err["type"] in words:
        phrase, bound = words[err["type"]]
        return f"{where} must be {phrase} {ctx.get(bound)}, got {value}: type {phrase} {ctx.get(bound)}"
    return None


def message(err: Mapping[str, Any]) -> tuple[str, str]:
    """(dotted path, the message in the form's words) for one pydantic error."""
    loc = list(err["loc"])
    path = ".".join(str(p) for p in loc if not isinstance(p, int))
    index = next((p for p in loc if isinstance(p, int)), None)
    name = label(path)
    where = f"entry {index + 1} of {name}" if index is not None else name
    text = _number_message(err, where, path) or _bound_message(err, where)
    if text is None and err["type"] == "string_too_short":
        text = f"{name} is empty: type a name, e.g. my-sweep"
    if text is None and err["type"] == "missing":
        text = f"{name} is required: fill it in"
    if text is None:
        text = in_form_words(str(err["msg"]).removeprefix("Value error, "))
    # Every message starts with the label of its field, so it reads the same beside the field
    # and in the list next to the Launch button.
    if not text.lower().startswith(name.lower()) and not text.startswith("entry "):
        text = f"{name}: {text}"
    return path, text[0].upper() + text[1:]


def errors_by_field(exc: ValidationError) -> dict[str, list[str]]:
    """Every error of `exc` in the form's words, keyed by dotted path (`` for the whole spec)."""
    out: dict[str, list[str]] = {}
    for err in exc.errors():
        path, text = message(err)
        out.setdefault(path, []).append(text)
    return out
