"""Device selection for runs: "auto" | "cpu" | "cuda" | "cuda:N".

A spec names a device once; every run resolves it in its own worker process, so a sweep written
on a laptop ("auto") trains on a GPU box's GPU without edits. Validation happens up front, in
the spec, so a sweep that cannot run is refused before anything is written.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

# torch is imported inside the functions that need it: the spec validates "auto" and "cpu"
# devices without paying for torch.

WORKER_DEVICE_ENV = "MUTRANSFER_WORKER_DEVICE"
# Memory refused above min(this cap, physical RAM) on the CPU, or the GPU's memory on CUDA.
MEMORY_CAP_BYTES = 16 * 2**30
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
    import torch

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
    import torch

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
    import torch

    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def bf16_ok(device: str) -> bool:
    """Whether bf16 autocast can run on `device` ("auto" counts as the CUDA GPU when present).

    CPU autocast supports bf16 everywhere; CUDA needs a GPU that does (Ampere or newer).
    """
    if device == "cpu":
        return True
    try:
        import torch

        if not torch.cuda.is_available():
            return True  # "auto" falls back to the CPU; "cuda" is refused by `device` itself
        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        with torch.cuda.device(index):
            return bool(torch.cuda.is_bf16_supported())
    except (RuntimeError, AssertionError):  # pragma: no cover - broken CUDA install
        return True


def memory_limit(device: str) -> tuple[int, str]:
    """The most memory one run may need, and where that limit comes from."""
    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
                return int(torch.cuda.get_device_properties(index).total_memory), "of GPU memory"
        except (RuntimeError, AssertionError):  # pragma: no cover - broken CUDA install
            pass
    try:
        ram = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        ram = MEMORY_CAP_BYTES
    if ram < MEMORY_CAP_BYTES:
        return ram, "of RAM on this machine"
    return MEMORY_CAP_BYTES, "per-run cap"
