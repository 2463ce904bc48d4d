"""Fixtures for the store tests: a fresh store file per test and rows to queue in it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from experiments.store import RunRow, Store

# The store never runs a job: any "module:function" text will do.
NO_JOB = "tests.experiments.engine_jobs:count_job"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A new store file in the test's temp dir."""
    return Store(tmp_path / "s.duckdb")


@pytest.fixture
def make_rows() -> Callable[..., list[RunRow]]:
    """`make_rows(n, **hparams)` -> n rows keyed r0.. with widths 64/128 and lrs 2^-1, 2^-2, ..."""

    def _rows(n: int, **hparams: Any) -> list[RunRow]:
        return [
            RunRow(
                run_key=f"r{i}",
                width=64 * (1 + i % 2),
                parametrization="mup" if i % 2 else "sp",
                lr=2.0 ** -(i + 1),
                seed=0,
                hparams={"init_std": 1.0, "output_mult": 1.0, **hparams},
                payload={"loss": 1.0 + i},
                steps_total=10,
                job_fn=NO_JOB,
            )
            for i in range(n)
        ]

    return _rows
