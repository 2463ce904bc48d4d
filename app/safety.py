"""What the browser may ask for: data only, and files only from an allow-listed folder.

A spec that arrives from the browser (an upload or the form) is parsed with `yaml.safe_load`
(plain data, no Python tags) and, before the engine sees it, checked here:
- the document is a mapping and not huge;
- a `task: {name: file, path: ...}` must point inside the datasets folder (beside the store,
  `<db dir>/datasets/`); anything else, `..` tricks and symlinks out of it included, is
  refused, so the browser can never make the server read an arbitrary path;
- keys that would pick code to run (a job function path) are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_SPEC_BYTES = 256 * 1024
DATASET_SUFFIXES = (".txt", ".npz")
# Spec keys that name code (a dotted function path): the CLI may set them, the browser never.
CODE_KEYS = ("job", "job_fn", "job_function", "function", "callable")


class UnsafeSpecError(ValueError):
    """The spec asks for something the browser may not (a path, code, too much data)."""


def datasets_dir(db_path: Path) -> Path:
    """The only folder a browser-supplied spec may read task files from."""
    return (db_path.parent / "datasets").resolve()


def list_datasets(folder: Path) -> list[str]:
    """Dataset files the form may offer (names relative to `folder`)."""
    if not folder.is_dir():
        return []
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix in DATASET_SUFFIXES
    )


def parse_uploaded_spec(raw: bytes) -> dict[str, Any]:
    """Parse an uploaded YAML (or JSON) spec as plain data.

    Raises:
        UnsafeSpecError: too large, not YAML, or not a mapping.
    """
    if len(raw) > MAX_SPEC_BYTES:
        raise UnsafeSpecError(f"spec file is {len(raw)} bytes; the limit is {MAX_SPEC_BYTES}")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnsafeSpecError(f"spec file is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsafeSpecError("spec file must hold a mapping (name: ..., widths: ..., ...)")
    return data


def resolve_dataset(path: str, folder: Path) -> Path:
    """The real path of a task file, which must lie inside `folder`.

    Raises:
        UnsafeSpecError: the path escapes the folder, does not exist or has the wrong suffix.
    """
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = folder / candidate
    real = candidate.resolve()
    if not real.is_relative_to(folder):
        raise UnsafeSpecError(
            f"task file {path!r} is outside the datasets folder {folder}; "
            "copy the file there and refer to it by name"
        )
    if real.suffix not in DATASET_SUFFIXES:
        raise UnsafeSpecError(f"task file {path!r} must be a .txt or .npz file")
    if not real.is_file():
        raise UnsafeSpecError(f"task file {path!r} does not exist in {folder}")
    return real


def check_browser_spec(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Refuse what a browser may not ask for; return the spec with a task path made absolute.

    Args:
        data: the spec as plain data.
        folder: the allow-listed datasets folder.

    Raises:
        UnsafeSpecError: the spec names code, or a task file outside `folder`.
    """
    code = [k for k in CODE_KEYS if k in data]
    if code:
        raise UnsafeSpecError(f"spec key {code[0]!r} selects code to run; it can only be set from the CLI")
    task = data.get("task")
    if isinstance(task, dict) and (task.get("name") == "file" or task.get("path") is not None):
        path = task.get("path")
        if not isinstance(path, str) or not path:
            raise UnsafeSpecError("task 'file' needs a path: a file in the datasets folder")
        data = {**data, "task": {**task, "path": str(resolve_dataset(path, folder))}}
    return data
