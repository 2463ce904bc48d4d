"""The four µP roles a parameter can play, as a torch-free enum.

`mucore.parametrizations` keys its rule tables by role and must import without torch (the
spec layer of `experiments` validates parametrization names and reads their traits without
paying for torch), so the enum lives here and `mucore.roles` re-exports it.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Role of a parameter under the µP rules (TP5, Table 8)."""

    INPUT = "input"
    HIDDEN = "hidden"
    OUTPUT = "output"
    VECTOR = "vector"
