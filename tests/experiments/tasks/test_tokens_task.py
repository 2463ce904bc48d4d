"""Task "tokens": pre-tokenized train.bin / val.bin read through numpy.memmap, and the rule that
user data comes only from the allowed data folders (MUTRANSFER_DATA_DIRS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import ValidationError

from experiments.errors import FieldError, UserError
from experiments.service import Service
from experiments.spec.sweep import parse_spec
from experiments.tasks import (
    LMTask,
    TaskConfig,
    TokenFileTask,
    allowed_data_dirs,
    clear_task_cache,
    list_data,
    load_task,
)
from experiments.tasks import tokens as tokens_module

ROOT = Path(__file__).resolve().parents[3]
VOCAB = 1000
SEQ = 16
N_TRAIN, N_VAL = 20_000, 3_000


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An allowed data folder (the only one) in tmp_path."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", str(folder))
    clear_task_cache()
    return folder


def write_tokens(folder: Path, train: np.ndarray, val: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    train.tofile(folder / "train.bin")
    val.tofile(folder / "val.bin")
    return folder


@pytest.fixture
def corpus(data_dir: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """uint16 ids: train below VOCAB // 2, val at or above it, so a window says where it came from."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, VOCAB // 2, N_TRAIN).astype(np.uint16)
    val = rng.integers(VOCAB // 2, VOCAB, N_VAL).astype(np.uint16)
    return write_tokens(data_dir / "corpus", train, val), train, val


def cfg(path: Path | str, **changes: Any) -> TaskConfig:
    return TaskConfig(**{"name": "tokens", "path": str(path), "vocab_size": VOCAB,
                         "seq_len": SEQ, **changes})


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def window_offsets(stream: np.ndarray, x: torch.Tensor) -> list[int]:
    """For each row of x, the offset in `stream` where it starts (asserting there is one)."""
    windows = sliding_window_view(stream.astype(np.int64), x.shape[1])  # (n - T + 1, T)
    offsets = []
    for row in x.numpy():
        (hits,) = np.nonzero((windows == row).all(axis=1))
        assert hits.size, "a batch row is not a window of the file"
        offsets.append(int(hits[0]))
    return offsets


# -- the task -------------------------------------------------------------------------------------


def test_batches_are_shifted_windows_of_train_bin(corpus: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, train, _ = corpus
    task = load_task(cfg(folder))
    assert isinstance(task, TokenFileTask) and isinstance(task, LMTask)
    info = task.info
    assert (info.name, info.kind, info.n_outputs, info.seq_len) == ("tokens", "lm", VOCAB, SEQ)
    assert (info.n_train, info.n_val, info.input_shape) == (N_TRAIN, N_VAL, (SEQ,))
    x, y = task.batch("train", 8, gen(0))
    assert x.shape == y.shape == (8, SEQ) and x.dtype == y.dtype == torch.int64
    for row, offset in enumerate(window_offsets(train, x)):
        assert torch.equal(y[row], torch.from_numpy(train[offset + 1 : offset + SEQ + 1].astype(np.int64)))
    assert torch.equal(task.tokens("train").long(), torch.from_numpy(train.astype(np.int64)))


def test_val_comes_from_val_bin_and_eval_is_fixed(corpus: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, _, val = corpus
    task = load_task(cfg(folder))
    x, y = task.batch("val", 8, gen(0))
    assert int(x.min()) >= VOCAB // 2 and int(y.min()) >= VOCAB // 2  # never a train.bin id
    window_offsets(val, x)
    first = list(task.eval_batches("val", 10))
    second = list(task.eval_batches("val", 7))
    xs = torch.cat([b[0] for b in first])
    assert torch.equal(xs, torch.cat([b[0] for b in second]))  # fixed windows, any batch size
    starts = task.eval_starts("val")
    assert window_offsets(val, xs) == starts.tolist() and starts[-1] == N_VAL - SEQ - 1
    assert all(int(b[0].min()) >= VOCAB // 2 for b in first)


def test_batches_are_deterministic_per_seed(corpus: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, _, _ = corpus
    task = load_task(cfg(folder))
    a, b, c = (task.batch("train", 8, gen(s)) for s in (3, 3, 4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    clear_task_cache()  # a fresh load (a new worker) draws the same batch
    assert torch.equal(load_task(cfg(folder)).batch("train", 8, gen(3))[0], a[0])
    moved = task.to("cpu")
    assert moved.device == torch.device("cpu") and torch.equal(moved.batch("train", 8, gen(3))[0], a[0])


def test_uint32_files(data_dir: Path) -> None:
    vocab = 100_000  # beyond uint16
    rng = np.random.default_rng(1)
    train = rng.integers(0, vocab, 5000).astype(np.uint32)
    val = rng.integers(0, vocab, 500).astype(np.uint32)
    folder = write_tokens(data_dir / "big_vocab", train, val)
    task = load_task(cfg(folder, vocab_size=vocab, dtype="uint32"))
    assert task.info.n_train == 5000 and task.info.n_outputs == vocab
    x, y = task.batch("train", 4, gen(0))
    for row, offset in enumerate(window_offsets(train, x)):
        assert torch.equal(y[row], torch.from_numpy(train[offset + 1 : offset + SEQ + 1].astype(np.int64)))
    assert int(train.max()) >= 2**16  # ids a uint16 file could not hold


def test_config_fields() -> None:
    assert cfg("x").dtype == "uint16"  # the default
    assert "vocab_size" not in TaskConfig(name="digits").model_dump()  # other tasks' dumps unchanged
    with pytest.raises(ValidationError, match="needs vocab_size"):
        TaskConfig(name="tokens", path="x")
    with pytest.raises(ValidationError, match="needs a path"):
        TaskConfig(name="tokens", vocab_size=10)
    with pytest.raises(ValidationError, match="only used by task 'tokens'"):
        TaskConfig(name="bytes", vocab_size=10)
    with pytest.raises(ValidationError):
        cfg("x", dtype="int8")


# -- bad input ------------------------------------------------------------------------------------


def refused(config: TaskConfig, field: str) -> str:
    clear_task_cache()
    with pytest.raises(FieldError) as exc:
        load_task(config)
    assert exc.value.field == field, str(exc.value)
    return str(exc.value)


def test_bad_files_are_refused_with_the_field_and_fix(data_dir: Path) -> None:
    ok = np.arange(200, dtype=np.uint16)
    odd = write_tokens(data_dir / "odd", ok, ok)
    (odd / "val.bin").write_bytes(ok.tobytes() + b"\x01")
    msg = refused(cfg(odd), "task.dtype")
    assert "val.bin" in msg and "201" not in msg and "not a whole number of uint16" in msg

    short = write_tokens(data_dir / "short", ok, ok[: SEQ])  # one id short of a window
    msg = refused(cfg(short), "task.seq_len")
    assert "val.bin" in msg and f"at least {SEQ + 1}" in msg and "smaller task.seq_len" in msg

    bad_ids = ok.copy()
    bad_ids[[7, 150]] = [1200, 1500]
    big = write_tokens(data_dir / "big_ids", bad_ids, ok)
    msg = refused(cfg(big), "task.vocab_size")
    assert "1200 at position 7" in msg and "1500 at position 150" in msg
    assert "train.bin" in msg and "at least 1501" in msg

    half = data_dir / "half"
    half.mkdir()
    ok.tofile(half / "train.bin")
    msg = refused(cfg(half), "task.path")
    assert "lacks val.bin" in msg
    assert "lacks train.bin and val.bin" in refused(cfg(data_dir), "task.path")
    assert "is a file, not a folder" in refused(cfg(half / "train.bin"), "task.path")
    assert "does not exist" in refused(cfg(data_dir / "nope"), "task.path")


def test_ids_the_load_sample_missed_are_caught_in_a_batch(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_module, "ID_CHECK_BLOCK", 8)
    monkeypatch.setattr(tokens_module, "ID_CHECK_BLOCKS", 1)  # the load checks ids 0..7 only
    train = np.full(1000, 2000, dtype=np.uint16)
    train[:8] = 1
    folder = write_tokens(data_dir / "late_bad", train, np.arange(100, dtype=np.uint16))
    task = load_task(cfg(folder))
    with pytest.raises(FieldError, match="reach task.vocab_size 1000: 2000 at position") as exc:
        task.batch("train", 2, gen(0))
    assert exc.value.field == "task.vocab_size"


def test_paths_outside_the_allowed_folders_are_refused(data_dir: Path, tmp_path: Path) -> None:
    ok = np.arange(200, dtype=np.uint16)
    outside = write_tokens(tmp_path / "elsewhere", ok, ok)
    msg = refused(cfg(outside), "task.path")
    assert "outside the allowed data folders" in msg and "MUTRANSFER_DATA_DIRS" in msg
    assert "outside" in refused(cfg(data_dir / ".." / "elsewhere"), "task.path")
    # A symlinked folder or file inside the allowed folder that leads out of it.
    os.symlink(outside, data_dir / "link_dir")
    assert "outside" in refused(cfg(data_dir / "link_dir"), "task.path")
    inside = data_dir / "link_file"
    inside.mkdir()
    ok.tofile(inside / "val.bin")
    os.symlink(outside / "train.bin", inside / "train.bin")
    assert "outside" in refused(cfg(inside), "task.path")
    # "file" tasks follow the same rule now.
    text = tmp_path / "corpus.txt"
    text.write_bytes(b"x" * 5000)
    assert "MUTRANSFER_DATA_DIRS" in refused(TaskConfig(name="file", path=str(text)), "task.path")


def test_spec_validation_puts_errors_at_the_field(corpus: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, _, _ = corpus
    base = {"name": "t", "model": {"kind": "gpt", "depth": 1, "head_dim": 8}, "widths": [16, 32],
            "base_width": 16, "lrs": [1e-3], "steps": 2, "log_every": 1, "batch_size": 2,
            "device": "cpu"}
    spec = parse_spec({**base, "task": cfg(folder).model_dump()})
    assert spec.task.vocab_size == VOCAB
    with pytest.raises(UserError, match=r"task\.vocab_size: .*reach task.vocab_size 10"):
        parse_spec({**base, "task": cfg(folder, vocab_size=10).model_dump()})


def test_default_allowed_folder_is_datasets_beside_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MUTRANSFER_DATA_DIRS", raising=False)
    monkeypatch.setenv("MUTRANSFER_DB_PATH", str(tmp_path / "store" / "s.duckdb"))
    assert allowed_data_dirs() == [(tmp_path / "store" / "datasets").resolve()]
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    assert allowed_data_dirs() == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]


def test_the_browser_lists_what_the_allowed_folders_hold(
    corpus: tuple[Path, np.ndarray, np.ndarray], data_dir: Path, tmp_path: Path
) -> None:
    (data_dir / "notes.txt").write_text("hello")
    (data_dir / "readme.md").write_text("skip")
    (data_dir / "nested").mkdir()
    np.savez(data_dir / "nested" / "xy.npz", x=np.zeros((30, 2)), y=np.arange(30) % 2)
    write_tokens(tmp_path / "secret", np.arange(50, dtype=np.uint16), np.arange(50, dtype=np.uint16))
    os.symlink(tmp_path / "secret", data_dir / "escape")
    found = {(e.name, e.kind) for e in list_data()}
    assert found == {("corpus", "tokens"), ("notes.txt", "text"), ("nested/xy.npz", "npz")}
    service = Service(tmp_path / "store" / "s.duckdb")
    assert [e.path for e in service.data_files("tokens")] == [str(data_dir / "corpus")]
    assert service.data_dirs() == [data_dir.resolve()]


# -- from the command line ------------------------------------------------------------------------


def cli(tmp_path: Path, spec: dict[str, Any], data_dirs: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUTRANSFER_DATA_DIRS": str(data_dirs)}
    return subprocess.run(
        [sys.executable, "-m", "experiments", "sweep", "run", str(path), "--db",
         str(tmp_path / "store.duckdb"), "--workers", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def gpt_spec(task: dict[str, Any]) -> dict[str, Any]:
    return {"name": "tokens-gpt", "model": {"kind": "gpt", "depth": 1, "head_dim": 8},
            "task": task, "widths": [16, 32], "base_width": 16, "parametrizations": ["mup"],
            "lrs": [2.0**-8, 2.0**-6], "seeds": [0], "steps": 6, "batch_size": 4,
            "log_every": 3, "device": "cpu"}


def test_cli_gpt_sweep_on_tokens(corpus: tuple[Path, np.ndarray, np.ndarray], data_dir: Path,
                                 tmp_path: Path) -> None:
    folder, _, _ = corpus
    r = cli(tmp_path, gpt_spec(cfg(folder).model_dump()), data_dir)
    assert r.returncode == 0, r.stderr
    from experiments.store import Store

    store = Store(tmp_path / "store.duckdb")
    (sweep,) = store.list_sweeps()
    runs = store.runs_frame(sweep.id)
    assert len(runs) == 4 and set(runs["state"]) <= {"done", "diverged"}, runs[["state", "error"]]
    done = runs[runs["state"] == "done"]
    assert len(done) and (done["final_val_loss"] > 0).all() and (done["final_train_loss"] > 0).all()


def test_cli_refuses_data_outside_the_allowed_folders(
    corpus: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    folder, _, _ = corpus
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    r = cli(tmp_path, gpt_spec(cfg(folder).model_dump()), elsewhere)
    assert r.returncode == 2, r.stderr
    assert "task.path" in r.stderr and "MUTRANSFER_DATA_DIRS" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "store.duckdb").exists()
