"""Which GPU a local worker trains on: pure functions, tested with made-up GPU counts."""

from __future__ import annotations

import pytest

from experiments.runner.executor import assign_device, worker_device


@pytest.mark.parametrize(
    "n_gpus,expected",
    [
        (0, [None, None, None, None]),
        (1, ["cuda:0", "cuda:0", "cuda:0", "cuda:0"]),
        (2, ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]),
        (4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
        (8, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
    ],
)
def test_worker_i_gets_gpu_i_mod_n(n_gpus: int, expected: list[str | None]) -> None:
    assert [worker_device(i, n_gpus) for i in range(4)] == expected


def test_workers_share_gpus_evenly() -> None:
    devices = [worker_device(i, 3) for i in range(7)]
    counts = sorted(devices.count(f"cuda:{g}") for g in range(3))
    assert counts == [2, 2, 3]


def test_negative_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="slot"):
        worker_device(-1, 2)


@pytest.mark.parametrize(
    "requested,worker,expected",
    [
        ("auto", "cuda:1", "cuda:1"),  # follows the worker's GPU
        ("cuda", "cuda:1", "cuda:1"),  # a bare "cuda" would otherwise pile onto cuda:0
        ("cuda:0", "cuda:1", "cuda:0"),  # an explicit index is the spec's choice
        ("cpu", "cuda:1", "cpu"),
        ("auto", None, "auto"),  # CPU-only machine: unchanged
        ("cpu", None, "cpu"),
    ],
)
def test_assign_device(requested: str, worker: str | None, expected: str) -> None:
    assert assign_device(requested, worker) == expected


def test_the_local_executor_says_where_a_claim_trains() -> None:
    from types import SimpleNamespace

    from experiments.runner.executor import LocalExecutor

    def claim(device: str) -> SimpleNamespace:
        return SimpleNamespace(payload={"device": device})

    no_gpu, gpus = SimpleNamespace(gpus=0), SimpleNamespace(gpus=2)
    assert LocalExecutor.device_for(no_gpu, claim("auto")) == "cpu"  # type: ignore[arg-type]
    assert LocalExecutor.device_for(gpus, claim("auto")) == "cuda"  # type: ignore[arg-type]
    assert LocalExecutor.device_for(gpus, claim("cuda:1")) == "cuda:1"  # type: ignore[arg-type]
