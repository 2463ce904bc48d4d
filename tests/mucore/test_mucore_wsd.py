"""The warmup-stable-decay schedule (mucore.warmup_stable_decay): its exact curve, its µP
group ratios under `relative_schedule`, and its refusals."""

from __future__ import annotations

import pytest
from mucore_toys import ToyMLP

import mucore


def test_the_curve_warms_up_holds_then_decays_linearly_to_zero() -> None:
    factor = mucore.warmup_stable_decay(warmup_steps=2, total_steps=10, decay_fraction=0.3)
    # 3 decay steps (round(0.3 x 10)) start at step 7: 3/4, 2/4, 1/4; step 10 would be 0.
    expected = [0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25]
    assert [factor(s) for s in range(10)] == pytest.approx(expected, rel=1e-12)
    assert factor(10) == 0.0
    no_warmup = mucore.warmup_stable_decay(0, 8, 1.0, floor=0.2)  # all decay, to a floor
    assert [no_warmup(s) for s in range(8)] == pytest.approx(
        [0.2 + 0.8 * (8 - s) / 9 for s in range(8)], rel=1e-12)
    tiny = mucore.warmup_stable_decay(0, 10, 0.01)  # rounds to 0 steps: decays over 1
    assert [tiny(s) for s in (8, 9)] == [1.0, 0.5]


def test_every_group_follows_the_curve_and_keeps_its_mup_ratio() -> None:
    shapes = mucore.infer_base_shapes(ToyMLP, 32)
    model = ToyMLP(128)
    setup = mucore.parametrize(model, shapes, "mup", seed=0)
    opt = mucore.build_optimizer(model, setup, "adam", 0.01)
    sched = mucore.relative_schedule(opt, mucore.warmup_stable_decay(1, 5, 0.4))
    seen = []
    for _ in range(5):
        seen.append([g["lr"] / (0.01 * g["lr_mult"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    assert len({g["lr_mult"] for g in opt.param_groups}) > 1  # µP groups really differ
    # 2 decay steps at 2/3 and 1/3.
    for row, want in zip(seen, [1.0, 1.0, 1.0, 2 / 3, 1 / 3], strict=True):
        assert row == pytest.approx([want] * len(row), rel=1e-12)


def test_bad_fractions_and_a_warmup_that_runs_into_the_decay_are_refused() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"decay_fraction must be in \(0, 1\]"):
            mucore.warmup_stable_decay(0, 10, bad)
    with pytest.raises(ValueError, match="warm-up \\(8 steps\\) and decay \\(3 steps\\) do not fit"):
        mucore.warmup_stable_decay(8, 10, 0.3)
    fits = mucore.warmup_stable_decay(7, 10, 0.3)  # warm-up ends where the decay starts
    assert [fits(s) for s in (6, 7)] == pytest.approx([1.0, 0.75], rel=1e-12)
