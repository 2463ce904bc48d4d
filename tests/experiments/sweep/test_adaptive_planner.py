"""The adaptive LR search on synthetic loss surfaces (no training): the search's acceptance bounds.

A surface is loss(param, width, log2 LR) = 1 + (x - opt(param, width))^2 / 8, with optional
divergence above a wall, answered through `experiments.sweep.adaptive.replay`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from experiments.errors import UserError
from experiments.spec.run import RunConfig
from experiments.spec.sweep import SweepSpec, parse_spec, run_key, spec_hash
from experiments.sweep.adaptive import (
    RunOutcome,
    adaptive_widths,
    next_point,
    plan_runs,
    predict_log2,
    replay,
    run_bounds,
    span_point,
)

WIDTHS = [64, 128, 256, 512]


def make_spec(**search: object) -> SweepSpec:
    return SweepSpec.model_validate({
        "name": "adaptive-test", "widths": WIDTHS, "base_width": 64,
        "lr_grid": {"log2_min": -12, "log2_max": -2, "step": 1}, "seeds": [0, 1],
        "search": {"kind": "adaptive", **search},
    })


def surface(opt: Callable[[str, int], float], wall: float = math.inf,
            noise: float = 0.0) -> Callable[[RunConfig], RunOutcome]:
    """Outcome of a run on a parabola around opt(param, width); diverged at log2 LR >= wall."""
    def outcome(run: RunConfig) -> RunOutcome:
        x = math.log2(run.lr)
        if x >= wall:
            return RunOutcome("diverged", None)
        loss = 1.0 + (x - opt(run.parametrization, run.width)) ** 2 / 8 + noise * run.seed
        return RunOutcome("done", loss)
    return outcome


def trained(outcomes: dict[str, RunOutcome], param: str, width: int) -> list[float]:
    """The log2 LRs trained for (param, width), from the run keys."""
    xs = {float(k.split("lr2^")[1].split("-s")[0]) for k in outcomes
          if k.startswith(f"w{width}-{param}-")}
    return sorted(xs)


def test_mup_flat_optimum_needs_one_bracket_per_wider_width() -> None:
    spec = make_spec()
    outcomes, plan, _ = replay(spec, surface(lambda p, w: -7.0))
    assert plan.complete and not plan.warnings
    assert trained(outcomes, "mup", 64) == [float(x) for x in range(-12, -1)]
    for w in WIDTHS[1:]:
        assert trained(outcomes, "mup", w) == [-8.0, -7.0, -6.0]
    assert len(outcomes) == 2 * 2 * (11 + 3 * 3)  # params x seeds x (grid + 3 brackets)
    assert all(abs(o - (-7.0)) < 1e-9 for o in plan.optima.values())


def test_bracket_extends_while_the_optimum_is_on_its_edge() -> None:
    # SP's optimum jumps by -2 at width 128 (no drift known yet): the bracket [-5,-4,-3]
    # around 64's optimum finds its best on the lower edge and grows down to -7.
    spec = make_spec()
    opt = {64: -4.0, 128: -6.0, 256: -8.0, 512: -10.0}
    outcomes, plan, _ = replay(spec, surface(lambda p, w: opt[w] if p == "sp" else -7.0))
    assert trained(outcomes, "sp", 128) == [-7.0, -6.0, -5.0, -4.0, -3.0]
    for w in WIDTHS:
        assert plan.optima[(next(k for k, _ in plan.optima if k.startswith("sp")), w)] == \
            pytest.approx(opt[w])
    # Later widths extrapolate the drift (-2 per doubling): the brackets [-9,-7] and [-11,-9]
    # sit on the optimum, then grow up to the proxy's LR 2^-4 so its regret can be read.
    assert trained(outcomes, "sp", 256) == [-9.0, -8.0, -7.0, -6.0, -5.0, -4.0]
    assert trained(outcomes, "sp", 512) == [float(x) for x in range(-11, -3)]
    # µP's optimum stays at the proxy's: one bracket of 3 per width, nothing more.
    assert all(len(trained(outcomes, "mup", w)) == 3 for w in WIDTHS[1:])


def test_stops_at_the_grid_edge_with_a_warning() -> None:
    spec = make_spec()
    opt = {64: -9.0, 128: -10.5, 256: -12.0, 512: -14.0}  # leaves the grid at 512
    outcomes, plan, _ = replay(spec, surface(lambda p, w: opt[w]))
    assert plan.complete
    assert trained(outcomes, "sp", 512)[0] == -12.0  # nothing planned below the grid
    assert any("sp width 512" in w and "lower edge" in w for w in plan.warnings)
    assert not any("width 128" in w for w in plan.warnings)


def test_diverged_point_is_a_wall() -> None:
    # Every LR >= 2^-5 diverges at every width; the loss would keep falling towards 2^-3.
    spec = make_spec()
    outcomes, plan, _ = replay(spec, surface(lambda p, w: -3.0, wall=-5.0))
    for w in WIDTHS[1:]:
        xs = trained(outcomes, "mup", w)
        assert max(xs) == -5.0  # the diverged neighbour was trained, nothing beyond it
        assert outcomes[f"w{w}-mup-lr2^-5-s0"].state == "diverged"
    assert not plan.warnings  # the optimum -6 is interior: a diverged neighbour closes the side


def test_sp_and_mup_are_searched_separately() -> None:
    spec = make_spec()
    outcomes, plan, _ = replay(
        spec, surface(lambda p, w: -6.0 - math.log2(w / 64) if p == "sp" else -6.0))
    assert trained(outcomes, "mup", 512) == [-7.0, -6.0, -5.0]
    assert trained(outcomes, "sp", 512) == [-10.0, -9.0, -8.0, -7.0, -6.0]  # up to proxy -6


def test_one_diverged_seed_makes_the_point_a_wall() -> None:
    spec = make_spec(bracket=5)

    def outcome(run: RunConfig) -> RunOutcome:
        x = math.log2(run.lr)
        if run.seed == 1 and x >= -6 and run.width > 64:
            return RunOutcome("diverged")
        return RunOutcome("done", 1.0 + (x + 5.0) ** 2 / 8)

    outcomes, plan, _ = replay(spec, outcome)
    # Bracket -7..-3 around 64's -5: only -7 is finite, so it grows down to -8 and stops.
    assert trained(outcomes, "mup", 128) == [-8.0, -7.0, -6.0, -5.0, -4.0, -3.0]
    assert plan.optima[(next(k for k, _ in plan.optima if k.startswith("mup")), 128)] == -7.0


def test_same_results_same_plan_and_replanning_adds_nothing() -> None:
    spec = make_spec()
    outcomes, final, _ = replay(spec, surface(lambda p, w: -7.0 + 0.3 * (p == "sp")))
    assert plan_runs(spec, outcomes).add == []
    # Half-way: the same stored results give the same plan, twice.
    partial = {k: v for k, v in outcomes.items() if k.startswith(("w64-", "w128-"))}
    a, b = plan_runs(spec, partial), plan_runs(spec, partial)
    assert [run_key(r) for r in a.add] == [run_key(r) for r in b.add]
    assert a.add and all(r.width == 256 for r in a.add)
    assert not a.complete and a.later_min == 2 * 3 * 2  # params x bracket x seeds, width 512


def test_width_waits_for_its_running_runs() -> None:
    spec = make_spec()
    first = plan_runs(spec, {})
    assert {r.width for r in first.add} == {64} and len(first.add) == 2 * 11 * 2
    outcomes = {run_key(r): RunOutcome("done", 1.0) for r in first.add}
    outcomes[run_key(first.add[0])] = RunOutcome("running")
    waiting = first.add[0].parametrization
    nxt = plan_runs(spec, outcomes).add
    # The group with a running run waits at 64; the other group goes on to 128.
    assert nxt and all(r.parametrization != waiting and r.width == 128 for r in nxt)


def test_span_towards_the_proxy_stops_at_a_wall_and_the_grid_end() -> None:
    grid = [float(x) for x in range(-12, -1)]  # index i is 2^(i - 12)
    assert span_point({2: 2.0, 3: 1.0, 4: 1.5}, grid, -6.0) == 5
    assert span_point({2: 2.0, 3: 1.0, 4: 1.5}, grid, -11.0) == 1
    assert span_point({2: 2.0, 3: 1.0, 4: 1.5}, grid, -9.0) is None  # spanned
    assert span_point({2: 2.0, 3: 1.0, 4: math.inf}, grid, -6.0) is None  # a wall
    assert span_point({8: 2.0, 9: 1.0, 10: 1.5}, grid, 0.0) is None  # the grid's end


def test_next_point_rules() -> None:
    assert next_point({3: 2.0, 4: 1.0, 5: 1.5}, 11) == (None, None)
    assert next_point({3: 1.0, 4: 2.0, 5: 3.0}, 11) == (2, None)
    assert next_point({8: 3.0, 9: 2.0, 10: 1.0}, 11) == (
        None, "optimum at the grid's upper edge: extend the LR grid above it")
    assert next_point({4: math.inf, 5: math.inf}, 11) == (3, None)
    assert predict_log2([(64, -6.0), (128, -7.0)], 512) == pytest.approx(-9.0)


def test_run_bounds_and_adaptive_widths() -> None:
    spec = make_spec(full_widths=2)
    assert run_bounds(spec) == (2 * 2 * (2 * 11 + 2 * 3), spec.n_runs())
    assert adaptive_widths(spec) == [256, 512]
    grid = spec.model_copy(update={"search": spec.search.model_copy(update={"kind": "grid"})})
    assert run_bounds(grid) == (grid.n_runs(), grid.n_runs()) and adaptive_widths(grid) == []


def test_default_search_keeps_hash_and_yaml() -> None:
    data = {"name": "x", "widths": WIDTHS, "lr_grid": {"log2_min": -8, "log2_max": -4}}
    plain = SweepSpec.model_validate(data)
    explicit = SweepSpec.model_validate({**data, "search": {"kind": "grid"}})
    assert "search" not in plain.to_yaml()
    assert spec_hash(plain) == spec_hash(explicit) == "c78e514b7e283683"  # as before `search`
    adaptive = SweepSpec.model_validate({**data, "search": {"kind": "adaptive"}})
    assert spec_hash(adaptive) != spec_hash(plain)
    assert "kind: adaptive" in adaptive.to_yaml()


@pytest.mark.parametrize(("search", "field", "hint"), [
    ({"kind": "adaptive", "full_widths": 5}, "search.full_widths", "1..4"),
    ({"kind": "adaptive", "bracket": 4}, "search.bracket", "use 5"),
    ({"kind": "adaptive", "bracket": 1}, "search.bracket", "greater than or equal to 3"),
    ({"kind": "bayes"}, "search.kind", "'grid' or 'adaptive'"),
])
def test_bad_search_names_the_field(search: dict[str, object], field: str, hint: str) -> None:
    with pytest.raises(UserError) as err:
        parse_spec({"widths": WIDTHS, "lr_grid": {"log2_min": -8, "log2_max": -4},
                    "search": search})
    assert f"{field}:" in str(err.value) and hint in str(err.value)


def test_adaptive_needs_three_lrs() -> None:
    with pytest.raises(UserError, match=r"search: .*>= 3 points"):
        parse_spec({"widths": WIDTHS, "lrs": [1e-3, 1e-2], "search": {"kind": "adaptive"}})
    assert parse_spec({"widths": WIDTHS, "lrs": [1e-3, 1e-2]}).search.kind == "grid"


def test_each_knob_setting_is_searched_separately() -> None:
    spec = SweepSpec.model_validate({
        "name": "knobs", "widths": WIDTHS, "parametrizations": ["mup"],
        "lr_grid": {"log2_min": -12, "log2_max": -2, "step": 1}, "seeds": [0],
        "hparam_grid": {"output_mult": [1.0, 4.0]}, "search": {"kind": "adaptive"},
    })

    def outcome(run: RunConfig) -> RunOutcome:  # the optimum moves with the knob, not width
        opt = -9.0 if run.hparams.knob("output_mult") == 4.0 else -5.0
        return RunOutcome("done", 1.0 + (math.log2(run.lr) - opt) ** 2 / 8)

    outcomes, plan, _ = replay(spec, outcome)
    at_512 = sorted(k.split("-s0")[0] for k in outcomes if k.startswith("w512-"))
    assert at_512 == ["w512-mup-lr2^-10", "w512-mup-lr2^-4", "w512-mup-lr2^-5",
                      "w512-mup-lr2^-6", "w512-mup-lr2^-8", "w512-mup-lr2^-9"]
    assert sorted(plan.optima.values()) == [-9.0] * 4 + [-5.0] * 4


def test_a_one_width_batch_ladder_walks_its_batches_at_each_horizon() -> None:
    """One width, batch 8..64 x horizons 8 and 16: the search walks the batches (its first
    ladder) at each horizon, brackets the wider batches around the optimum the drift predicts
    (+0.5 per batch doubling here), and finds every rung's optimum as the grid would."""
    spec = SweepSpec.model_validate({
        "name": "adaptive-batch", "widths": [64], "base_width": 64,
        "batch_sizes": [8, 16, 32, 64], "base_batch_size": 8, "horizons": [8, 16],
        "batch_size": 8, "steps": 8, "log_every": 1, "parametrizations": ["mup"],
        "lr_grid": {"log2_min": -12, "log2_max": -2, "step": 1}, "seeds": [0, 1],
        "search": {"kind": "adaptive", "full_widths": 1, "bracket": 3},
    })

    def outcome(run: RunConfig) -> RunOutcome:
        opt = -9.0 + 0.5 * math.log2(run.batch_size / 8) - 0.5 * math.log2(run.horizon / 8)
        return RunOutcome("done", 1.0 + (math.log2(run.lr) - opt) ** 2 / 8)

    outcomes, plan, _ = replay(spec, outcome)
    assert plan.complete and not plan.warnings
    per_rung: dict[tuple[int, int], int] = {}
    for run in spec.expand():
        if run_key(run) in outcomes:
            per_rung[(run.batch_size, run.horizon)] = per_rung.get(
                (run.batch_size, run.horizon), 0) + 1
    for horizon in (8, 16):
        assert per_rung[(8, horizon)] == 11 * 2  # the base batch: the full grid
        for batch in (16, 32, 64):
            assert per_rung[(batch, horizon)] <= 4 * 2  # a bracket (+1 point at most)
    # Labelled by the horizon rung, walked along batch: optimum per (group, batch).
    want = {("mup s8", 8): -9.0, ("mup s8", 64): -7.5, ("mup s16", 8): -9.5,
            ("mup s16", 64): -8.0}
    for key, opt in want.items():
        assert plan.optima[key] == pytest.approx(opt, abs=0.05)
    assert run_bounds(spec) == (2 * 2 * (11 + 3 * 3), spec.n_runs())
    assert adaptive_widths(spec) == []
