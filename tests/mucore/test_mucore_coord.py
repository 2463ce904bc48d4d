"""Coordinate check (TP5 Appendix D): µP keeps every activation width-independent during the
first steps; SP under Adam does not, and the check names the layers that blow up."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from mucore_toys import D_IN, N_OUT, ResNet, ToyMLP, mlp_batch
from torch import Tensor, nn

import mucore
from mucore.coord import summarize
from mucore.roles import Role

WIDTHS = [64, 128, 256, 512, 1024]
ZERO_READOUT = mucore.HParams(zero_readout=True)


@pytest.fixture(scope="module")
def shapes() -> mucore.BaseShapes:
    return mucore.infer_base_shapes(ToyMLP, 64)


def _check(shapes, param, optimizer, lr, hparams=ZERO_READOUT, **kw) -> mucore.CoordCheckResult:
    return mucore.coord_check(
        ToyMLP, shapes, WIDTHS, mlp_batch(32), F.cross_entropy, param, hparams, optimizer, lr, **kw
    )


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 1.0)])
def test_mup_passes(shapes, optimizer, lr):
    result = _check(shapes, "mup", optimizer, lr)
    assert result.verdict == "pass", result.offenders
    modules = {"inp", "input_scale", "act1", "hid", "norm", "act2", "readout"}
    assert {s.module for s in result.slopes} == modules
    assert len(result.slopes) == len(modules) * 5
    assert all(abs(s.slope) <= 0.15 for s in result.slopes)
    assert result.max_abs_slope == max(abs(s.slope) for s in result.slopes)
    assert len(result.records) == len(WIDTHS) * len(modules) * 5
    # Zero readout: the output is exactly 0 at step 1 (slope 0), non-zero once trained.
    assert all(r.value == 0.0 for r in result.records if r.module == "readout" and r.step == 1)
    assert all(r.value > 0.0 for r in result.records if r.module == "readout" and r.step == 2)
    # The activations did move during the 5 steps (the check is not of a frozen model).
    act = {(r.width, r.step): r.value for r in result.records if r.module == "hid"}
    assert abs(act[(1024, 5)] / act[(1024, 1)] - 1) > 0.05


def test_sp_adam_fails_naming_the_readout(shapes):
    result = _check(shapes, "sp", "adam", 1e-2)
    assert result.verdict == "fail"
    assert "readout" in result.offenders
    # SP's logits grow ~ linearly in width after one Adam step.
    assert result.slope("readout", 2) > 0.7
    assert result.offenders[0] == max(result.offenders, key=result.worst_slope)


def test_sp_sgd_fails_too(shapes):
    result = _check(shapes, "sp", "sgd", 1.0)
    assert result.verdict == "fail" and "readout" in result.offenders


def test_a_broken_rule_is_caught(shapes):
    # µP with the hidden Adam LR left at lr instead of lr / m: the hidden layer's output grows.
    hidden = mucore.MUP.rules[Role.HIDDEN]
    broken = dataclasses.replace(
        mucore.MUP,
        name="mup-no-hidden-lr",
        rules={
            **mucore.MUP.rules,
            Role.HIDDEN: dataclasses.replace(hidden, lr_exp={**hidden.lr_exp, "adam": 0.0}),
        },
    )
    result = _check(shapes, broken, "adam", 1e-2)
    assert result.verdict == "fail"
    assert "hid" in result.offenders and result.slope("hid", 5) > 0.3
    assert result.param == "mup-no-hidden-lr"


def test_nonzero_readout_shrinks_like_inverse_sqrt_m_at_init_and_passes(shapes):
    # Table 8 form: readout init std constant, input x alpha_out / m -> output ~ 1/sqrt(m) at
    # init, which µP allows (the role-aware verdict); once trained the output is flat.
    result = _check(shapes, "mup", "adam", 1e-2, hparams=mucore.HParams())
    assert result.slope("readout", 1) == pytest.approx(-0.5, abs=0.1)
    assert result.verdict == "pass", result.violations
    assert result.roles["readout"] == "readout" and result.roles["hid"] == "feature"
    assert all(abs(result.slope("readout", t)) <= 0.15 for t in range(2, 6))


def _readout_mult_at_one(base: mucore.Parametrization) -> mucore.Parametrization:
    """µP with SP's rule on the readout: forward multiplier alpha_out, not alpha_out / m."""
    out = base.rules[Role.OUTPUT]
    return dataclasses.replace(
        base, name=f"{base.name}-readout-mult-1",
        rules={**base.rules, Role.OUTPUT: dataclasses.replace(out, forward_exp=0.0)},
    )


def test_readout_multiplier_held_at_one_fails_naming_the_readout_and_the_rule(shapes):
    result = _check(shapes, _readout_mult_at_one(mucore.MUP), "adam", 1e-2,
                    hparams=mucore.HParams())
    assert result.verdict == "fail" and result.offenders[0] == "readout"
    first = next(v for v in result.violations if v.module == "readout")
    assert first.rule == "no_growth" and first.role == "readout"
    assert "'readout' (readout)" in first.message and "no_growth" in first.message
    assert result.slope("readout", 1) == pytest.approx(0.5, abs=0.1)  # W0 h sums sqrt(n) terms


def test_readout_multiplier_too_small_fails_once_trained(shapes):
    # alpha_out / m^2: allowed at init (the output may shrink there), caught after updates.
    out = mucore.MUP.rules[Role.OUTPUT]
    tiny = dataclasses.replace(mucore.MUP, name="mup-readout-m2", rules={
        **mucore.MUP.rules, Role.OUTPUT: dataclasses.replace(out, forward_exp=-2.0)})
    result = _check(shapes, tiny, "adam", 1e-2, hparams=mucore.HParams())
    assert result.verdict == "fail" and result.offenders[0] == "readout"
    assert {v.rule for v in result.violations if v.module == "readout"} == {"readout_moves"}
    assert all(v.step >= 2 for v in result.violations if v.module == "readout")


class ResidualMLP(nn.Module):
    """What a user writes: Linear in, two pre-norm residual blocks, a mucore.Readout head."""

    def __init__(self, width: int, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(D_IN, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(),
                          nn.Linear(2 * width, width))
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        self.head = mucore.Readout(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:  # (B, 12) -> (B, 5)
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(self.norm(h))


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-2), ("sgd", 0.3)])
def test_users_residual_mlp_with_its_own_init_passes_and_fails_with_readout_mult_one(
        optimizer, lr):
    shapes = mucore.infer_base_shapes(ResidualMLP, 64)

    def check(param: str | mucore.Parametrization) -> mucore.CoordCheckResult:
        return mucore.coord_check(ResidualMLP, shapes, WIDTHS, mlp_batch(32), F.cross_entropy,
                                  param, mucore.HParams(), optimizer, lr)

    good = check("mup")
    assert good.verdict == "pass", good.violations
    assert good.slope("head", 1) == pytest.approx(-0.5, abs=0.1)
    assert good.roles["head"] == "readout" and good.roles["blocks.0.1"] == "feature"
    bad = check(_readout_mult_at_one(mucore.MUP))
    assert bad.verdict == "fail" and "head" in bad.offenders
    assert {v.rule for v in bad.violations if v.module == "head"} == {"no_growth"}
    assert check("sp").verdict == "fail"


def _slopes(*rows: tuple[str, int, float]) -> list[mucore.CoordSlope]:
    return [mucore.CoordSlope(m, t, s) for m, t, s in rows]


def test_summarize_rules_by_role():
    roles = {"out": "readout", "h": "feature"}

    def rules(*rows: tuple[str, int, float]) -> list[tuple[str, int, str]]:
        result = summarize("mup", [64, 128], 3, 0.15, [], _slopes(*rows), roles)
        return [(v.module, v.step, v.rule) for v in result.violations]

    # The readout may shrink like 1/sqrt(m) at init, and while training takes over.
    assert rules(("out", 1, -0.75), ("out", 2, -0.4), ("out", 3, -0.1)) == []
    assert rules(("out", 2, -0.9)) == [("out", 2, "readout_moves")]
    assert rules(("out", 3, 0.3)) == [("out", 3, "no_growth")]
    # Features may not grow, nor vanish once trained; at init a shrinking one is not judged.
    assert rules(("h", 1, -0.4), ("h", 2, 0.1)) == []
    assert rules(("h", 2, -0.4)) == [("h", 2, "features_move")]
    assert rules(("h", 1, 0.4)) == [("h", 1, "no_growth")]
    assert rules(("h", 1, math.inf), ("x", 2, -0.5)) == [("h", 1, "finite"),
                                                         ("x", 2, "features_move")]
    # Worst first; a readout still shrinking at the last step is a note, not a failure.
    result = summarize("mup", [64, 128], 3, 0.15, [],
                       _slopes(("h", 2, 0.3), ("out", 3, -0.4), ("h", 3, 0.9)), roles)
    assert result.offenders == ["h"] and result.violations[0].step == 3
    assert result.verdict == "fail" and len(result.notes) == 1 and "'out'" in result.notes[0]


def test_log2_slope_rules():
    assert mucore.log2_slope([64, 128, 256], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
    assert mucore.log2_slope([64, 256], [3.0, 1.5]) == pytest.approx(-0.5)
    assert mucore.log2_slope([64, 128], [0.0, 0.0]) == 0.0
    assert mucore.log2_slope([64, 128], [0.0, 1.0]) == math.inf
    assert mucore.log2_slope([64, 128], [1.0, math.nan]) == math.inf


def test_bad_inputs(shapes):
    batch = mlp_batch(8)
    with pytest.raises(ValueError, match="widths must increase: got 64 after 128"):
        mucore.coord_check(ToyMLP, shapes, [128, 64], batch, F.cross_entropy)
    with pytest.raises(ValueError, match="at least two widths"):
        mucore.coord_check(ToyMLP, shapes, [64], batch, F.cross_entropy)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        mucore.coord_check(ToyMLP, shapes, [64, 128], batch, F.cross_entropy, steps=0)


def test_to_dict_is_the_json_contract(shapes):
    result = mucore.coord_check(
        ToyMLP, shapes, [64, 128], mlp_batch(8), F.cross_entropy, "mup", ZERO_READOUT, steps=2
    )
    d = json.loads(json.dumps(result.to_dict()))
    assert d["param"] == "mup" and d["verdict"] == result.verdict
    assert d["max_abs_slope"] == pytest.approx(result.max_abs_slope)
    assert set(d["modules"][0]) == {"module", "step", "slope"}
    assert set(d["records"][0]) == {"width", "module", "step", "value"}
    assert len(d["modules"]) == 7 * 2 and d["offenders"] == []
    assert d["roles"]["readout"] == "readout" and d["roles"]["inp"] == "feature"
    assert d["violations"] == [] and d["notes"] == []


# --- One ladder machinery: the depth axis, and repeated module calls on every axis ---------


@pytest.fixture(scope="module")
def depth_shapes() -> mucore.BaseShapes:
    return mucore.infer_base_shapes(ResNet, 32, base_depth=2)


def test_coord_check_depth_measures_what_every_depth_shares(depth_shapes: mucore.BaseShapes) -> None:
    torch.manual_seed(0)
    batch = (torch.randn(16, D_IN), torch.randint(0, N_OUT, (16,)))
    result = mucore.coord_check_depth(ResNet, depth_shapes, [2, 4, 8], 32, batch, F.cross_entropy,
                                      "completep", steps=3)
    modules = {r.module for r in result.records}
    assert modules == {"inp", "input_scale", "blocks.last", "blocks.last.norm", "blocks.last.fc",
                       "blocks.last.proj", "norm", "readout"}  # never the branch multiplier
    assert {(s.module, s.step) for s in result.slopes} == {(m, t) for m in modules
                                                            for t in (1, 2, 3)}
    assert result.max_abs_slope == max(abs(s.slope) for s in result.slopes)
    assert result.verdict == ("pass" if result.max_abs_slope <= 0.15 else "fail")
    data = result.to_dict()
    assert (data["axis"], data["depths"], data["param"]) == ("depth", [2, 4, 8], "completep")


def test_coord_check_depth_refuses_width_only_shapes_and_bad_ladders(
    depth_shapes: mucore.BaseShapes,
) -> None:
    batch = (torch.randn(4, D_IN), torch.randint(0, N_OUT, (4,)))
    flat = mucore.infer_base_shapes(lambda w: ResNet(w, 2), 32)
    with pytest.raises(ValueError, match="base shapes know no depth.*base_depth"):
        mucore.coord_check_depth(ResNet, flat, [2, 4], 32, batch, F.cross_entropy)
    with pytest.raises(ValueError, match="depths must increase: got 2 after 4"):
        mucore.coord_check_depth(ResNet, depth_shapes, [4, 2], 32, batch, F.cross_entropy)


class TwiceResNet(ResNet):
    """`ResNet` whose `input_scale` runs twice per forward, on inputs of different sizes (a
    module reused across positions or blocks)."""

    def forward(self, x: Tensor) -> Tensor:
        h = self.input_scale(self.inp(x))
        h = self.input_scale(3.0 * h)
        for block in self.blocks:
            h = block(h)
        return self.readout(self.norm(h))


def _call_means(model: nn.Module, shapes: mucore.BaseShapes, param: str, x: Tensor) -> list[float]:
    """mean |output| of each `input_scale` call in one forward of `model` parametrized as the
    coord check does (torch seeded 0 before the build, parametrize seed 0)."""
    mucore.parametrize(model, shapes, param, mucore.HParams(), seed=0)
    calls: list[float] = []
    hook = model.input_scale.register_forward_hook(
        lambda _m, _i, out: calls.append(out.detach().abs().float().mean().item()))
    model(x)
    hook.remove()
    return calls


@pytest.mark.parametrize("axis", ["width", "depth"])
def test_a_module_called_twice_is_recorded_as_the_mean_of_its_calls(axis: str) -> None:
    """Every axis records a repeated module the same way: the mean of its calls' mean |x|
    (not the last call, which the depth check once kept)."""
    torch.manual_seed(0)
    batch = (torch.randn(16, D_IN), torch.randint(0, N_OUT, (16,)))
    if axis == "width":
        shapes = mucore.infer_base_shapes(lambda w: TwiceResNet(w, 2), 32)
        result = mucore.coord_check(lambda w: TwiceResNet(w, 2), shapes, [32, 64], batch,
                                    F.cross_entropy, "mup", steps=1)
        build, param = (lambda v: TwiceResNet(v, 2)), "mup"
    else:
        shapes = mucore.infer_base_shapes(TwiceResNet, 32, base_depth=2)
        result = mucore.coord_check_depth(TwiceResNet, shapes, [2, 4], 32, batch,
                                          F.cross_entropy, "completep", steps=1)
        build, param = (lambda v: TwiceResNet(32, v)), "completep"
    assert result.axis == axis
    recorded = {r.rung: r.value for r in result.records if r.module == "input_scale"}
    for rung in result.ladder:
        torch.manual_seed(0)
        calls = _call_means(build(rung), shapes, param, batch[0])
        assert len(calls) == 2 and calls[1] > 2.0 * calls[0]  # the last call alone differs
        assert recorded[rung] == pytest.approx(sum(calls) / 2, rel=1e-5)


def test_width_and_depth_results_share_one_json_shape(shapes, depth_shapes) -> None:
    """One result type and one slopes shape: `modules` [{module, step, slope}] on both axes,
    records keyed by the axis, the rungs under the axis's plural."""
    torch.manual_seed(0)
    batch = (torch.randn(8, D_IN), torch.randint(0, N_OUT, (8,)))
    wide = _check(shapes, "mup", "adam", 1e-2, steps=2).to_dict()
    deep = mucore.coord_check_depth(ResNet, depth_shapes, [2, 4], 32, batch, F.cross_entropy,
                                    steps=2).to_dict()
    assert (wide["axis"], wide["widths"], deep["axis"], deep["depths"], deep["width"]) == (
        "width", WIDTHS, "depth", [2, 4], 32)
    common = set(wide) - {"widths"}
    assert common <= set(deep) and set(deep) - common == {"depths", "width"}
    assert set(wide["modules"][0]) == set(deep["modules"][0]) == {"module", "step", "slope"}
    assert set(wide["records"][0]) == {"width", "module", "step", "value"}
    assert set(deep["records"][0]) == {"depth", "module", "step", "value"}
    assert json.loads(json.dumps(deep))["modules"] == deep["modules"]


def test_a_flat_ladder_fails_a_shrinking_feature_even_at_init() -> None:
    """Depth is judged flat (`no_shrink` at step 1 too); width lets features shrink at init."""
    slopes = [mucore.CoordSlope("hid", 1, -0.6)]
    flat = summarize("completep", [2, 4], 1, 0.15, [], slopes, axis="depth", judge="flat")
    assert flat.verdict == "fail" and flat.violations[0].rule == "no_shrink"
    assert "per depth doubling" in flat.violations[0].message
    assert summarize("mup", [64, 128], 1, 0.15, [], slopes).verdict == "pass"

