"""Submitting a sweep: a validated spec becomes a stored sweep with one queued run per config.

    sweep_id = create_sweep(Store(db_path), load_spec("experiments/configs/quick.yaml"))

The store is generic (it queues "module:function" jobs with JSON payloads); this module is the
one place that says a sweep's runs are training runs (`TRAIN_JOB`) and how a spec is keyed and
hashed in the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.spec import SweepSpec, spec_hash

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.store import Store

# The job every training run executes: `experiments.train.run_job(payload, reporter)`.
TRAIN_JOB = "experiments.train:run_job"


def create_sweep(store: Store, spec: SweepSpec, job_fn: str = TRAIN_JOB) -> int:
    """Write the sweep and all its runs (queued) to the store in one transaction (with
    `search: adaptive`, the runs of its first round).

    The spec is not re-validated: a `SweepSpec` object is valid by construction.

    Args:
        store: the store to write to.
        spec: a validated spec.
        job_fn: "module:function" each run's worker calls with (payload, reporter).

    Returns:
        The new sweep's id.
    """
    from experiments.adaptive import plan_runs
    from experiments.planning import run_rows

    # An adaptive search starts with its first round (the full grid at the narrowest widths);
    # the runner queues the rest as results arrive (experiments.planning).
    runs = plan_runs(spec, {}).add if spec.search.kind == "adaptive" else spec.expand()
    rows = run_rows(runs, job_fn)
    data = spec.model_dump(mode="json")
    return store.create_sweep(spec.name, data, rows, spec_hash=spec_hash(spec))
