"""Job entry points the Ray tests run inside real Ray workers (imported there by dotted path,
`tests.experiments.runner.conftest_ray:NAME`), so they live in a plain module, not in a test file."""

from __future__ import annotations

import os
import time
from typing import Any


def echo_job(job: dict[str, Any]) -> dict[str, Any]:
    """Return the job's `x` and this worker's pid; optionally publish the pid and sleep first.

    `pidfile` (written atomically) lets a test find and kill the process running the job;
    `sleep_s` keeps it busy long enough to be killed or cancelled mid-run.
    """
    if job.get("pidfile"):
        tmp = f"{job['pidfile']}.tmp"
        with open(tmp, "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(tmp, job["pidfile"])
    time.sleep(float(job.get("sleep_s", 0.0)))
    return {"x": job["x"], "pid": os.getpid(), "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}


def train_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train one run through `experiments.train:run_job` (one torch thread, as local workers)."""
    import torch

    from experiments.train import NullReporter, run_job

    torch.set_num_threads(1)
    return run_job(job["payload"], NullReporter())
