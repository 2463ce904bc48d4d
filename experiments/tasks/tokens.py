"""Pre-tokenized LM data: a folder holding train.bin and val.bin, read through numpy.memmap.

The common layout (nanoGPT's prepare scripts write it): each file is a flat array of token ids
with no header, uint16 (vocabularies up to 65,536) or uint32. Nothing is read whole, and no
mapping outlives the read that made it:

1. At load, each file must be a whole number of ids and hold at least one window (seq_len + 1
   ids); a bounded sample of its ids (the whole file when it has at most `ID_CHECK_BLOCKS` x
   `ID_CHECK_BLOCK` ids, else that many evenly spaced blocks) is checked against vocab_size,
   read with plain reads into a small buffer, so the check maps nothing into memory.
2. A training batch draws B window starts from the run's torch generator (uniform over
   [0, n - seq_len)), reads each window of seq_len + 1 ids through its own small memmap (just
   the window's pages, unmapped right after the copy), checks them against vocab_size (ids the
   sample missed are caught here, before they reach an embedding), and copies them to the
   task's device. Why a mapping per window and not one per file: pages a process touches in a
   mapping count in its RSS until unmapped, and a kernel with large page-cache folios maps the
   whole folio (up to 2 MiB) around each touched window; one long-lived mapping of a 1 GiB file
   grew a worker's RSS by ~0.9 MiB per window read (430 MiB over 480 windows) on our
   development VM (Linux 6.18).
   A window's own mapping costs ~40 us (bench/bench_tokens_memory.py measures the memory).
3. Evaluation uses `LM_EVAL_WINDOWS` windows at fixed, evenly spaced offsets of the split's
   file, like every LM task, so val losses of different runs are comparable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from experiments.errors import FieldError
from experiments.tasks.base import LM_EVAL_WINDOWS, LMTask, Split, _check_batch_size, _check_split
from experiments.tasks.config import TaskInfo
from experiments.tasks.datadirs import TOKEN_FILES, check_allowed

ID_CHECK_BLOCK = 65536  # ids per block read by the load-time vocabulary check
ID_CHECK_BLOCKS = 64  # blocks per file: at most 4 Mi ids (8 MiB of uint16) read at load
SPLIT_FILES: dict[str, str] = {"train": TOKEN_FILES[0], "val": TOKEN_FILES[1]}


@dataclass(frozen=True)
class TokenFile:
    """One split's ids: a checked .bin file, mapped only while a read needs it.

    Attributes:
        path: the .bin file.
        dtype: how it stores ids (uint16 or uint32).
        n_ids: how many ids it holds.
    """

    path: Path
    dtype: np.dtype
    n_ids: int

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        """(len(starts), length) ids: row i is ids[starts[i] : starts[i] + length].

        Each row is copied out of its own read-only memmap of just those ids, so no page stays
        mapped after the call (see step 2 of the module docstring).

        Raises:
            FieldError: (task.path) the file is gone (its folder moved or deleted mid-run).
        """
        out = np.empty((starts.size, length), dtype=self.dtype)
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below; its error is reworded
        except OSError as exc:
            # The folder was moved or deleted while a run trained on it.
            raise FieldError(
                f"tokens file {self.path} is no longer readable ({exc.strerror}): its folder was "
                "moved or deleted mid-run; put it back, or set task.path to where it is now",
                "task.path",
            ) from None
        with f:
            for row, start in enumerate(starts.tolist()):
                out[row] = np.memmap(f, dtype=self.dtype, mode="r",
                                     offset=start * self.dtype.itemsize, shape=(length,))
        return out

    def view(self) -> np.ndarray:
        """The whole file as one copy-on-write memmap (pages touched stay mapped while the
        view lives: for tests and inspection, not for the training loop)."""
        return np.memmap(self.path, dtype=self.dtype, mode="c", shape=(self.n_ids,))


def resolve_token_dir(path: str) -> Path:
    """The resolved tokens folder `path`, checked: allowed, a folder, with both .bin files.

    Raises:
        FieldError: (field "task.path") outside the allowed data folders, missing, not a
            folder, or without a regular train.bin / val.bin inside the allowed folders.
    """
    folder = check_allowed(path)  # before any stat: say nothing about paths outside
    if not folder.exists():
        raise FieldError(
            f"tokens folder '{path}' does not exist (resolved to {folder}): set task.path to a "
            "folder holding train.bin and val.bin",
            "task.path",
        )
    if not folder.is_dir():
        raise FieldError(
            f"task path '{path}' is a file, not a folder: set task.path to the folder that holds "
            "train.bin and val.bin",
            "task.path",
        )
    missing = [name for name in TOKEN_FILES if not (folder / name).is_file()]
    if missing:
        raise FieldError(
            f"tokens folder '{path}' lacks {' and '.join(missing)}: a tokens task reads "
            "train.bin and val.bin there (flat arrays of token ids, e.g. from nanoGPT's "
            "prepare.py)",
            "task.path",
        )
    for name in TOKEN_FILES:  # a symlinked .bin must not lead out of the allowed folders
        check_allowed(str(folder / name))
    return folder


def _id_blocks(n_ids: int) -> list[tuple[int, int]]:
    """(start, count) of the blocks the load-time check reads: all of them, or evenly spaced."""
    if n_ids <= ID_CHECK_BLOCK * ID_CHECK_BLOCKS:
        return [(s, min(ID_CHECK_BLOCK, n_ids - s)) for s in range(0, n_ids, ID_CHECK_BLOCK)]
    starts = np.linspace(0, n_ids - ID_CHECK_BLOCK, ID_CHECK_BLOCKS).round().astype(np.int64)
    return [(int(s), ID_CHECK_BLOCK) for s in starts]


def vocab_error(path: Path, ids: np.ndarray, positions: np.ndarray, vocab_size: int,
                checked: str) -> FieldError:
    """The refusal for ids >= vocab_size: which ids, where, and what to set."""
    shown = ", ".join(f"{int(i)} at position {int(p)}" for i, p in zip(ids[:5], positions[:5],
                                                                          strict=True))
    more = f" (and {ids.size - 5} more)" if ids.size > 5 else ""
    return FieldError(
        f"{path} holds token ids that reach task.vocab_size {vocab_size}: {shown}{more}, among "
        f"{checked}: set task.vocab_size to at least {int(ids.max()) + 1} (the largest id + 1), "
        "or check task.dtype (a uint16 file read as uint32 gives huge ids)",
        "task.vocab_size",
    )


def check_sampled_ids(path: Path, dtype: np.dtype, n_ids: int, vocab_size: int) -> None:
    """Step 1's vocabulary check over a bounded sample of the file's ids (plain reads).

    Raises:
        FieldError: (field "task.vocab_size") a sampled id is >= vocab_size; says which.
    """
    blocks = _id_blocks(n_ids)
    checked = f"the {sum(c for _, c in blocks):,} ids checked of {n_ids:,}"
    with open(path, "rb") as f:
        for start, count in blocks:
            f.seek(start * dtype.itemsize)
            block = np.fromfile(f, dtype=dtype, count=count)
            bad = np.flatnonzero(block >= vocab_size)
            if bad.size:
                raise vocab_error(path, block[bad], bad + start, vocab_size, checked)


def open_token_file(path: Path, dtype: str, seq_len: int, vocab_size: int) -> TokenFile:
    """Check one .bin file (size, length, sampled ids); map nothing yet.

    Raises:
        FieldError: the size is not a whole number of ids ("task.dtype"), the file is shorter
            than one window ("task.seq_len"), or a sampled id is >= vocab_size
            ("task.vocab_size").
    """
    np_dtype = np.dtype(dtype)
    size = path.stat().st_size
    if size % np_dtype.itemsize:
        raise FieldError(
            f"{path} is {size:,} bytes, not a whole number of {dtype} ids ({np_dtype.itemsize} "
            "bytes each): set task.dtype to the dtype the file was written with, or re-create "
            "the file (it may be cut short)",
            "task.dtype",
        )
    n_ids = size // np_dtype.itemsize
    if n_ids < seq_len + 1:
        raise FieldError(
            f"{path} holds {n_ids:,} tokens; seq_len {seq_len} needs at least {seq_len + 1} (one "
            "window plus its next token): use a smaller task.seq_len or a longer file",
            "task.seq_len",
        )
    check_sampled_ids(path, np_dtype, n_ids, vocab_size)
    return TokenFile(path, np_dtype, n_ids)


class TokenFileTask(LMTask):
    """An LM task over token files; batches are (B, T) int64 windows like every `LMTask`.

    The ids stay in the files on the host; `to(device)` only changes where batches are sent,
    so a run on a GPU never holds more than a batch of them there.
    """

    def __init__(self, info: TaskInfo, files: dict[str, TokenFile],
                 device: torch.device | str = "cpu") -> None:
        # LMTask.__init__ is skipped on purpose: it takes in-memory tensors.
        if info.seq_len is None:
            raise ValueError("an LM task needs info.seq_len")
        self.info = info
        self.seq_len = info.seq_len
        self.files = files
        self._device = torch.device(device)

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: torch.device | str) -> TokenFileTask:
        return TokenFileTask(self.info, self.files, device)

    def tokens(self, split: Split) -> Tensor:
        """The whole split as a zero-copy CPU view of a fresh copy-on-write mapping, in the
        file's dtype (uint16 or uint32); pages read through it stay mapped while it lives."""
        return torch.from_numpy(self.files[_check_split(split)].view())

    def _read_windows(self, split: Split, starts: np.ndarray) -> tuple[Tensor, Tensor]:
        """Step 2: the windows at `starts` of `split`'s file, checked, on the device."""
        file = self.files[split]
        window = file.windows(starts, self.seq_len + 1)  # (B, T+1)
        vocab = self.info.n_outputs
        if window.size and int(window.max()) >= vocab:
            bad = np.argwhere(window >= vocab)  # (k, 2): row, column
            positions = starts[bad[:, 0]] + bad[:, 1]
            raise vocab_error(file.path, window[window >= vocab], positions, vocab,
                              "a training batch")
        tokens = torch.from_numpy(window.astype(np.int64))
        if self._device.type == "cuda":
            # Pinned and non-blocking: a plain copy would wait for the GPU's whole queue.
            tokens = tokens.pin_memory().to(self._device, non_blocking=True)
        else:
            tokens = tokens.to(self._device)
        return tokens[:, :-1], tokens[:, 1:]  # x (B, T), y (B, T): y is x shifted by one

    def batch(self, split: Split, batch_size: int,
              generator: torch.Generator) -> tuple[Tensor, Tensor]:
        _check_batch_size(batch_size)
        n_starts = self.files[_check_split(split)].n_ids - self.seq_len
        # Drawn with the run's generator (on its device; a CUDA generator costs one sync).
        starts = torch.randint(n_starts, (batch_size,), generator=generator,
                               device=generator.device)
        return self._read_windows(split, starts.cpu().numpy())

    def eval_starts(self, split: Split) -> Tensor:
        """The fixed window offsets `eval_batches` uses: evenly spaced over the file (CPU)."""
        last = self.files[_check_split(split)].n_ids - self.seq_len - 1
        n = min(LM_EVAL_WINDOWS, last + 1)
        return torch.linspace(0, last, n, dtype=torch.float64).round().long()

    def eval_batches(self, split: Split, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """`LM_EVAL_WINDOWS` windows at fixed offsets, in chunks of `batch_size`."""
        _check_batch_size(batch_size)
        starts = self.eval_starts(split).numpy()
        for i in range(0, starts.size, batch_size):
            yield self._read_windows(split, starts[i : i + batch_size])


def load_tokens_task(folder: Path, vocab_size: int, seq_len: int, dtype: str) -> TokenFileTask:
    """A tokens task over `folder` (already checked by `resolve_token_dir`).

    Raises:
        FieldError: a file fails `open_token_file`'s checks.
    """
    files = {split: open_token_file(folder / name, dtype, seq_len, vocab_size)
             for split, name in SPLIT_FILES.items()}
    info = TaskInfo(
        name="tokens",
        kind="lm",
        input_shape=(seq_len,),
        n_outputs=vocab_size,
        seq_len=seq_len,
        n_train=files["train"].n_ids,
        n_val=files["val"].n_ids,
    )
    return TokenFileTask(info, files)
