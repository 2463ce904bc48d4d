"""The two task shapes every model trains on: image classification and byte LM.

A `Task` owns its data as tensors on one device and hands out batches sampled with a caller's
`torch.Generator`, so the same generator seed gives the same batches on every machine. Evaluation
uses a fixed set of examples (`eval_batches`), never the generator, so val losses of different
runs are comparable.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from experiments.tasks.config import TaskInfo

Split = Literal["train", "val"]

# LM evaluation: this many windows at fixed, evenly spaced offsets of a split (a deterministic
# subset: the whole val stream would cost seq_len times more forward passes than it tells us).
LM_EVAL_WINDOWS = 32


class Task(abc.ABC):
    """A dataset split into train and val, living on one device.

    Subclasses implement `device`, `to`, `batch` and `eval_batches`; `loss` is shared.
    """

    info: TaskInfo

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """Device the data lives on."""

    @abc.abstractmethod
    def to(self, device: torch.device | str) -> Task:
        """A task with the same data moved to `device` (this one is left untouched)."""

    @abc.abstractmethod
    def batch(
        self, split: Split, batch_size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Sample a batch (with replacement) using `generator`; tensors are on `self.device`."""

    @abc.abstractmethod
    def eval_batches(self, split: Split, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """A fixed, deterministic sequence of batches covering the split's eval set."""

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy over every prediction.

        Args:
            logits: (B, V) or (B, T, V).
            targets: (B,) or (B, T) int64 class ids.
        """
        n_classes = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, n_classes).float(), targets.reshape(-1))


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _sample_indices(
    high: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> Tensor:
    """`batch_size` ints in [0, high) drawn on the generator's device, then moved to `device`.

    A CPU-to-GPU copy goes through pinned memory without blocking: a plain (blocking) copy
    makes the host wait for the GPU's whole queue, i.e. a host sync on every training step.
    """
    idx = torch.randint(high, (batch_size,), generator=generator, device=generator.device)
    if device.type == "cuda" and idx.device.type == "cpu":
        # The caching host allocator keeps the pinned block alive until the copy has run.
        return idx.pin_memory().to(device, non_blocking=True)
    return idx.to(device)


class ClassificationTask(Task):
    """Images (N, C, H, W) float32 with labels (N,) int64."""

    def __init__(
        self, info: TaskInfo, x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor
    ) -> None:
        self.info = info
        self._data: dict[str, tuple[Tensor, Tensor]] = {
            "train": (x_train, y_train),
            "val": (x_val, y_val),
        }

    @property
    def device(self) -> torch.device:
        return self._data["train"][0].device

    def arrays(self, split: Split) -> tuple[Tensor, Tensor]:
        """The whole split: inputs (N, C, H, W) and labels (N,)."""
        return self._data[_check_split(split)]

    def to(self, device: torch.device | str) -> ClassificationTask:
        (xt, yt), (xv, yv) = self._data["train"], self._data["val"]
        return ClassificationTask(
            self.info, xt.to(device), yt.to(device), xv.to(device), yv.to(device)
        )

    def batch(
        self, split: Split, batch_size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        _check_batch_size(batch_size)
        x, y = self.arrays(split)
        idx = _sample_indices(x.shape[0], batch_size, generator, x.device)  # (B,)
        return x[idx], y[idx]  # (B, C, H, W), (B,)

    def eval_batches(self, split: Split, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """The whole split in order, in chunks of `batch_size` (the last may be smaller)."""
        _check_batch_size(batch_size)
        x, y = self.arrays(split)
        for start in range(0, x.shape[0], batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]


class LMTask(Task):
    """A token stream per split, stored compactly as uint8; batches are int64 windows."""

    def __init__(self, info: TaskInfo, train_tokens: Tensor, val_tokens: Tensor) -> None:
        if info.seq_len is None:
            raise ValueError("an LM task needs info.seq_len")
        self.info = info
        self.seq_len: int = info.seq_len
        self._tokens: dict[str, Tensor] = {"train": train_tokens, "val": val_tokens}
        for split, tokens in self._tokens.items():
            if tokens.ndim != 1 or tokens.numel() < self.seq_len + 1:
                raise ValueError(
                    f"{split} stream has {tokens.numel()} tokens; seq_len {self.seq_len} needs "
                    f"at least {self.seq_len + 1}"
                )

    @property
    def device(self) -> torch.device:
        return self._tokens["train"].device

    def tokens(self, split: Split) -> Tensor:
        """The whole split as a 1-D uint8 stream."""
        return self._tokens[_check_split(split)]

    def to(self, device: torch.device | str) -> LMTask:
        return LMTask(self.info, self._tokens["train"].to(device), self._tokens["val"].to(device))

    def _windows(self, stream: Tensor, starts: Tensor) -> tuple[Tensor, Tensor]:
        offsets = torch.arange(self.seq_len + 1, device=stream.device)  # (T+1,)
        window = stream[starts[:, None] + offsets[None, :]].long()  # (B, T+1)
        return window[:, :-1], window[:, 1:]  # x (B, T), y (B, T): y is x shifted by one

    def batch(
        self, split: Split, batch_size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        _check_batch_size(batch_size)
        stream = self.tokens(split)
        n_starts = stream.numel() - self.seq_len  # last start leaves room for seq_len + 1 tokens
        starts = _sample_indices(n_starts, batch_size, generator, stream.device)  # (B,)
        return self._windows(stream, starts)

    def eval_starts(self, split: Split) -> Tensor:
        """The fixed window offsets used by `eval_batches`: evenly spaced over the split."""
        stream = self.tokens(split)
        last = stream.numel() - self.seq_len - 1
        n = min(LM_EVAL_WINDOWS, last + 1)
        return torch.linspace(0, last, n, dtype=torch.float64).round().long().to(stream.device)

    def eval_batches(self, split: Split, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
        """`LM_EVAL_WINDOWS` windows at fixed offsets, in chunks of `batch_size`."""
        _check_batch_size(batch_size)
        stream = self.tokens(split)
        starts = self.eval_starts(split)
        for i in range(0, starts.numel(), batch_size):
            yield self._windows(stream, starts[i : i + batch_size])


def _check_split(split: str) -> str:
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return split
