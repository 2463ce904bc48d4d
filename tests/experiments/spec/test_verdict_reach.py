"""Setup's prediction, before launch, of whether a plan can reach a transfer verdict.

The prediction (`experiments.spec.reach`) reads the ladder, the seeds and the grid step; it
must call the quick preset (4 widths, 3 seeds, which confirms) likely and a 3-width, 2-seed
ladder (which reads inconclusive: `tests/experiments/test_verdict_sweeps.py`) unlikely, asking
for the width the verdict itself asks for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from experiments.spec.estimate import estimate
from experiments.spec.reach import p_confirm, verdict_reach
from experiments.spec.sweep import parse_spec

QUICK = Path(__file__).resolve().parents[3] / "experiments" / "configs" / "quick.yaml"


def quick(**changes: Any) -> dict[str, Any]:
    return {**yaml.safe_load(QUICK.read_text()), **changes}


def test_the_quick_preset_is_likely_to_reach_a_verdict() -> None:
    reach = verdict_reach(parse_spec(quick()))
    assert reach.level == "likely" and reach.next_step == ""
    assert 0.67 <= reach.p_confirm < 1.0
    assert "4 widths, 3 seed(s) and a grid step of 1 log2" in reach.message
    assert estimate(parse_spec(quick(device="cpu"))).reach == reach  # shown on Setup


def test_three_widths_are_unlikely_and_ask_for_a_fourth() -> None:
    reach = verdict_reach(parse_spec(quick(widths=[64, 128, 256], seeds=[0, 1])))
    assert reach.level == "unlikely" and reach.p_confirm == 0.0
    assert reach.half_width > 0.25 and "1 residual degree(s) of freedom" in reach.message
    assert reach.next_step.startswith("add width(s) 512 to the ladder")


def test_more_seeds_widths_and_a_finer_grid_raise_the_chance() -> None:
    widths = [64, 128, 256, 512]
    assert p_confirm(widths, 1, 1.0) < p_confirm(widths, 3, 1.0) < p_confirm(widths, 8, 1.0)
    assert p_confirm(widths, 2, 1.0) < p_confirm(widths, 2, 0.5)
    assert p_confirm(widths, 2, 1.0) < p_confirm([*widths, 1024], 2, 1.0)
    one_seed = verdict_reach(parse_spec(quick(seeds=[0])))
    assert one_seed.level != "likely" and one_seed.next_step.startswith("add seed(s) 1")


@pytest.mark.parametrize("changes", [{"parametrizations": ["sp"]}, {"widths": [64]}])
def test_a_plan_that_cannot_judge_transfer_says_why(changes: dict[str, Any]) -> None:
    reach = verdict_reach(parse_spec(quick(**changes)))
    assert reach.level == "unlikely" and reach.next_step


def test_a_one_width_ladder_is_predicted_along_its_ladder() -> None:
    spec = parse_spec(quick(widths=[64], base_width=64, batch_sizes=[8, 16, 32, 64],
                            base_batch_size=8, batch_size=8, steps=160, seeds=[0, 1]))
    reach = verdict_reach(spec)
    assert "batch size verdict (at one width)" in reach.message
    assert "4 batch sizes, 2 seed(s)" in reach.message and "per batch size doubling" in reach.message
    assert reach.p_confirm > 0 and "One width" not in reach.message
    # The same statistics as a width ladder of the same shape.
    widths = verdict_reach(parse_spec(quick(widths=[64, 128, 256, 512], seeds=[0, 1])))
    assert reach.p_confirm == widths.p_confirm
    flat = verdict_reach(parse_spec(quick(widths=[64], base_width=64)))
    assert flat.message.startswith("One width has no drift")
