"""The adaptive search against the store: queue a sweep's next runs as its results arrive.

    SweepPlanner(store).top_up(sweep_id)     # after runs finish: queue what the search needs
    search_progress(store, sweep_id)         # runs so far, planned next, the full grid's size

The plan is derived purely from stored state (the sweep's spec and its runs' states and final
losses, `experiments.sweep.adaptive.plan_runs`), and runs are added through `Store.add_runs`, which
skips run keys the sweep already has. So planning twice adds nothing, and a runner killed
between a run finishing and its follow-ups being queued loses nothing: the next runner (or
`sweep resume`) plans again at start and queues exactly what the uninterrupted sweep would.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from experiments.errors import UserError
from experiments.spec.sweep import SweepSpec, parse_spec
from experiments.sweep.adaptive import ENDED, RunOutcome, plan_runs
from experiments.sweep.submit import TRAIN_JOB, run_rows

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.store import Store

# The loss the search minimises: the analysis' default (`experiments.analysis.report.analyze`).
SEARCH_LOSS = "final_train_loss"


def is_adaptive(spec_data: dict[str, Any]) -> bool:
    """Whether a stored spec asks for the adaptive search (cheap: no validation)."""
    search = spec_data.get("search")
    return isinstance(search, dict) and search.get("kind") == "adaptive"


def outcomes_of(store: Store, sweep_id: int) -> dict[str, RunOutcome]:
    """Every stored run of the sweep as {run key: outcome}."""
    frame = store.runs_frame(sweep_id)
    out = {}
    for key, state, loss in zip(frame["run_key"], frame["state"], frame[SEARCH_LOSS],
                                strict=True):
        value = None if loss is None or loss != loss else float(loss)  # NaN -> None
        out[str(key)] = RunOutcome(str(state), value)
    return out


# Validated stored specs by their JSON text: validation loads the task and sizes the model, and
# a page refreshing every 2 s or a CLI asking per sweep should pay for it once per process.
_PARSED: dict[str, SweepSpec] = {}


def _parsed(data: dict[str, Any], sweep_id: int) -> SweepSpec | None:
    """The stored spec validated (cached), or None with a message when it no longer validates
    here (e.g. its device is missing on this machine)."""
    text = json.dumps(data, sort_keys=True)
    if text not in _PARSED:
        try:
            _PARSED[text] = parse_spec(data, source=f"stored spec of sweep {sweep_id}")
        except UserError as exc:
            print(f"sweep {sweep_id}: cannot plan the adaptive search: {exc}", file=sys.stderr,
                  flush=True)
            return None
    return _PARSED[text]


class SweepPlanner:
    """Tops up adaptive sweeps; keeps each sweep's validated spec (validation loads the task)."""

    def __init__(self, store: Store, job_fn: str | None = None) -> None:
        """`job_fn`: the job added runs execute; default the job of the sweep's own runs (the
        one `create_sweep` was given), so a search's later runs do what its first ones did."""
        self.store = store
        self.job_fn = job_fn
        self._specs: dict[int, SweepSpec | None] = {}

    def spec(self, sweep_id: int) -> SweepSpec | None:
        """The sweep's spec when it is adaptive, else None (grid and engine-level sweeps)."""
        if sweep_id not in self._specs:
            record = self.store.get_sweep(sweep_id)
            spec = None
            if record is not None and is_adaptive(record.spec):
                spec = _parsed(record.spec, sweep_id)
            self._specs[sweep_id] = spec
        return self._specs[sweep_id]

    def top_up(self, sweep_id: int) -> int:
        """Queue the runs the search needs now; returns how many were added (0: none).

        A sweep with cancelled runs gets nothing: cancelling stops the search too.
        """
        spec = self.spec(sweep_id)
        if spec is None:
            return 0
        outcomes = outcomes_of(self.store, sweep_id)
        if any(o.state == "cancelled" for o in outcomes.values()):
            return 0  # the user stopped the sweep: plan again once `sweep retry` re-queues
        plan = plan_runs(spec, outcomes)
        if not plan.add:
            return 0
        job_fn = self.job_fn or self.store.sweep_job_fn(sweep_id) or TRAIN_JOB
        return self.store.add_runs(sweep_id, run_rows(plan.add, job_fn))

    def top_up_all(self, sweep_id: int | None = None) -> int:
        """`top_up` one sweep, or every sweep in the store (a runner serving them all)."""
        ids = [sweep_id] if sweep_id is not None else [s.id for s in self.store.list_sweeps()]
        return sum(self.top_up(sid) for sid in ids)


@dataclass
class SearchProgress:
    """Where an adaptive sweep stands (`sweep status`, the Runs page).

    Attributes:
        runs: runs stored so far (any state).
        ended: of those, runs that have ended.
        to_add: runs the search needs now but not stored yet (0 unless a runner died
            between a run finishing and planning: `sweep resume` adds them).
        later_min: runs still to come at least, at widths the search has not reached.
        full_grid: the runs of the full grid (the most the search can make).
        complete: the search will add nothing more.
        warnings: optima stuck at the grid's edge.
    """

    runs: int
    ended: int
    to_add: int
    later_min: int
    full_grid: int
    complete: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""
        return asdict(self)

    def line(self) -> str:
        """One line for `sweep status`."""
        state = "search complete" if self.complete else (
            f"{self.to_add + self.later_min} planned next at least")
        return (f"adaptive: {self.runs} runs so far ({self.ended} ended), {state} / upper "
                f"bound {self.full_grid} (the full grid)")


def search_progress(store: Store, sweep_id: int) -> SearchProgress | None:
    """The adaptive search's progress, or None for a sweep that is not adaptive."""
    spec = SweepPlanner(store).spec(sweep_id)
    if spec is None:
        return None
    outcomes = outcomes_of(store, sweep_id)
    plan = plan_runs(spec, outcomes)
    ended = sum(o.state in ENDED
                for o in outcomes.values())
    return SearchProgress(len(outcomes), ended, len(plan.add), plan.later_min, spec.n_runs(),
                          plan.complete and not plan.add, plan.warnings)
