"""experiments.tasks: deterministic splits and batches, shapes, real data, file validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from experiments.errors import UserError
from experiments.tasks import (
    LM_EVAL_WINDOWS,
    STDLIB_FILES,
    ClassificationTask,
    LMTask,
    TaskConfig,
    clear_task_cache,
    load_task,
    task_info,
)
from experiments.tasks.sources import markov_transitions, stdlib_paths, stratified_split

torch.set_num_threads(1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True)
def _allow_tmp_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # User files are read only from the allowed data folders (test_tokens_task tests the rule).
    monkeypatch.setenv("MUTRANSFER_DATA_DIRS", str(tmp_path))


# -- config -------------------------------------------------------------------------------------


def test_config_requires_path_only_for_file_tasks() -> None:
    with pytest.raises(ValidationError, match="needs a path"):
        TaskConfig(name="file")
    with pytest.raises(ValidationError, match="only used by task 'file'"):
        TaskConfig(name="digits", path="x.txt")
    with pytest.raises(ValidationError):
        TaskConfig(name="mnist")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        TaskConfig(name="digits", seqlen=3)  # type: ignore[call-arg]  # typo refused


# -- digits ---------------------------------------------------------------------------------------


def test_digits_is_sklearn_digits_standardised_and_stratified() -> None:
    from sklearn.datasets import load_digits

    task = load_task(TaskConfig(name="digits"))
    assert isinstance(task, ClassificationTask)
    info = task.info
    assert (info.kind, info.input_shape, info.n_outputs, info.seq_len) == (
        "classification",
        (1, 8, 8),
        10,
        None,
    )
    assert info.n_train + info.n_val == 1797
    assert 340 <= info.n_val <= 380

    bunch = load_digits()
    raw = bunch.data.reshape(-1, 1, 8, 8) / 16.0
    train_idx, val_idx = stratified_split(bunch.target, 0.2, seed=0)
    assert np.intersect1d(train_idx, val_idx).size == 0
    xt, yt = task.arrays("train")
    xv, yv = task.arrays("val")
    # Labels are sklearn's, in the split's order.
    np.testing.assert_array_equal(yt.numpy(), bunch.target[train_idx])
    np.testing.assert_array_equal(yv.numpy(), bunch.target[val_idx])
    # Pixels are sklearn's up to one affine map fitted on train only.
    mean, std = raw[train_idx].mean(), raw[train_idx].std()
    np.testing.assert_allclose(xt.numpy(), (raw[train_idx] - mean) / std, atol=1e-5)
    np.testing.assert_allclose(xv.numpy(), (raw[val_idx] - mean) / std, atol=1e-5)
    assert abs(float(xt.mean())) < 1e-4 and abs(float(xt.std()) - 1.0) < 1e-3
    # Stratified: each class sends about 20% of its examples to val.
    for c in range(10):
        share = float((yv == c).sum()) / float((bunch.target == c).sum())
        assert 0.17 < share < 0.23, (c, share)


def test_classification_batches_are_deterministic_per_generator() -> None:
    task = load_task(TaskConfig(name="synthetic"))
    x1, y1 = task.batch("train", 16, _gen(3))
    x2, y2 = task.batch("train", 16, _gen(3))
    x3, _ = task.batch("train", 16, _gen(4))
    assert isinstance(task, ClassificationTask)
    assert x1.shape == (16, 1, 8, 8) and x1.dtype == torch.float32
    assert y1.shape == (16,) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, x3)
    # A batch is made of real training rows.
    xt, _ = task.arrays("train")
    assert all(bool((xt == row).all(dim=(1, 2, 3)).any()) for row in x1)


def test_classification_eval_batches_cover_val_in_order() -> None:
    task = load_task(TaskConfig(name="synthetic"))
    assert isinstance(task, ClassificationTask)
    xv, yv = task.arrays("val")
    batches = list(task.eval_batches("val", 100))
    assert [b[0].shape[0] for b in batches] == [100] * 5 + [12]
    assert torch.equal(torch.cat([b[0] for b in batches]), xv)
    assert torch.equal(torch.cat([b[1] for b in batches]), yv)


def test_synthetic_is_reproducible_and_uses_many_classes() -> None:
    a = load_task(TaskConfig(name="synthetic"))
    clear_task_cache()
    b = load_task(TaskConfig(name="synthetic"))
    assert a is not b
    assert isinstance(a, ClassificationTask) and isinstance(b, ClassificationTask)
    for split in ("train", "val"):
        assert torch.equal(a.arrays(split)[0], b.arrays(split)[0])
        assert torch.equal(a.arrays(split)[1], b.arrays(split)[1])
    assert (a.info.n_train, a.info.n_val) == (2048, 512)
    counts = torch.bincount(a.arrays("train")[1], minlength=10)
    assert int((counts > 50).sum()) == 10  # the centred teacher uses every class


def test_load_task_is_cached_and_task_info_matches() -> None:
    cfg = TaskConfig(name="synthetic-lm", seq_len=8)
    assert load_task(cfg) is load_task(TaskConfig(name="synthetic-lm", seq_len=8))
    assert load_task(cfg) is not load_task(TaskConfig(name="synthetic-lm", seq_len=9))
    assert task_info(cfg) == load_task(cfg).info


def test_to_device_copies_and_keeps_info() -> None:
    task = load_task(TaskConfig(name="synthetic"))
    moved = task.to("meta")
    assert moved is not task and moved.info == task.info
    assert moved.device.type == "meta" and task.device.type == "cpu"
    # Indices drawn by a CPU generator index data on another device.
    x, y = moved.batch("train", 4, _gen(0))
    assert x.device.type == "meta" and x.shape == (4, 1, 8, 8)


# -- language modelling ------------------------------------------------------------------------


def test_bytes_task_is_the_stdlib_files_concatenated() -> None:
    task = load_task(TaskConfig(name="bytes", seq_len=32))
    assert isinstance(task, LMTask)
    assert len(STDLIB_FILES) >= 20 and list(STDLIB_FILES) == sorted(STDLIB_FILES)
    expected = b"".join(p.read_bytes() for p in stdlib_paths())
    stream = torch.cat([task.tokens("train"), task.tokens("val")])
    assert stream.dtype == torch.uint8
    assert bytes(stream.numpy().tobytes()) == expected
    assert task.info.n_val == len(expected) // 10
    assert (task.info.kind, task.info.n_outputs, task.info.input_shape) == ("lm", 256, (32,))


def test_lm_batches_are_shifted_windows_of_the_stream() -> None:
    task = load_task(TaskConfig(name="bytes", seq_len=32))
    assert isinstance(task, LMTask)
    x, y = task.batch("train", 8, _gen(0))
    x2, y2 = task.batch("train", 8, _gen(0))
    assert x.shape == y.shape == (8, 32) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one
    windows = task.tokens("train").unfold(0, 33, 1)  # (n_starts, T + 1), a view
    for row_x, row_y in zip(x[:2], y[:2], strict=True):
        window = torch.cat([row_x, row_y[-1:]]).to(torch.uint8)
        assert bool((windows == window).all(dim=1).any())


def test_lm_eval_batches_are_fixed_windows() -> None:
    task = load_task(TaskConfig(name="synthetic-lm", seq_len=16))
    assert isinstance(task, LMTask)
    first = list(task.eval_batches("val", 10))
    again = list(task.eval_batches("val", 10))
    assert [b[0].shape for b in first] == [(10, 16)] * 3 + [(2, 16)]
    assert sum(b[0].shape[0] for b in first) == LM_EVAL_WINDOWS
    for (xa, ya), (xb, yb) in zip(first, again, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    starts = task.eval_starts("val")
    assert int(starts[0]) == 0 and int(starts[-1]) == task.info.n_val - 17
    val = task.tokens("val").long()
    assert torch.equal(first[0][0][1], val[int(starts[1]) : int(starts[1]) + 16])


def test_synthetic_lm_follows_its_sparse_markov_chain() -> None:
    task = load_task(TaskConfig(name="synthetic-lm", seq_len=16))
    assert isinstance(task, LMTask)
    assert task.info.n_outputs == 64
    probs = markov_transitions()
    assert ((probs > 0).sum(axis=1) == 4).all()
    tok = task.tokens("train").long().numpy()
    assert tok.max() < 64
    # Chains are concatenated, so a few bigrams at chain boundaries are not transitions.
    impossible = (probs[tok[:-1], tok[1:]] == 0).sum()
    assert impossible <= 64
    # The chain's entropy is far below uniform: there is something to learn.
    nll = -np.mean(np.log(probs[tok[:-1], tok[1:]] + 1e-12))
    assert nll < 0.5 * math.log(64)


def test_loss_flattens_sequence_logits() -> None:
    task = load_task(TaskConfig(name="synthetic-lm", seq_len=8))
    g = _gen(0)
    logits = torch.randn(2, 8, 64, generator=g)
    targets = torch.randint(64, (2, 8), generator=g)
    manual = -torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).mean()
    torch.testing.assert_close(task.loss(logits, targets), manual)
    uniform = task.loss(torch.zeros(2, 8, 64), targets)
    assert abs(float(uniform) - math.log(64)) < 1e-6
    cls_logits = torch.randn(5, 10, generator=g)
    cls_y = torch.randint(10, (5,), generator=g)
    torch.testing.assert_close(task.loss(cls_logits, cls_y), F.cross_entropy(cls_logits, cls_y))


# -- user files --------------------------------------------------------------------------------


def test_text_file_task(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(bytes(range(256)) * 8)  # 2048 bytes
    task = load_task(TaskConfig(name="file", path=str(path), seq_len=16))
    assert isinstance(task, LMTask)
    assert (task.info.kind, task.info.n_outputs, task.info.n_val) == ("lm", 256, 204)
    x, y = task.batch("train", 3, _gen(0))
    assert x.shape == (3, 16) and torch.equal((x[:, 1:]), y[:, :-1])
    # Editing the file invalidates the cache.
    path.write_bytes(bytes(range(256)) * 12)
    assert task_info(TaskConfig(name="file", path=str(path), seq_len=16)).n_train == 2765


def test_npz_file_task_shapes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flat = tmp_path / "flat.npz"
    np.savez(flat, x=rng.standard_normal((50, 7)), y=np.arange(50) % 3)
    task = load_task(TaskConfig(name="file", path=str(flat)))
    assert isinstance(task, ClassificationTask)
    assert (task.info.input_shape, task.info.n_outputs, task.info.n_train + task.info.n_val) == (
        (1, 1, 7),
        3,
        50,
    )
    img = tmp_path / "img.npz"
    np.savez(img, x=rng.standard_normal((40, 3, 4, 4)).astype(np.float32), y=np.arange(40) % 2)
    info = task_info(TaskConfig(name="file", path=str(img)))
    assert (info.input_shape, info.n_outputs) == ((3, 4, 4), 2)
    x, y = load_task(TaskConfig(name="file", path=str(img))).batch("val", 5, _gen(0))
    assert x.shape == (5, 3, 4, 4) and y.dtype == torch.int64


def _file_error(path: Path, seq_len: int = 64) -> str:
    with pytest.raises(UserError) as exc:
        load_task(TaskConfig(name="file", path=str(path), seq_len=seq_len))
    message = str(exc.value)
    assert path.name in message  # every message names the file
    return message


def test_file_task_validation_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    assert "does not exist" in _file_error(tmp_path / "missing.txt")

    folder = tmp_path / "folder.txt"
    folder.mkdir()
    assert "not a regular file" in _file_error(folder)

    csv = tmp_path / "data.csv"
    csv.write_text("1,2,3\n")
    assert ".txt" in _file_error(csv) and ".npz" in _file_error(csv)

    short = tmp_path / "short.txt"
    short.write_bytes(b"hello world")
    assert "smaller task.seq_len" in _file_error(short)

    no_y = tmp_path / "no_y.npz"
    np.savez(no_y, x=rng.standard_normal((30, 4)))
    assert "['y']" in _file_error(no_y)

    few = tmp_path / "few.npz"
    np.savez(few, x=rng.standard_normal((5, 4)), y=np.arange(5) % 2)
    assert "rows" in _file_error(few)

    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=rng.standard_normal((30, 4)), y=np.arange(29) % 2)
    assert "one label per row" in _file_error(mismatch)

    float_y = tmp_path / "float_y.npz"
    np.savez(float_y, x=rng.standard_normal((30, 4)), y=np.zeros(30))
    assert "integer" in _file_error(float_y)

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"definitely not a zip archive")
    assert "not a readable .npz" in _file_error(garbage)
