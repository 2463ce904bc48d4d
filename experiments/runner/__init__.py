"""The job runner: a queue in the store, executors that run claims, a loop between them."""

from experiments.runner.executor import Executor, LocalExecutor, default_workers
from experiments.runner.loop import (
    RunnerStartError,
    ensure_background_runner,
    make_executor,
    run_pending,
    run_sweep,
)

__all__ = [
    "Executor",
    "LocalExecutor",
    "RunnerStartError",
    "default_workers",
    "ensure_background_runner",
    "make_executor",
    "run_pending",
    "run_sweep",
]
