"""Where each task's data comes from. Every builder is offline and deterministic.

- digits: scikit-learn's bundled copy of the UCI handwritten digits (1797 8x8 images, 10
  classes); it ships inside the scikit-learn package, so no download.
- bytes: Python standard-library sources, found on every machine that runs us. The file list is
  fixed, but the files' content can differ slightly between CPython versions, so byte-LM losses
  are comparable only between runs on the same Python version.
- synthetic / synthetic-lm: drawn from numpy's PCG64 generator with a fixed seed (bit-identical on
  every platform).
- file: a user's .txt (byte LM) or .npz (arrays x, y: classification), validated with messages
  that name the path and the fix; only from the allowed data folders (`datadirs`).
- tokens: a folder of pre-tokenized train.bin / val.bin, read through numpy.memmap (`tokens`).
"""

from __future__ import annotations

import os
import stat
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import torch

from experiments.errors import UserError
from experiments.tasks.base import ClassificationTask, LMTask, TaskInfo
from experiments.tasks.datadirs import check_allowed

DATA_SEED = 0  # every split and synthetic draw uses this seed: one dataset per task name
VAL_FRACTION = 0.2  # classification: share of each class held out
LM_VAL_FRACTION = 0.1  # LM: the last 10% of the stream is val
BYTE_VOCAB = 256

# Present in CPython 3.11 through 3.14, plain Python, several hundred KB together. Sorted, so the
# stream does not depend on directory listing order.
STDLIB_FILES: tuple[str, ...] = tuple(
    sorted(
        [
            "abc.py",
            "base64.py",
            "bisect.py",
            "calendar.py",
            "colorsys.py",
            "contextlib.py",
            "copy.py",
            "csv.py",
            "fnmatch.py",
            "fractions.py",
            "functools.py",
            "graphlib.py",
            "heapq.py",
            "json/decoder.py",
            "json/encoder.py",
            "json/scanner.py",
            "numbers.py",
            "queue.py",
            "shlex.py",
            "string.py",
            "textwrap.py",
        ]
    )
)

SYNTH_SHAPE = (1, 8, 8)
SYNTH_CLASSES = 10
SYNTH_TRAIN, SYNTH_VAL = 2048, 512
SYNTH_TEACHER_WIDTH = 64

MARKOV_VOCAB = 64
MARKOV_FANOUT = 4  # successors per state: next-token entropy <= log(4), far below log(64)
MARKOV_CHAINS = 64  # chains simulated in parallel, then concatenated
MARKOV_TRAIN, MARKOV_VAL = 65536, 8192

NPZ_MIN_ROWS = 20  # at least a few val examples after a 20% split


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): a fixed permutation, then `val_fraction` of each class to val.

    Every class keeps at least one training example. Both index arrays are sorted, so the split
    does not depend on anything but the labels and the seed.
    """
    order = np.random.default_rng(seed).permutation(labels.shape[0])
    val: list[np.ndarray] = []
    for c in np.unique(labels):
        members = order[labels[order] == c]  # class c, in permutation order
        n_val = min(int(round(val_fraction * members.size)), members.size - 1)
        val.append(members[:n_val])
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(labels.shape[0]), val_idx)
    return train_idx, val_idx


def _classification(
    name: str, x: np.ndarray, y: np.ndarray, n_classes: int, standardise: bool
) -> ClassificationTask:
    """Split (x, y) and wrap it; x: (N, C, H, W) float, y: (N,) int."""
    train_idx, val_idx = stratified_split(y, VAL_FRACTION, DATA_SEED)
    x = x.astype(np.float32)
    if standardise:
        # One scalar mean/std from the training split only (no val leakage); a per-pixel std
        # would divide by ~0 on border pixels that are almost always blank.
        mean, std = float(x[train_idx].mean()), float(x[train_idx].std())
        x = (x - mean) / max(std, 1e-8)
    info = TaskInfo(
        name=name,
        kind="classification",
        input_shape=tuple(int(s) for s in x.shape[1:]),
        n_outputs=n_classes,
        seq_len=None,
        n_train=int(train_idx.size),
        n_val=int(val_idx.size),
    )
    xt, yt = torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx].astype(np.int64))
    xv, yv = torch.from_numpy(x[val_idx]), torch.from_numpy(y[val_idx].astype(np.int64))
    return ClassificationTask(info, xt.contiguous(), yt, xv.contiguous(), yv)


def _lm(name: str, stream: np.ndarray, vocab: int, seq_len: int, val_fraction: float) -> LMTask:
    """Split a uint8 token stream: the last `val_fraction` is val."""
    n_val = int(stream.size * val_fraction)
    train, val = stream[: stream.size - n_val], stream[stream.size - n_val :]
    info = TaskInfo(
        name=name,
        kind="lm",
        input_shape=(seq_len,),
        n_outputs=vocab,
        seq_len=seq_len,
        n_train=int(train.size),
        n_val=int(val.size),
    )
    return LMTask(info, torch.from_numpy(train.copy()), torch.from_numpy(val.copy()))


def load_digits_task() -> ClassificationTask:
    """scikit-learn's digits: pixels 0..16 scaled to [0, 1], then standardised; (1, 8, 8)."""
    from sklearn.datasets import load_digits  # heavy import, only when this task is used

    bunch = load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).reshape(-1, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    return _classification("digits", x, y, 10, standardise=True)


def stdlib_paths() -> list[Path]:
    """Absolute paths of `STDLIB_FILES` in this interpreter's standard library."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return [root / rel for rel in STDLIB_FILES]


def load_bytes_task(seq_len: int) -> LMTask:
    """Byte-level LM over the concatenated `STDLIB_FILES` (vocab 256; last 10% is val)."""
    chunks = []
    for path in stdlib_paths():
        if not path.is_file():
            raise UserError(
                f"the 'bytes' task reads {path}, which this Python install lacks: use task "
                "'synthetic-lm' or a 'file' task with your own .txt"
            )
        chunks.append(path.read_bytes())
    stream = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    return _lm("bytes", stream, BYTE_VOCAB, seq_len, LM_VAL_FRACTION)


def load_synthetic_task() -> ClassificationTask:
    """Gaussian (1, 8, 8) inputs labelled by a fixed random 2-layer tanh teacher (10 classes).

    The teacher's logits are centred over the dataset before the argmax, so no class dominates.
    """
    rng = np.random.default_rng(DATA_SEED)
    n = SYNTH_TRAIN + SYNTH_VAL
    d = int(np.prod(SYNTH_SHAPE))
    x = rng.standard_normal((n, d))  # (N, 64)
    w1 = rng.standard_normal((d, SYNTH_TEACHER_WIDTH)) / np.sqrt(d)
    w2 = rng.standard_normal((SYNTH_TEACHER_WIDTH, SYNTH_CLASSES)) / np.sqrt(SYNTH_TEACHER_WIDTH)
    logits = np.tanh(x @ w1) @ w2  # (N, 10)
    y = np.argmax(logits - logits.mean(axis=0), axis=1)
    x_img = x.reshape(n, *SYNTH_SHAPE)
    # A fixed tail split (not stratified): the data are i.i.d., so any split is representative.
    xt, yt = x_img[:SYNTH_TRAIN], y[:SYNTH_TRAIN]
    xv, yv = x_img[SYNTH_TRAIN:], y[SYNTH_TRAIN:]
    info = TaskInfo(
        name="synthetic",
        kind="classification",
        input_shape=tuple(int(s) for s in xt.shape[1:]),
        n_outputs=SYNTH_CLASSES,
        seq_len=None,
        n_train=int(xt.shape[0]),
        n_val=int(xv.shape[0]),
    )
    return ClassificationTask(
        info,
        torch.from_numpy(xt.astype(np.float32)),
        torch.from_numpy(yt.astype(np.int64)),
        torch.from_numpy(xv.astype(np.float32)),
        torch.from_numpy(yv.astype(np.int64)),
    )


def markov_transitions(seed: int = DATA_SEED) -> np.ndarray:
    """The chain's (V, V) transition matrix: each row has `MARKOV_FANOUT` non-zeros."""
    rng = np.random.default_rng(seed)
    probs = np.zeros((MARKOV_VOCAB, MARKOV_VOCAB))
    for s in range(MARKOV_VOCAB):
        succ = rng.choice(MARKOV_VOCAB, size=MARKOV_FANOUT, replace=False)
        probs[s, succ] = rng.dirichlet(np.ones(MARKOV_FANOUT))
    return probs


def load_synthetic_lm_task(seq_len: int) -> LMTask:
    """Tokens of a fixed random sparse Markov chain over `MARKOV_VOCAB` states.

    `MARKOV_CHAINS` chains run in parallel (vectorised) and are concatenated; the last
    `MARKOV_VAL` tokens are val.
    """
    rng = np.random.default_rng(DATA_SEED + 1)
    cum = np.cumsum(markov_transitions(DATA_SEED), axis=1)  # (V, V)
    cum[:, -1] = 1.0  # guard against round-off leaving u above the last cumulative value
    total = MARKOV_TRAIN + MARKOV_VAL
    steps = -(-total // MARKOV_CHAINS)  # ceil
    states = rng.integers(0, MARKOV_VOCAB, size=MARKOV_CHAINS)  # (K,)
    u = rng.random((steps, MARKOV_CHAINS))  # (S, K)
    out = np.empty((MARKOV_CHAINS, steps), dtype=np.uint8)
    for t in range(steps):
        out[:, t] = states
        # Inverse-CDF sampling of each chain's next state from its current row.
        states = (u[t][:, None] > cum[states]).sum(axis=1)
    stream = out.reshape(-1)[:total]
    return _lm("synthetic-lm", stream, MARKOV_VOCAB, seq_len, MARKOV_VAL / total)


def resolve_user_file(path: str) -> Path:
    """Resolve a user's task file; refuse anything that is not an existing regular file.

    Raises:
        FieldError: the path is outside the allowed data folders (`datadirs.check_allowed`).
        UserError: the path is missing, not a regular file, or has the wrong extension.
    """
    resolved = check_allowed(path)  # before any stat: say nothing about files outside
    try:
        mode = os.stat(resolved).st_mode
    except FileNotFoundError:
        raise UserError(
            f"task file '{path}' does not exist (resolved to {resolved}): give the path of an "
            "existing .txt (byte LM) or .npz (classification) file"
        ) from None
    except OSError as exc:
        raise UserError(
            f"task file '{path}' cannot be read ({exc}): check its permissions"
        ) from None
    if not stat.S_ISREG(mode):
        raise UserError(
            f"task file '{path}' is not a regular file (a directory or device?): give the path "
            "of a .txt or .npz file"
        )
    if resolved.suffix.lower() not in (".txt", ".npz"):
        raise UserError(
            f"task file '{path}' has extension '{resolved.suffix}': use .txt for a byte-level "
            "LM or .npz (arrays x and y) for classification"
        )
    return resolved


def load_text_file_task(path: Path, seq_len: int) -> LMTask:
    """A .txt file as a byte-level LM (vocab 256; last 10% is val)."""
    data = path.read_bytes()
    need = int(np.ceil((seq_len + 1) / LM_VAL_FRACTION))
    if len(data) < need:
        raise UserError(
            f"task file '{path}' has {len(data)} bytes; with seq_len {seq_len} a byte LM needs at "
            f"least {need} (so the 10% val split holds one window): use a longer text or a "
            "smaller task.seq_len"
        )
    stream = np.frombuffer(data, dtype=np.uint8)
    return _lm("file", stream, BYTE_VOCAB, seq_len, LM_VAL_FRACTION)


def load_npz_file_task(path: Path) -> ClassificationTask:
    """A .npz with `x` (N, D), (N, H, W) or (N, C, H, W) numbers and `y` (N,) class ids.

    (N, D) becomes (N, 1, 1, D) and (N, H, W) becomes (N, 1, H, W). The data are used as given
    (no standardisation: the user chose their features' scale). Classes are 0..max(y).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("x", "y") if k not in npz.files]
            if missing:
                raise UserError(
                    f"task file '{path}' lacks array(s) {missing} (it has {sorted(npz.files)}): "
                    "save it with np.savez(path, x=inputs, y=labels)"
                )
            x, y = np.asarray(npz["x"]), np.asarray(npz["y"])
    except UserError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"task file '{path}' is not a readable .npz ({exc}): save it with "
            "np.savez(path, x=inputs, y=labels) (object arrays are refused)"
        ) from None
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise UserError(f"task file '{path}': x has dtype {x.dtype}; store real numbers")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise UserError(
            f"task file '{path}': y must be a 1-D integer array of class ids, got shape "
            f"{y.shape} dtype {y.dtype}: store labels as y.astype(int)"
        )
    if x.ndim == 2:
        x = x[:, None, None, :]
    elif x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim != 4:
        raise UserError(
            f"task file '{path}': x has shape {x.shape}; use (N, D), (N, H, W) or (N, C, H, W)"
        )
    if x.shape[0] != y.shape[0]:
        raise UserError(
            f"task file '{path}': x has {x.shape[0]} rows but y has {y.shape[0]}: one label per row"
        )
    if x.shape[0] < NPZ_MIN_ROWS:
        raise UserError(
            f"task file '{path}' has {x.shape[0]} rows; at least {NPZ_MIN_ROWS} are needed for a "
            "train/val split: add more examples"
        )
    if y.min() < 0:
        raise UserError(f"task file '{path}': y has negative labels; use class ids 0..K-1")
    n_classes = int(y.max()) + 1
    if n_classes < 2:
        raise UserError(f"task file '{path}': y has a single class; classification needs >= 2")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"task file '{path}': x contains NaN or inf; clean the data first")
    return _classification("file", x, y.astype(np.int64), n_classes, standardise=False)
