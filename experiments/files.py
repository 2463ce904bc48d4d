"""Reading the project's structured files (specs, bundles): JSON for .json, else YAML.

One reader, so every file a user hands us fails the same way: a missing file, an unreadable
one, or a syntax error with its line and column, each as a `UserError` that names the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from experiments.errors import UserError

YAML_SUFFIXES = (".yaml", ".yml")


def is_yaml(path: str | Path) -> bool:
    """Whether `path` names a YAML file (.yaml/.yml); anything else is read as JSON."""
    return Path(path).suffix.lower() in YAML_SUFFIXES


def read_structured(path: str | Path, what: str) -> Any:
    """Parse a JSON (.json) or YAML (any other suffix: YAML also reads JSON text) file.

    Args:
        path: the file.
        what: what the file is, for messages ("spec file", "bundle").

    Returns:
        The parsed data (a dict for a well-formed spec or bundle; callers check the shape).

    Raises:
        UserError: the file is missing or unreadable, or has a syntax error (with its line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {p} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {what} {p}: {exc}") from None
    if p.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{p}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{p}: YAML syntax error{where}: {problem}") from None
