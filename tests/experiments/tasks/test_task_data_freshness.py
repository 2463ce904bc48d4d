"""Task data is never stale: every cache is keyed by the files' size and mtime, re-checks the
allowed folders, and a sweep's runs are refused once its data changed since it was submitted."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from experiments import train
from experiments.errors import FieldError
from experiments.spec.run import RunConfig
from experiments.spec.sweep import SweepSpec, spec_hash
from experiments.store import Store
from experiments.sweep.submit import create_sweep
from experiments.tasks import TaskConfig, clear_task_cache, list_data
from experiments.tasks.loading import data_fingerprint, stamp_task
from experiments.train import NullReporter, run_job, train_run

torch.set_num_threads(1)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The only allowed data folder; every cache starts (and ends) empty."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", str(folder))
    _forget()
    yield folder
    _forget()


def _forget() -> None:
    clear_task_cache()
    train._TASK_CACHE.clear()
    train._SHAPES_CACHE.clear()


def _write(path: Path, data: bytes, mtime_s: int) -> None:
    # An explicit mtime: two writes within the file system's timestamp granularity must still
    # read as two versions.
    path.write_bytes(data)
    os.utime(path, (mtime_s, mtime_s))


def _tokens(folder: Path, seed: int, n: int, mtime_s: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name, size in (("train.bin", n), ("val.bin", n // 4)):
        path = folder / name
        rng.integers(0, 50, size).astype(np.uint16).tofile(path)
        os.utime(path, (mtime_s, mtime_s))
    return folder


def _run(task: TaskConfig, **changes: Any) -> RunConfig:
    data: dict[str, Any] = {
        "model": {"kind": "gpt", "depth": 1, "head_dim": 8}, "task": task, "width": 16,
        "base_width": 8, "lr": 2.0**-6, "steps": 6, "batch_size": 4, "log_every": 3,
        "device": "cpu",
    }
    return RunConfig.model_validate({**data, **changes})


def _loss(run: RunConfig) -> float:
    result = train_run(run, NullReporter())
    assert result.final_train_loss is not None
    return result.final_train_loss


def test_an_edited_file_is_trained_on_in_the_same_process(data_dir: Path) -> None:
    corpus = data_dir / "corpus.txt"
    _write(corpus, bytes(range(256)) * 8, 1_000_000)
    run = _run(TaskConfig(name="file", path=str(corpus), seq_len=8))
    before = _loss(run)
    _write(corpus, b"the quick brown fox jumps over the lazy dog. " * 60, 2_000_000)
    after = _loss(run)  # same process, same config: the caches must see the new file
    _forget()
    fresh = _loss(run)  # what a fresh process trains on the edited file
    assert after == pytest.approx(fresh, rel=1e-5)
    assert abs(after - before) > 1e-3


def test_an_edited_tokens_folder_is_trained_on_in_the_same_process(data_dir: Path) -> None:
    folder = _tokens(data_dir / "tok", seed=0, n=4000, mtime_s=1_000_000)
    run = _run(TaskConfig(name="tokens", path=str(folder), seq_len=8, vocab_size=50))
    before = _loss(run)
    # Only val.bin changes: the key covers both files.
    np.random.default_rng(5).integers(0, 50, 900).astype(np.uint16).tofile(folder / "val.bin")
    os.utime(folder / "val.bin", (2_000_000, 2_000_000))
    result = train_run(run, NullReporter())
    _forget()
    fresh = train_run(run, NullReporter())
    assert result.final_val_loss == pytest.approx(fresh.final_val_loss, rel=1e-5)
    assert result.final_train_loss == pytest.approx(before, rel=1e-5)  # train.bin is unchanged


def test_a_sweep_refuses_its_runs_once_its_file_changed(data_dir: Path, tmp_path: Path) -> None:
    corpus = data_dir / "corpus.txt"
    _write(corpus, bytes(range(256)) * 8, 1_000_000)
    spec = SweepSpec.model_validate({
        "name": "stale", "model": {"kind": "gpt", "depth": 1, "head_dim": 8},
        "task": {"name": "file", "path": str(corpus), "seq_len": 8}, "widths": [8, 16],
        "base_width": 8, "parametrizations": ["mup"], "lrs": [2.0**-6], "seeds": [0],
        "steps": 6, "batch_size": 4, "log_every": 3, "device": "cpu",
    })
    store = Store(tmp_path / "store.duckdb")
    sweep_id = create_sweep(store, spec)
    stored = store.get_sweep(sweep_id)
    assert stored is not None
    recorded = stored.spec["task"]["fingerprint"]
    assert recorded == data_fingerprint(spec.task) == "corpus.txt: 2048 bytes, mtime_ns 1000000000000000"
    assert stored.spec_hash == spec_hash(spec)  # the record does not change the hash
    run_ids = [int(r) for r in store.runs_frame(sweep_id)["run_id"]]
    first = run_job(store.run_payload(run_ids[0]), NullReporter())
    assert first["state"] == "done"
    _write(corpus, b"other text " * 300, 2_000_000)
    with pytest.raises(FieldError) as err:
        run_job(store.run_payload(run_ids[1]), NullReporter())
    message = str(err.value)
    assert err.value.field == "task.path"
    assert "task.path changed since the sweep was submitted" in message
    assert "2048 bytes" in message and "3300 bytes" in message and "re-submit" in message
    # Restoring the exact file (content, size and mtime) lets the sweep go on.
    _write(corpus, bytes(range(256)) * 8, 1_000_000)
    assert run_job(store.run_payload(run_ids[1]), NullReporter())["state"] == "done"


def test_a_stamped_tokens_task_checks_both_files(data_dir: Path) -> None:
    folder = _tokens(data_dir / "tok", seed=0, n=4000, mtime_s=1_000_000)
    cfg = stamp_task(TaskConfig(name="tokens", path=str(folder), seq_len=8, vocab_size=50))
    assert cfg.fingerprint is not None and "train.bin" in cfg.fingerprint
    assert "val.bin" in cfg.fingerprint
    assert _loss(_run(cfg)) > 0
    os.utime(folder / "val.bin", (3_000_000, 3_000_000))  # same bytes, newer mtime
    with pytest.raises(FieldError, match="changed since the sweep was submitted"):
        train_run(_run(cfg), NullReporter())


def test_the_allowed_folders_are_rechecked_on_a_cached_task(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = data_dir / "corpus.txt"
    _write(corpus, bytes(range(256)) * 8, 1_000_000)
    run = _run(TaskConfig(name="file", path=str(corpus), seq_len=8))
    _loss(run)  # cached now
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", str(other))  # the operator withdraws the folder
    with pytest.raises(FieldError, match="outside the allowed data folders"):
        train_run(run, NullReporter())


def test_a_tokens_folder_deleted_mid_sweep_fails_with_the_data_folder_message(
    data_dir: Path,
) -> None:
    folder = _tokens(data_dir / "tok", seed=0, n=4000, mtime_s=1_000_000)
    run = _run(TaskConfig(name="tokens", path=str(folder), seq_len=8, vocab_size=50))
    _loss(run)
    task = train._TASK_CACHE[next(iter(train._TASK_CACHE))]
    shutil.rmtree(folder)
    with pytest.raises(FieldError, match="does not exist") as err:
        train_run(run, NullReporter())  # the next run of the sweep
    assert err.value.field == "task.path"
    # A run already training when the folder goes: its next batch names the data, not errno.
    with pytest.raises(FieldError, match="no longer readable.*moved or deleted") as err:
        task.batch("train", 2, torch.Generator().manual_seed(0))
    assert err.value.field == "task.path"


def test_the_picker_lists_no_tokens_folder_that_links_outside(
    data_dir: Path, tmp_path: Path
) -> None:
    _tokens(data_dir / "inside", seed=0, n=100, mtime_s=1_000_000)
    outside = _tokens(tmp_path / "outside", seed=1, n=100, mtime_s=1_000_000)
    linked = data_dir / "linked"
    linked.mkdir()
    os.symlink(outside / "train.bin", linked / "train.bin")  # the folder itself is inside
    shutil.copy(outside / "val.bin", linked / "val.bin")
    assert [(e.name, e.kind) for e in list_data()] == [("inside", "tokens")]
    # The engine refuses what the picker leaves out, and accepts what it lists.
    with pytest.raises(FieldError, match="outside the allowed data folders"):
        data_fingerprint(TaskConfig(name="tokens", path=str(linked), vocab_size=50))
    assert data_fingerprint(TaskConfig(name="tokens", path=str(data_dir / "inside"),
                                       vocab_size=50)) is not None
    # A link that stays inside the allowed folders is fine.
    os.remove(linked / "train.bin")
    os.symlink(data_dir / "inside" / "train.bin", linked / "train.bin")
    assert {e.name for e in list_data()} == {"inside", "linked"}


def test_the_fingerprint_is_refused_on_built_in_tasks_and_left_out_when_unset() -> None:
    with pytest.raises(ValueError, match="task.fingerprint"):
        TaskConfig(name="digits", fingerprint="x: 1 bytes")
    assert "fingerprint" not in TaskConfig(name="file", path="a.txt").model_dump()


def test_an_adaptive_sweeps_later_runs_carry_the_submitted_fingerprint(
    data_dir: Path, tmp_path: Path
) -> None:
    from experiments.sweep.planning import SweepPlanner

    corpus = data_dir / "corpus.txt"
    _write(corpus, bytes(range(256)) * 8, 1_000_000)
    spec = SweepSpec.model_validate({
        "name": "adaptive-file", "model": {"kind": "gpt", "depth": 1, "head_dim": 8},
        "task": {"name": "file", "path": str(corpus), "seq_len": 8}, "widths": [8, 16, 32],
        "base_width": 8, "parametrizations": ["mup"], "seeds": [0],
        "lr_grid": {"log2_min": -9, "log2_max": -3, "step": 1}, "search": {"kind": "adaptive"},
        "steps": 2, "batch_size": 2, "log_every": 1, "device": "cpu",
    })
    store = Store(tmp_path / "store.duckdb")
    sweep_id = create_sweep(store, spec)
    recorded = data_fingerprint(spec.task)
    for claim in store.claim(1000, "test", sweep_id):  # the first round, finished as a bowl
        x = np.log2(claim.payload["lr"])
        loss = 1.0 + (x + 6.0) ** 2 / 8
        assert claim.payload["task"]["fingerprint"] == recorded
        assert store.finish(claim.run_id, claim.attempt, {
            "state": "done", "final_train_loss": loss, "final_val_loss": loss, "steps_done": 2})
    assert SweepPlanner(store).top_up(sweep_id) > 0  # the wider widths, queued by the runner
    later = store.claim(1000, "test", sweep_id)
    assert later and all(c.payload["task"]["fingerprint"] == recorded for c in later)
