"""Shared test setup: one CPU thread (the test machine's cores are shared) and fixed seeds."""

from __future__ import annotations

import random

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    torch.manual_seed(0)
