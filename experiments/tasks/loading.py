"""Load a task by its config, cached per process (one copy of each data set per worker)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from experiments.tasks.base import Task
from experiments.tasks.config import LM_TASKS, TaskConfig, TaskInfo
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
class _CacheKey:
    """What a loaded task depends on. For file and tokens tasks that includes each file's size
    and mtime, so editing a file between sweeps loads the new content instead of a stale copy."""

    name: str
    path: str | None = None
    seq_len: int = 0
    vocab_size: int = 0
    dtype: str = ""
    stamp: tuple[int, ...] = ()


def _cache_key(cfg: TaskConfig) -> _CacheKey:
    """The key of `cfg`; checks a file or tokens task's path (allowed folders first) each call."""
    seq_len = cfg.seq_len if cfg.name in LM_TASKS else 0
    if cfg.name not in ("file", "tokens"):
        return _CacheKey(cfg.name, seq_len=seq_len)
    assert cfg.path is not None  # TaskConfig's validator guarantees it
    if cfg.name == "file":
        path = resolve_user_file(cfg.path)
        files = [path]
    else:
        path = resolve_token_dir(cfg.path)
        files = [path / name for name in TOKEN_FILES]
    stamp = tuple(v for f in files for v in (os.stat(f).st_size, os.stat(f).st_mtime_ns))
    return _CacheKey(cfg.name, str(path), seq_len, cfg.vocab_size or 0, cfg.dtype or "", stamp)


@functools.lru_cache(maxsize=16)
def _load_cached(key: _CacheKey) -> Task:
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
            spec field to fix: task.path, task.dtype, task.seq_len, task.vocab_size).
        UserError: a file task's path is missing, not a regular .txt/.npz file, or its content
            is invalid (missing arrays, too few rows or bytes).
    """
    return _load_cached(_cache_key(cfg))


def task_info(cfg: TaskConfig) -> TaskInfo:
    """Shapes and sizes of a task (loads it once, then served from the cache).

    Raises:
        UserError: as `load_task`.
    """
    return load_task(cfg).info


def clear_task_cache() -> None:
    """Forget every cached task (tests; a long-lived process that wants memory back)."""
    _load_cached.cache_clear()
