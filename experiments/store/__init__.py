"""The experiment store: DuckDB for queries, atomic Parquet chunks for the raw metric path."""

from experiments.states import (
    ACTIVE_STATES,
    RUN_STATES,
    TERMINAL_STATES,
    RunState,
    sweep_state,
)
from experiments.store.chunks import ChunkWriter, run_dir, write_result_journal
from experiments.store.db import StoreBusyError, connect, transaction
from experiments.store.quarantine import QuarantinedChunk
from experiments.store.queue import MAX_ATTEMPTS, Claim, PendingCounts
from experiments.store.records import CoordCheckRecord, ExportRecord, VerificationRecord
from experiments.store.runners import RunnerInfo
from experiments.store.store import Store
from experiments.store.sweeps import RunRow, SweepRecord, SweepSummary

__all__ = [
    "ACTIVE_STATES",
    "MAX_ATTEMPTS",
    "RUN_STATES",
    "TERMINAL_STATES",
    "ChunkWriter",
    "Claim",
    "CoordCheckRecord",
    "ExportRecord",
    "PendingCounts",
    "QuarantinedChunk",
    "RunRow",
    "RunState",
    "RunnerInfo",
    "Store",
    "StoreBusyError",
    "SweepRecord",
    "SweepSummary",
    "VerificationRecord",
    "connect",
    "run_dir",
    "sweep_state",
    "transaction",
    "write_result_journal",
]
