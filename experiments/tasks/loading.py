"""Load a task by its config, cached per process (one copy of each data set per worker).

The cache is keyed by what the data depends on (`TaskKey`: the path, each file's size and
mtime), and every load re-checks the allowed folders, so a long-lived worker never trains on a
stale copy of an edited file, nor on a file the operator has since moved out of reach.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from experiments.errors import FieldError
from experiments.tasks.base import Task
from experiments.tasks.config import LM_TASKS, PATH_TASKS, TaskConfig, TaskInfo
from experiments.tasks.datadirs import TOKEN_FILES
from experiments.tasks.sources import (
    load_bytes_task,
    load_digits_task,
    load_npz_file_task,
    load_synthetic_lm_task,
    load_synthetic_task,
    load_text_file_task,
    resolve_user_file,
)
from experiments.tasks.tokens import load_tokens_task, resolve_token_dir


@dataclass(frozen=True)
class TaskKey:
    """What a loaded task depends on: the config fields that shape it and, for file and tokens
    tasks, the resolved path and each file's size and mtime (a tokens folder: train.bin and
    val.bin), so editing a file loads the new content instead of a stale copy. Every cache of
    task data (here, the worker's per-device copies, its base shapes) is keyed by it."""

    name: str
    path: str | None = None
    seq_len: int = 0
    vocab_size: int = 0
    dtype: str = ""
    stamp: tuple[int, ...] = ()


def _data_files(cfg: TaskConfig) -> tuple[Path, list[Path]]:
    """The resolved path of a file or tokens task and the files it reads; checks the allowed
    folders (and, for tokens, both .bin files) on every call."""
    assert cfg.path is not None  # TaskConfig's validator guarantees it
    if cfg.name == "file":
        path = resolve_user_file(cfg.path)
        return path, [path]
    path = resolve_token_dir(cfg.path)
    return path, [path / name for name in TOKEN_FILES]


def _stamp(cfg: TaskConfig, files: list[Path]) -> tuple[int, ...]:
    """(size, mtime_ns) of each file, in order; a file gone since it was resolved (a folder
    deleted mid-sweep) gets the data-folder message, not a raw FileNotFoundError."""
    out: list[int] = []
    for f in files:
        try:
            st = os.stat(f)
        except OSError as exc:
            raise FieldError(
                f"task data '{f}' (task.path '{cfg.path}') is no longer readable ({exc.strerror}): "
                "it was moved or deleted; put it back, or set task.path to where it is now",
                "task.path",
            ) from None
        out += [st.st_size, st.st_mtime_ns]
    return tuple(out)


def fingerprint_text(files: list[Path], stamp: tuple[int, ...]) -> str:
    """The readable form of a stamp: "NAME: SIZE bytes, mtime_ns NS" per file, "; "-joined."""
    return "; ".join(f"{f.name}: {stamp[2 * i]} bytes, mtime_ns {stamp[2 * i + 1]}"
                     for i, f in enumerate(files))


def data_fingerprint(cfg: TaskConfig) -> str | None:
    """The data fingerprint of a file or tokens task (each file's name, size and mtime), what
    `create_sweep` records in the stored spec's `task.fingerprint`; None for built-in tasks.

    Raises:
        UserError / FieldError: as `load_task` (outside the allowed folders, missing files).
    """
    if cfg.name not in PATH_TASKS:
        return None
    _, files = _data_files(cfg)
    return fingerprint_text(files, _stamp(cfg, files))


def stamp_task(cfg: TaskConfig) -> TaskConfig:
    """`cfg` with `fingerprint` set to its data's current fingerprint (unchanged for built-in
    tasks): a sweep records it at submit, and each of its runs is refused if the data has
    changed since (`task_key`).

    Raises:
        UserError / FieldError: as `data_fingerprint`.
    """
    fingerprint = data_fingerprint(cfg)
    if fingerprint is None:
        return cfg
    return cfg.model_copy(update={"fingerprint": fingerprint})


def task_key(cfg: TaskConfig) -> TaskKey:
    """The cache key of `cfg`; re-checks a file or tokens task's path (allowed folders first)
    and its files on every call.

    Raises:
        FieldError: (task.path) outside the allowed folders, a file gone, or data that changed
            since the sweep recorded `cfg.fingerprint` (the runs not yet started are refused:
            they would train on other data than the sweep's first runs).
        UserError: as `load_task`.
    """
    seq_len = cfg.seq_len if cfg.name in LM_TASKS else 0
    if cfg.name not in PATH_TASKS:
        return TaskKey(cfg.name, seq_len=seq_len)
    path, files = _data_files(cfg)
    stamp = _stamp(cfg, files)
    if cfg.fingerprint is not None:
        now = fingerprint_text(files, stamp)
        if now != cfg.fingerprint:
            raise FieldError(
                f"task.path changed since the sweep was submitted: {path} was "
                f"[{cfg.fingerprint}], now [{now}]; this run is refused so the sweep does not "
                "mix two data sets: re-submit the sweep to train on the new data (or restore "
                "the old file)",
                "task.path",
            )
    return TaskKey(cfg.name, str(path), seq_len, cfg.vocab_size or 0, cfg.dtype or "", stamp)


@functools.lru_cache(maxsize=16)
def _load_cached(key: TaskKey) -> Task:
    name, path, seq_len = key.name, key.path, key.seq_len
    if name == "digits":
        return load_digits_task()
    if name == "synthetic":
        return load_synthetic_task()
    if name == "bytes":
        return load_bytes_task(seq_len)
    if name == "synthetic-lm":
        return load_synthetic_lm_task(seq_len)
    assert path is not None
    if name == "tokens":  # the key was made by resolve_token_dir a moment ago
        return load_tokens_task(Path(path), key.vocab_size, seq_len, key.dtype)
    resolved = resolve_user_file(path)
    if resolved.suffix.lower() == ".txt":
        return load_text_file_task(resolved, seq_len)
    return load_npz_file_task(resolved)


def load_task(cfg: TaskConfig) -> Task:
    """Load (or fetch from the per-process cache) the task `cfg` names, on the CPU.

    The split is deterministic (seed 0). Cached tasks are shared: call `.to(device)` for a copy
    on another device rather than mutating one.

    Raises:
        FieldError: the path of a file or tokens task is outside the allowed data folders
            (setting `MUTRANSFER_DATA_DIRS`), or a tokens file is invalid (its field says which
            spec field to fix: task.path, task.dtype, task.seq_len, task.vocab_size), a file is
            gone, or the data changed since the sweep recorded `cfg.fingerprint` (`task_key`).
        UserError: a file task's path is missing, not a regular .txt/.npz file, or its content
            is invalid (missing arrays, too few rows or bytes).
    """
    return _load_cached(task_key(cfg))


def task_info(cfg: TaskConfig) -> TaskInfo:
    """Shapes and sizes of a task (loads it once, then served from the cache).

    Raises:
        UserError: as `load_task`.
    """
    return load_task(cfg).info


def clear_task_cache() -> None:
    """Forget every cached task (tests; a long-lived process that wants memory back)."""
    _load_cached.cache_clear()
