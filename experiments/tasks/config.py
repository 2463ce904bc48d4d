"""Task settings (torch-free): the spec's `task:` block and what a model needs to know of a task.

Kept apart from the data code so the spec, the form and validation import no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaskName = Literal["digits", "bytes", "synthetic", "synthetic-lm", "file"]
TaskKind = Literal["classification", "lm"]


class TaskConfig(BaseModel):
    """The spec's `task:` block.

    Attributes:
        name: which dataset. "digits" (scikit-learn's 8x8 handwritten digits), "bytes"
            (byte-level LM on Python standard-library sources), "synthetic" (Gaussian images
            labelled by a random teacher net), "synthetic-lm" (a random sparse Markov chain),
            "file" (a user's .txt for a byte LM, or .npz with arrays x and y for classification).
        path: the user file, only for name == "file".
        seq_len: context length of LM tasks (ignored by classification tasks).
    """

    model_config = ConfigDict(extra="forbid")

    name: TaskName
    path: str | None = None
    seq_len: int = Field(default=64, ge=2, le=65536)

    @model_validator(mode="after")
    def _path_iff_file(self) -> TaskConfig:
        if self.name == "file" and not self.path:
            raise ValueError("task 'file' needs a path: set task.path to a .txt or .npz file")
        if self.name != "file" and self.path is not None:
            raise ValueError(
                f"task.path is only used by task 'file', not '{self.name}': remove it or set "
                "name: file"
            )
        return self


@dataclass(frozen=True)
class TaskInfo:
    """What a model builder needs to know about a task (cheap to compute, picklable).

    Attributes:
        name: the task name ("digits", ...; "file" tasks keep "file").
        kind: "classification" (inputs (B, C, H, W) float, targets (B,) int64) or "lm"
            (inputs and targets (B, T) int64 tokens).
        input_shape: one example's shape: (C, H, W) or (seq_len,).
        n_outputs: number of classes, or the vocabulary size.
        seq_len: context length for LM tasks, None for classification.
        n_train: training examples (classification) or tokens (LM).
        n_val: validation examples or tokens.
    """

    name: str
    kind: TaskKind
    input_shape: tuple[int, ...]
    n_outputs: int
    seq_len: int | None
    n_train: int
    n_val: int
