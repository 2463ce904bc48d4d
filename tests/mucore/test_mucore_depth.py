"""Depth rules: CompleteP (alpha = 1) and depth-µP (alpha = 1/2) as tables beside SP and µP.

With m_N = width / base width and m_L = blocks / base blocks, the expected multipliers below
are written out from the formulas (Dey et al. 2025, Table 1; Yang et al. 2023, TP VI):
branch x m_L^(-alpha); hidden Adam LR / m_N x m_L^(alpha - 1); block vectors' Adam LR
x m_L^(alpha - 1); input, final norm and readout as µP; eps scaling: hidden-in-block eps /
(m_N m_L^alpha), input and output eps / m_N.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from mucore_toys import D_IN, N_OUT, ResNet
from torch import Tensor, nn

import mucore

BASE_WIDTH, BASE_DEPTH = 32, 2
HP = mucore.HParams(init_std=0.8, output_mult=2.0, input_mult=1.5)
ALPHA = {"completep": 1.0, "depth-mup": 0.5}


@pytest.fixture(scope="module")
def shapes() -> mucore.BaseShapes:
    return mucore.infer_base_shapes(ResNet, BASE_WIDTH, base_depth=BASE_DEPTH)


def test_blocks_are_inferred_from_two_depths(shapes: mucore.BaseShapes) -> None:
    assert (shapes.block_prefix, shapes.base_blocks, shapes.base_depth) == ("blocks", 2, 2)
    in_block = sorted(n for n, p in shapes.params.items() if p.in_block)
    assert in_block == sorted(
        f"blocks.{i}.{rest}" for i in range(2)
        for rest in ("norm.weight", "norm.bias", "fc.weight", "fc.bias", "proj.weight",
                     "proj.bias")
    )
    assert not any(shapes.params[n].in_block for n in ("inp.weight", "norm.weight",
                                                        "readout.weight"))
    again = mucore.BaseShapes.from_dict(shapes.to_dict())
    assert again == shapes


def test_width_only_api_and_json_are_unchanged() -> None:
    shapes = mucore.infer_base_shapes(lambda w: ResNet(w, 2), BASE_WIDTH)
    data = shapes.to_dict()
    assert set(data) == {"base_width", "params"}
    assert not any("in_block" in p for p in data["params"].values())
    model = ResNet(64, 2)
    setup = mucore.parametrize(model, shapes, "completep", HP)
    rows = mucore.describe(setup)
    assert all(r.depth_mult is None and r.branch_mult is None for r in rows)
    assert model.blocks[0].branch.forward_mult == 1.0


def _expected(name: str, role: str, alpha: float, m_n: float, m_l: float
              ) -> tuple[float, float]:
    """(Adam LR mult, eps divisor) written out from the issue's formulas."""
    in_block = name.startswith("blocks.")
    if role == "hidden":
        return (1 / m_n) * m_l ** (alpha - 1), m_n * m_l**alpha
    if role == "vector":
        return (m_l ** (alpha - 1) if in_block else 1.0), 1.0
    return 1.0, m_n  # input and output, never in a block here


@pytest.mark.parametrize("param", ["completep", "depth-mup"])
@pytest.mark.parametrize(("m_n", "m_l"), [(1, 1), (2, 1), (1, 4), (4, 2), (2, 8), (1, 0.5)])
def test_rules_at_width_and_depth_multipliers(
    shapes: mucore.BaseShapes, param: str, m_n: float, m_l: float
) -> None:
    alpha = ALPHA[param]
    width, depth = int(BASE_WIDTH * m_n), int(BASE_DEPTH * m_l)
    model = ResNet(width, depth)
    setup = mucore.parametrize(model, shapes, param, HP)
    assert setup.depth_mult == m_l
    branch = m_l**-alpha
    assert all(b.branch.forward_mult == pytest.approx(branch) for b in model.blocks)
    assert model.readout.forward_mult == pytest.approx(HP.output_mult / m_n)
    assert model.input_scale.forward_mult == HP.input_mult
    eps = 1e-6
    opt = mucore.build_optimizer(model, setup, "adam", 1e-2, eps=eps, scale_eps=True)
    by_name = {n: g for g in opt.param_groups for n in g["param_names"]}
    rows = {r.name: r for r in mucore.describe(setup)}
    for name, row in rows.items():
        lr_mult, eps_div = _expected(name, row.role, alpha, m_n, m_l)
        assert row.lr_mult == pytest.approx(lr_mult), name
        assert by_name[name]["lr"] == pytest.approx(1e-2 * lr_mult), name
        assert by_name[name]["eps"] == pytest.approx(eps / eps_div), name
        if name.startswith("blocks."):
            assert (row.depth_mult, row.branch_mult) == (pytest.approx(m_l),
                                                         pytest.approx(branch))
        else:
            assert row.depth_mult is None and row.branch_mult is None
    # Init variance has no depth term: hidden weights are drawn as under µP.
    fc = rows["blocks.0.fc.weight"]
    assert fc.init_std == pytest.approx(HP.init_std / math.sqrt(width))
    mup_rows = {r.name: r for r in mucore.describe(
        mucore.parametrize(ResNet(width, depth), shapes, "mup", HP))}
    assert all(rows[n].init_std == mup_rows[n].init_std for n in rows)


def test_mup_and_sp_keep_branches_at_one_at_any_depth(shapes: mucore.BaseShapes) -> None:
    for param in ("sp", "mup"):
        model = ResNet(64, 8)
        setup = mucore.parametrize(model, shapes, param, HP)
        assert setup.depth_mult == 4.0
        assert all(b.branch.forward_mult == 1.0 for b in model.blocks)
        mults = {r.name: r.lr_mult for r in mucore.describe(setup)}
        assert mults["blocks.3.proj.weight"] == (0.5 if param == "mup" else 1.0)


def _train(param: str, shapes: mucore.BaseShapes, optimizer: str) -> tuple[Tensor, dict]:
    torch.manual_seed(0)
    x, y = torch.randn(16, D_IN), torch.randint(0, N_OUT, (16,))
    model = ResNet(BASE_WIDTH, BASE_DEPTH)
    setup = mucore.parametrize(model, shapes, param, HP, seed=3)
    opt = mucore.build_optimizer(model, setup, optimizer, 1e-2, weight_decay=0.1,
                                 scale_eps=True)
    out0 = model(x)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return out0, {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("param", ["mup", "completep", "depth-mup"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_every_parametrization_is_sp_at_base_width_and_depth(
    shapes: mucore.BaseShapes, param: str, optimizer: str
) -> None:
    out_sp, state_sp = _train("sp", shapes, optimizer)
    out, state = _train(param, shapes, optimizer)
    assert torch.equal(out, out_sp)
    assert state.keys() == state_sp.keys()
    assert all(torch.equal(state[k], state_sp[k]) for k in state)


def test_depth_tables_refuse_sgd_by_name(shapes: mucore.BaseShapes) -> None:
    model = ResNet(64, 4)
    setup = mucore.parametrize(model, shapes, "completep")
    with pytest.raises(ValueError, match="'completep' does not support sgd.*adam or adamw"):
        mucore.build_optimizer(model, setup, "sgd", 1e-2)
    with pytest.raises(ValueError, match="does not support sgd"):
        mucore.describe(setup, "sgd")


def test_a_factory_that_ignores_depth_is_refused() -> None:
    with pytest.raises(mucore.ShapeInferenceError, match="same parameters at depths 2 and 4"):
        mucore.infer_base_shapes(lambda w, d: ResNet(w, 2), BASE_WIDTH, base_depth=2)
    with pytest.raises(ValueError, match="delta_depth must be larger"):
        mucore.infer_base_shapes(ResNet, BASE_WIDTH, base_depth=2, delta_depth=2)


class TwoLists(nn.Module):
    """Blocks split over two module lists: which list is 'the' depth is ambiguous."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.a = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.b = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.readout = mucore.Readout(width, N_OUT)


def test_blocks_in_two_lists_are_refused() -> None:
    with pytest.raises(mucore.ShapeInferenceError, match="one nn.ModuleList"):
        mucore.infer_base_shapes(TwoLists, BASE_WIDTH, base_depth=2)


def test_a_model_from_another_family_is_refused(shapes: mucore.BaseShapes) -> None:
    with pytest.raises(mucore.ShapeInferenceError, match="not in the base shapes"):
        mucore.parametrize(TwoLists(64, 2), shapes, "completep")


def test_a_base_depth_without_blocks_is_refused() -> None:
    with pytest.raises(mucore.ShapeInferenceError, match="no residual block in 'blocks'"):
        mucore.infer_base_shapes(lambda w, d: ResNet(w, d - 1), BASE_WIDTH, base_depth=1)


def test_describe_dicts_carry_depth_fields_only_when_set(shapes: mucore.BaseShapes) -> None:
    deep = mucore.describe(mucore.parametrize(ResNet(32, 4), shapes, "completep"))
    rows = {r.name: r.to_dict() for r in deep}
    assert rows["blocks.3.fc.weight"]["depth_mult"] == 2.0
    assert rows["blocks.3.fc.weight"]["branch_mult"] == 0.5
    assert "depth_mult" not in rows["readout.weight"]
    flat = mucore.infer_base_shapes(lambda w: ResNet(w, 2), BASE_WIDTH)
    row = mucore.describe(mucore.parametrize(ResNet(32, 2), flat, "mup"))[0].to_dict()
    assert list(row) == ["name", "shape", "role", "width_mult", "fan_in_mult", "fan_out_mult",
                         "init", "init_std", "forward_mult", "lr_mult"]
