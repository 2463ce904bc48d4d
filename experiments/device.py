"""Device selection for runs: "auto" | "cpu" | "cuda" | "cuda:N".

A spec names a device once; every run resolves it in its own worker process, so a sweep written
on a laptop ("auto") trains on a GPU box's GPU without edits. Validation happens up front, in
the spec, so a sweep that cannot run is refused before anything is written.
"""

from __future__ import annotations

import os
import re

import torch

WORKER_DEVICE_ENV = "MUTRANSFER_WORKER_DEVICE"
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def device_problem(device: str) -> str | None:
    """Why `device` cannot be used on this machine, or None when it can.

    Args:
        device: "auto", "cpu", "cuda" or "cuda:N".

    Returns:
        A message naming the field and the fix, or None.
    """
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        return f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
    if device in ("auto", "cpu"):
        return None
    if not torch.cuda.is_available():
        return f"device '{device}' asked for CUDA but no CUDA GPU is available here: use auto or cpu"
    if ":" in device:
        index = int(device.split(":", 1)[1])
        count = torch.cuda.device_count()
        if index >= count:
            return (
                f"device '{device}' does not exist: this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1}); use auto or one of those"
            )
    return None


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device a run trains on.

    "auto" picks the device the runner assigned to this worker process (env
    `MUTRANSFER_WORKER_DEVICE`, one GPU per worker on multi-GPU machines), else CUDA when
    available, else the CPU.

    Raises:
        ValueError: `device` is malformed or not available here (see `device_problem`).
    """
    problem = device_problem(device)
    if problem:
        raise ValueError(problem)
    if device == "auto":
        assigned = os.environ.get(WORKER_DEVICE_ENV, "").strip()
        if assigned and device_problem(assigned) is None and assigned != "auto":
            return torch.device(assigned)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_label(device: torch.device) -> str:
    """A human label for result records, e.g. "cpu" or "cuda:0 (NVIDIA H100)"."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
