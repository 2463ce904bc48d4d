"""Which folders task data may be read from, and what data they hold (torch-free).

The rule, for every `task.path` (a "file" task's .txt/.npz, a "tokens" task's folder), from the
CLI, a worker or the browser alike:

1. The allowed folders are the setting `MUTRANSFER_DATA_DIRS` (os.pathsep-separated, like PATH);
   unset or empty, the one folder `datasets/` beside the store (`MUTRANSFER_DB_PATH`'s folder,
   by default `data/datasets/`). The CLI's `--db` flag does not move it: the rule belongs to
   the machine's operator, not to a command line or a spec.
2. The path is resolved (`~` expanded, relative to the working directory, symlinks followed);
   the result must lie inside one of the resolved allowed folders. A symlink inside a folder
   that points out of it is refused.

So a spec, whoever wrote it, can make a server or a worker read only data the operator put in
those folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from experiments.errors import FieldError
from experiments.settings import get_settings

DATA_DIRS_ENV = "MUTRANSFER_DATA_DIRS"
FILE_SUFFIXES = (".txt", ".npz")  # what a "file" task reads
TOKEN_FILES = ("train.bin", "val.bin")  # what a "tokens" folder holds
MAX_LISTED = 1000  # entries a listing returns: a huge data folder must not stall the form

DataKind = Literal["text", "npz", "tokens"]


@dataclass(frozen=True)
class DataEntry:
    """One thing a task can read from an allowed folder.

    Attributes:
        path: the absolute path to put in `task.path`.
        name: the path relative to its allowed folder (what a picker shows).
        folder: the allowed folder it lies in.
        kind: "text" (.txt: byte LM, task "file"), "npz" (.npz: classification, task "file") or
            "tokens" (a folder holding train.bin and val.bin, task "tokens").
    """

    path: str
    name: str
    folder: str
    kind: DataKind

    @property
    def task_name(self) -> str:
        """The `task.name` that reads this entry."""
        return "tokens" if self.kind == "tokens" else "file"


def allowed_data_dirs() -> list[Path]:
    """The resolved folders task data may come from (the settings', in their order)."""
    return [Path(d).expanduser().resolve() for d in get_settings().data_dirs]


def outside_message(path: str, dirs: list[Path]) -> str:
    """The refusal for a path outside `dirs`: names the folders and the setting to change."""
    listed = ", ".join(str(d) for d in dirs) or "(none)"
    return (
        f"task path '{path}' is outside the allowed data folders ({listed}): move the data into "
        f"one of them, or add its folder to {DATA_DIRS_ENV} (os.pathsep-separated) where the "
        "runner and the dashboard start"
    )


def check_allowed(path: str) -> Path:
    """The resolved `path`, if it lies inside an allowed folder (existing or not).

    Raises:
        FieldError: (field "task.path") the path is outside every allowed folder.
    """
    resolved = Path(path).expanduser().resolve()
    dirs = allowed_data_dirs()
    if not any(resolved.is_relative_to(d) for d in dirs):
        raise FieldError(outside_message(path, dirs), "task.path")
    return resolved


def _inside(path: Path, dirs: list[Path]) -> bool:
    """Whether `path`, symlinks followed, lies inside one of `dirs` (the engine's rule)."""
    return any(path.resolve().is_relative_to(d) for d in dirs)


def _entry(path: Path, folder: Path, dirs: list[Path]) -> DataEntry | None:
    if path.is_dir():
        files = [path / name for name in TOKEN_FILES]
        # A .bin that links out of the allowed folders is refused by the engine (tokens'
        # resolve_token_dir): a picker must not offer what a launch would refuse.
        if all(f.is_file() and _inside(f, dirs) for f in files):
            return DataEntry(str(path), str(path.relative_to(folder)), str(folder), "tokens")
        return None
    suffix = path.suffix.lower()
    if suffix in FILE_SUFFIXES and path.is_file():
        kind: DataKind = "text" if suffix == ".txt" else "npz"
        return DataEntry(str(path), str(path.relative_to(folder)), str(folder), kind)
    return None


def list_data(dirs: list[Path] | None = None) -> list[DataEntry]:
    """Every .txt, .npz and token folder inside the allowed folders, sorted per folder.

    Symlinked folders are not descended (their targets may lie outside), and an entry is listed
    only if the engine would accept it: its path, and a token folder's train.bin and val.bin,
    resolve inside the folders (symlinks followed). At most `MAX_LISTED` entries are returned.

    Args:
        dirs: the folders to list; default `allowed_data_dirs()`.
    """
    out: list[DataEntry] = []
    folders = allowed_data_dirs() if dirs is None else dirs
    for folder in folders:
        if not folder.is_dir():
            continue
        found: list[DataEntry] = []
        for root, subdirs, files in os.walk(folder):
            subdirs.sort()
            for name in [*subdirs, *files]:
                entry = _entry(Path(root) / name, folder, folders)
                # A symlink can point outside the folder: list only what the rule would accept.
                if entry is not None and Path(entry.path).resolve().is_relative_to(folder):
                    found.append(entry)
            if len(out) + len(found) >= MAX_LISTED:
                break
        out.extend(sorted(found, key=lambda e: e.name))
        if len(out) >= MAX_LISTED:
            return out[:MAX_LISTED]
    return out
