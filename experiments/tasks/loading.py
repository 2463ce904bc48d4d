"""Load a task by its config, cached per process (one copy of each data set per worker)."""

from __future__ import annotations

import functools
import os

from experiments.tasks.base import Task
from experiments.tasks.config import TaskConfig, TaskInfo
from experiments.tasks.sources import (
    load_bytes_task,
    load_digits_task,
    load_npz_file_task,
    load_synthetic_lm_task,
    load_synthetic_task,
    load_text_file_task,
    resolve_user_file,
)

# The cache key of a file task includes the file's size and mtime, so editing the file between
# sweeps loads the new content instead of a stale copy.
_CacheKey = tuple[str, str | None, int, int, int]


def _cache_key(cfg: TaskConfig) -> _CacheKey:
    seq_len = cfg.seq_len if cfg.name in ("bytes", "synthetic-lm", "file") else 0
    if cfg.name != "file":
        return (cfg.name, None, seq_len, 0, 0)
    assert cfg.path is not None  # TaskConfig's validator guarantees it
    path = resolve_user_file(cfg.path)
    st = os.stat(path)
    return (cfg.name, str(path), seq_len, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _load_cached(key: _CacheKey) -> Task:
    name, path, seq_len, _, _ = key
    if name == "digits":
        return load_digits_task()
    if name == "synthetic":
        return load_synthetic_task()
    if name == "bytes":
        return load_bytes_task(seq_len)
    if name == "synthetic-lm":
        return load_synthetic_lm_task(seq_len)
    assert path is not None
    resolved = resolve_user_file(path)
    if resolved.suffix.lower() == ".txt":
        return load_text_file_task(resolved, seq_len)
    return load_npz_file_task(resolved)


def load_task(cfg: TaskConfig) -> Task:
    """Load (or fetch from the per-process cache) the task `cfg` names, on the CPU.

    The split is deterministic (seed 0). Cached tasks are shared: call `.to(device)` for a copy
    on another device rather than mutating one.

    Raises:
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
