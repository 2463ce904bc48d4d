"""The experiment store: DuckDB for queries, atomic Parquet chunks for the raw metric path."""

from experiments.store.chunks import ChunkWriter, run_dir, write_result_journal
from experiments.store.db import StoreBusyError, connect
from experiments.store.store import (
    MAX_ATTEMPTS,
    RUN_STATES,
    TERMINAL_STATES,
    Claim,
    RunRow,
    Store,
    SweepSummary,
    sweep_state,
)

__all__ = [
    "MAX_ATTEMPTS",
    "RUN_STATES",
    "TERMINAL_STATES",
    "ChunkWriter",
    "Claim",
    "RunRow",
    "Store",
    "StoreBusyError",
    "SweepSummary",
    "connect",
    "run_dir",
    "sweep_state",
    "write_result_journal",
]
