"""Run states: the one list of what a run in the queue can be.

A run is `queued` until a runner claims it, `running` while a worker has it, and then ends in
one of the terminal states. Everything else derives from `RunState`: the terminal and active
groups, the SQL lists the store queries with, and the CHECK constraint on `runs.state` (see
`experiments.store.schema`). Adding a state is one new member here (plus a migration of the
CHECK for stores created before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class RunState(StrEnum):
    """The state of one run (a `StrEnum`: members equal, format and serialise as their text)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DIVERGED = "diverged"  # stopped by the blow-up rule: a finished run whose loss is infinite
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_STATES: tuple[RunState, ...] = tuple(RunState)
# Runs a runner still has to do something about.
ACTIVE_STATES: tuple[RunState, ...] = (RunState.QUEUED, RunState.RUNNING)
TERMINAL_STATES: tuple[RunState, ...] = tuple(s for s in RunState if s not in ACTIVE_STATES)
# How a training job can end (`RunResult.state`): a failure is an exception, not a result.
OUTCOME_STATES: tuple[RunState, ...] = (RunState.DONE, RunState.DIVERGED, RunState.CANCELLED)
# Runs `retry_failed` puts back in the queue.
RETRYABLE_STATES: tuple[RunState, ...] = (RunState.FAILED, RunState.CANCELLED)
# A sweep takes the state of its most urgent runs, in this order; with none of these, it is done.
_SWEEP_PRIORITY: tuple[RunState, ...] = (
    RunState.RUNNING, RunState.QUEUED, RunState.FAILED, RunState.CANCELLED,
)


def sql_states(states: Iterable[RunState]) -> str:
    """The states as an SQL list body, e.g. "'failed', 'cancelled'" (enum text, never user input)."""
    return ", ".join(f"'{s}'" for s in states)


def sweep_state(counts: Mapping[str, int]) -> RunState:
    """Sweep state from its run counts: running > queued > failed > cancelled > done."""
    for state in _SWEEP_PRIORITY:
        if counts.get(state):
            return state
    return RunState.DONE


def finished_runs(counts: Mapping[str, int]) -> int:
    """How many runs in `counts` (runs per state) are in a terminal state."""
    return sum(n for state, n in counts.items() if state not in ACTIVE_STATES)
