"""Submitting a sweep: a validated spec becomes a stored sweep with one queued run per config.

    sweep_id = create_sweep(Store(db_path), load_spec("experiments/configs/quick.yaml"))

The store is generic (it queues "module:function" jobs with JSON payloads); this module is the
one place that says a sweep's runs are training runs (`TRAIN_JOB`), how a run becomes a stored
row (`run_rows`; the adaptive planner, `experiments.sweep.planning`, queues its later rounds through
it) and how a spec is keyed and hashed in the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.spec.run import RunConfig
from experiments.spec.sweep import SweepSpec, run_key, spec_hash

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.store import RunRow, Store

# The job every training run executes: `experiments.train.run_job(payload, reporter)`.
TRAIN_JOB = "experiments.train:run_job"


def run_rows(runs: list[RunConfig], job_fn: str) -> list[RunRow]:
    """Store rows for training runs (keys from `experiments.spec.sweep.run_key`)."""
    from experiments.store import RunRow

    return [
        RunRow(
            run_key=run_key(run),
            width=run.width,
            parametrization=run.parametrization,
            lr=run.lr,
            seed=run.seed,
            hparams=run.hparams.model_dump(),
            payload=run.model_dump(mode="json"),
            job_fn=job_fn,
        )
        for run in runs
    ]


def create_sweep(store: Store, spec: SweepSpec, job_fn: str = TRAIN_JOB) -> int:
    """Write the sweep and all its runs (queued) to the store in one transaction (with
    `search: adaptive`, the runs of its first round).

    The spec is not re-validated: a `SweepSpec` object is valid by construction. A file or
    tokens task's data fingerprint (each file's size and mtime) is recorded in the stored spec's
    `task.fingerprint`, so a run whose data has changed since is refused
    (`experiments.tasks.loading.stamp_task`); the spec hash is the unstamped spec's.

    Args:
        store: the store to write to.
        spec: a validated spec.
        job_fn: "module:function" each run's worker calls with (payload, reporter).

    Returns:
        The new sweep's id.

    Raises:
        UserError: a file or tokens task's data cannot be read to fingerprint it.
    """
    from experiments.sweep.adaptive import plan_runs
    from experiments.tasks.loading import stamp_task

    # A re-submitted stored spec carries its old fingerprint: hashed without, stamped afresh.
    digest = spec_hash(spec.model_copy(
        update={"task": spec.task.model_copy(update={"fingerprint": None})}))
    spec = spec.model_copy(update={"task": stamp_task(spec.task)})
    # An adaptive search starts with its first round (the full grid at the narrowest widths);
    # the runner queues the rest as results arrive (experiments.sweep.planning).
    runs = plan_runs(spec, {}).add if spec.search.kind == "adaptive" else spec.expand()
    rows = run_rows(runs, job_fn)
    data = spec.model_dump(mode="json")
    return store.create_sweep(spec.name, data, rows, spec_hash=digest)
