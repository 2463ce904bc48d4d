"""Task settings (torch-free): the spec's `task:` block and what a model needs to know of a task.

Kept apart from the data code so the spec, the form and validation import no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

TaskName = Literal["digits", "bytes", "synthetic", "synthetic-lm", "file", "tokens"]
TaskKind = Literal["classification", "lm"]
TokenDtype = Literal["uint16", "uint32"]

# Tasks that read `path` (the rest are built in) and the LM tasks (the ones `seq_len` shapes).
PATH_TASKS: tuple[str, ...] = ("file", "tokens")
LM_TASKS: tuple[str, ...] = ("bytes", "synthetic-lm", "file", "tokens")
# Fields only a "tokens" task has: left out of dumps when unset, so the YAML, bundles and
# spec hashes of every other task stay what they were before these fields existed.
TOKENS_ONLY_FIELDS: tuple[str, ...] = ("vocab_size", "dtype")
# Fields left out of dumps when unset (the tokens-only ones and the recorded data fingerprint).
UNSET_DROPPED_FIELDS: tuple[str, ...] = (*TOKENS_ONLY_FIELDS, "fingerprint")


class TaskConfig(BaseModel):
    """The spec's `task:` block.

    Attributes:
        name: which dataset. "digits" (scikit-learn's 8x8 handwritten digits), "bytes"
            (byte-level LM on Python standard-library sources), "synthetic" (Gaussian images
            labelled by a random teacher net), "synthetic-lm" (a random sparse Markov chain),
            "file" (a user's .txt for a byte LM, or .npz with arrays x and y for classification),
            "tokens" (a folder of pre-tokenized train.bin and val.bin: flat arrays of token ids).
        path: the user file ("file") or folder ("tokens"); it must lie inside one of the
            folders the operator allows (setting `MUTRANSFER_DATA_DIRS`).
        seq_len: context length of LM tasks (ignored by classification tasks).
        vocab_size: "tokens" only: ids run 0..vocab_size-1 (the model's embedding and readout).
        dtype: "tokens" only: how the .bin files store ids, "uint16" (the default; vocabularies
            up to 65,536) or "uint32".
        fingerprint: "file" and "tokens" only, written by the engine, not by hand: the data's
            name, size and mtime per file (a tokens folder: train.bin and val.bin), recorded
            when the sweep is submitted (`experiments.tasks.loading.stamp_task`). A run whose
            data no longer matches it is refused ("task.path changed since the sweep was
            submitted"), so one sweep never mixes two versions of a data set. Left out of dumps
            when unset.
    """

    model_config = ConfigDict(extra="forbid")

    name: TaskName
    path: str | None = None
    seq_len: int = Field(default=64, ge=2, le=65536)
    vocab_size: int | None = Field(default=None, ge=2, le=2**32)
    dtype: TokenDtype | None = None
    fingerprint: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _fields_fit_the_task(self) -> TaskConfig:
        if self.name in PATH_TASKS and not self.path:
            what = "a .txt or .npz file" if self.name == "file" else "a folder with train.bin and val.bin"
            raise ValueError(f"task '{self.name}' needs a path: set task.path to {what}")
        if self.name not in PATH_TASKS and self.fingerprint is not None:
            raise ValueError(
                f"task.fingerprint records the data of task 'file' or 'tokens', not "
                f"'{self.name}': remove it"
            )
        if self.name not in PATH_TASKS and self.path is not None:
            raise ValueError(
                f"task.path is only used by task 'file' or 'tokens', not '{self.name}': remove it "
                "or set name: file"
            )
        if self.name != "tokens":
            for key in TOKENS_ONLY_FIELDS:
                if getattr(self, key) is not None:
                    raise ValueError(
                        f"task.{key} is only used by task 'tokens', not '{self.name}': remove it"
                    )
            return self
        if self.vocab_size is None:
            raise ValueError(
                "task 'tokens' needs vocab_size: set task.vocab_size to the tokenizer's "
                "vocabulary size (e.g. 50257 for GPT-2)"
            )
        if self.dtype is None:
            self.dtype = "uint16"
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_fields(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in UNSET_DROPPED_FIELDS:
                if data.get(key) is None:
                    data.pop(key, None)
        return data


@dataclass(frozen=True)
class TaskInfo:
    """What a model builder needs to know about a task (cheap to compute, picklable).

    Attributes:
        name: the task name ("digits", ...; "file" and "tokens" tasks keep theirs).
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
