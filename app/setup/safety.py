"""What the browser may ask for: data only, and task data only from the allowed folders.

A spec that arrives from the browser (an upload or the form) is parsed by the engine's spec
reader (`experiments.service.read_uploaded_spec`: plain data, no Python tags, the CLI's bounds)
and, before the engine sees it, checked here:
- the document is a mapping and not huge;
- a `task: {name: file|tokens, path: ...}` must point inside one of the allowed data folders
  (setting `MUTRANSFER_DATA_DIRS`; by default the datasets folder beside the store,
  `<db dir>/datasets/`); a relative path is looked up in those folders; anything else, `..`
  tricks and symlinks out of them included, is refused, so the browser can never make the server
  read an arbitrary path (the engine applies the same rule again when it loads the task);
- keys that would pick code to run (a job function path) are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments.service import ServiceError, read_uploaded_spec

MAX_SPEC_BYTES = 256 * 1024
DATASET_SUFFIXES = (".txt", ".npz")
# Spec keys that name code (a dotted function path): the CLI may set them, the browser never.
CODE_KEYS = ("job", "job_fn", "job_function", "function", "callable")


class UnsafeSpecError(ValueError):
    """The spec asks for something the browser may not (a path, code, too much data).

    Attributes:
        field: the spec field to show the message beside ("task.path"), or "" for the spec.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def parse_uploaded_spec(raw: bytes, filename: str = "spec.yaml") -> dict[str, Any]:
    """Parse an uploaded YAML (or JSON, by its name) spec as plain data, with the reader the
    CLI uses for spec files, so the upload gets the same bounds.

    Raises:
        UnsafeSpecError: too large (checked before parsing), not valid YAML or JSON (the
            reader's message, with the line), or not a mapping.
    """
    if len(raw) > MAX_SPEC_BYTES:
        raise UnsafeSpecError(f"spec file is {len(raw)} bytes; the limit is {MAX_SPEC_BYTES}")
    try:
        data = read_uploaded_spec(raw, filename)
    except ServiceError as exc:
        raise UnsafeSpecError(f"spec file is not valid YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsafeSpecError("spec file must hold a mapping (name: ..., widths: ..., ...)")
    return data


def _folders(folders: Path | Sequence[Path]) -> list[Path]:
    return [folders] if isinstance(folders, Path) else list(folders)


def resolve_dataset(path: str, folders: Path | Sequence[Path], task_name: str = "file") -> Path:
    """The real path of a task's data, which must lie inside one of `folders`.

    Args:
        path: absolute, or relative to the first folder where it exists.
        folders: the allowed data folders (resolved).
        task_name: "file" (a .txt or .npz file) or "tokens" (a folder).

    Raises:
        UnsafeSpecError: (field "task.path") the path escapes the folders, does not exist or is
            the wrong kind of thing.
    """
    dirs = _folders(folders)
    listed = ", ".join(str(d) for d in dirs) or "(none)"
    candidate = Path(path)
    tries = [candidate] if candidate.is_absolute() else [d / candidate for d in dirs]
    real = next((c.resolve() for c in tries if c.exists()), tries[0].resolve() if tries else candidate)
    if not any(real.is_relative_to(d) for d in dirs):
        raise UnsafeSpecError(
            f"task path {path!r} is outside the allowed data folders ({listed}): copy the data "
            "into one of them and pick it by name, or have the operator add its folder to "
            "MUTRANSFER_DATA_DIRS", "task.path",
        )
    if task_name == "tokens":
        if not real.is_dir():
            raise UnsafeSpecError(
                f"task path {path!r} is not a folder (with train.bin and val.bin) in {listed}",
                "task.path",
            )
        return real
    if real.suffix not in DATASET_SUFFIXES:
        raise UnsafeSpecError(f"task file {path!r} must be a .txt or .npz file", "task.path")
    if not real.is_file():
        raise UnsafeSpecError(f"task file {path!r} does not exist in {listed}", "task.path")
    return real


def check_browser_spec(data: dict[str, Any], folders: Path | Sequence[Path]) -> dict[str, Any]:
    """Refuse what a browser may not ask for; return the spec with a task path made absolute.

    Args:
        data: the spec as plain data.
        folders: the allowed data folders (one, or several).

    Raises:
        UnsafeSpecError: the spec names code, or task data outside `folders`.
    """
    code = [k for k in CODE_KEYS if k in data]
    if code:
        raise UnsafeSpecError(f"spec key {code[0]!r} selects code to run; it can only be set from the CLI")
    task = data.get("task")
    if isinstance(task, dict) and (task.get("name") in ("file", "tokens") or task.get("path") is not None):
        path = task.get("path")
        name = "tokens" if task.get("name") == "tokens" else "file"
        if not isinstance(path, str) or not path:
            what = "a folder with train.bin and val.bin" if name == "tokens" else "a .txt or .npz file"
            raise UnsafeSpecError(f"task '{name}' needs a path: {what} in an allowed data folder", "task.path")
        data = {**data, "task": {**task, "path": str(resolve_dataset(path, folders, name))}}
    return data
