"""Spec presets offered by the dashboard: the "quick demo".

The quick demo is `experiments/configs/quick.yaml`, the same file the CLI documents. For fast
tests, env `MUTRANSFER_QUICK_STEPS` lowers its step count: the same preset and the same launch
path, only shorter training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from experiments.settings import PROJECT_ROOT

QUICK_SPEC_PATH = PROJECT_ROOT / "experiments" / "configs" / "quick.yaml"
QUICK_STEPS_ENV = "MUTRANSFER_QUICK_STEPS"


def quick_spec_data(path: Path = QUICK_SPEC_PATH) -> dict[str, Any]:
    """The quick-demo spec as plain data (validated later, like any other spec).

    Raises:
        ValueError: `MUTRANSFER_QUICK_STEPS` is set but not a positive integer.
    """
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    override = os.environ.get(QUICK_STEPS_ENV, "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"{QUICK_STEPS_ENV} must be a positive integer, got {override!r}")
        data["steps"] = int(override)
    return data
