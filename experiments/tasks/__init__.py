"""Tasks: small, offline, deterministic datasets for µTransfer sweeps.

    cfg = TaskConfig(name="digits")
    task = load_task(cfg).to("cuda")        # cached per process; data on the device
    x, y = task.batch("train", 64, generator)
    loss = task.loss(model(x), y)

Classification inputs are images (B, C, H, W) with labels (B,); LM inputs and targets are
(B, T) int64 tokens (targets shifted by one). User data ("file", "tokens") is read only from the
folders the operator allows (`datadirs`, setting MUTRANSFER_DATA_DIRS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiments.lazy import lazy_exports, type_checking_exports

if TYPE_CHECKING:
    from experiments.tasks.base import LM_EVAL_WINDOWS, ClassificationTask, LMTask, Split, Task
    from experiments.tasks.config import TaskConfig, TaskInfo
    from experiments.tasks.datadirs import DataEntry, allowed_data_dirs, list_data
    from experiments.tasks.loading import clear_task_cache, load_task, task_info
    from experiments.tasks.sources import STDLIB_FILES
    from experiments.tasks.tokens import TokenFileTask

# The public names are the imports above, each loaded on first use (PEP 562) so that
# `experiments.tasks.config` (the spec's `task:` block) imports without torch.
_EXPORTS = type_checking_exports(__name__, globals())
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
