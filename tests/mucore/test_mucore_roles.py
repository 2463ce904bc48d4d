"""Role inference (TP5 Table 8 roles from two builds), overrides, and loud, actionable errors."""

from __future__ import annotations

import pytest
import torch
from mucore_toys import ToyCNN, ToyMLP, ToyTransformer
from torch import Tensor, nn

import mucore
from mucore import Role, ShapeInferenceError


def _roles(shapes: mucore.BaseShapes) -> dict[str, Role]:
    return {name: p.role for name, p in shapes.params.items()}


def test_linear_layernorm_roles():
    roles = _roles(mucore.infer_base_shapes(ToyMLP, 32))
    assert roles == {
        "inp.weight": Role.INPUT,  # (w, 12): width-like fan_out only
        "inp.bias": Role.VECTOR,
        "hid.weight": Role.HIDDEN,  # (w, w)
        "hid.bias": Role.VECTOR,
        "norm.weight": Role.VECTOR,
        "norm.bias": Role.VECTOR,
        "readout.weight": Role.OUTPUT,  # (5, w): width-like fan_in only
        "readout.bias": Role.VECTOR,
    }


def test_embedding_is_input_like_and_attention_is_hidden():
    shapes = mucore.infer_base_shapes(ToyTransformer, 32)
    roles = _roles(shapes)
    # nn.Embedding is (vocab, width): width is dim 1, yet it is input-like, not output.
    assert roles["tok.weight"] is Role.INPUT and roles["pos.weight"] is Role.INPUT
    assert shapes.params["tok.weight"].is_embedding
    assert roles["attn.qkv.weight"] is Role.HIDDEN and roles["attn.proj.weight"] is Role.HIDDEN
    assert roles["readout.weight"] is Role.OUTPUT
    info = shapes.info_for(ToyTransformer(128))
    assert info["tok.weight"].width_mult == 4.0 and info["tok.weight"].fan_in == 1
    assert (
        info["attn.qkv.weight"].fan_in_mult == 4.0 and info["attn.qkv.weight"].fan_out_mult == 4.0
    )
    assert shapes.params["ln1.weight"].is_norm_gain


def test_conv_and_batchnorm_roles():
    shapes = mucore.infer_base_shapes(ToyCNN, 16)
    roles = _roles(shapes)
    assert roles["stem.weight"] is Role.INPUT  # (w, 3, 3, 3)
    assert roles["conv.weight"] is Role.HIDDEN  # (w, w, 3, 3)
    assert roles["bn.weight"] is Role.VECTOR and roles["bn.bias"] is Role.VECTOR
    assert roles["readout.weight"] is Role.OUTPUT
    info = shapes.info_for(ToyCNN(64))
    assert info["conv.weight"].fan_in == 64 * 9 and info["conv.weight"].base_fan_in == 16 * 9
    assert info["conv.weight"].width_mult == 4.0
    # BatchNorm buffers are not parameters and are left alone by parametrize.
    model = ToyCNN(64)
    mucore.parametrize(model, shapes, "mup")
    assert torch.all(model.bn.running_var == 1) and torch.all(model.bn.weight == 1)


class _WithFixedMatrix(ToyMLP):
    """ToyMLP plus a 4x4 matrix that does not grow with width."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        self.fixed = nn.Linear(4, 4, bias=False)


def test_matrix_without_width_dim_errors_with_fix_and_override_fixes_it():
    with pytest.raises(ShapeInferenceError) as err:
        mucore.infer_base_shapes(_WithFixedMatrix, 32)
    msg = str(err.value)
    assert "'fixed.weight'" in msg and "no width-like dimension" in msg
    assert "overrides={'fixed.weight': 'vector'}" in msg
    shapes = mucore.infer_base_shapes(_WithFixedMatrix, 32, overrides={"fixed.weight": "vector"})
    assert shapes.params["fixed.weight"].role is Role.VECTOR
    model = _WithFixedMatrix(128)
    own = model.fixed.weight.detach().clone()
    setup = mucore.parametrize(model, shapes, "mup")
    # A vector-like matrix with no width dim keeps its base LR under every rule, and the
    # model's own init (µP's rule for it is "as in the base model").
    assert setup.parametrization.lr_mult(setup.param("fixed.weight"), "sgd") == 1.0
    assert torch.equal(model.fixed.weight, own)


def test_override_changes_an_inferred_role():
    shapes = mucore.infer_base_shapes(ToyMLP, 32, overrides={"hid.weight": Role.INPUT})
    assert shapes.params["hid.weight"].role is Role.INPUT


class _ExtraLayerWhenWide(ToyMLP):
    def __init__(self, width: int) -> None:
        super().__init__(width)
        if width > 32:
            self.extra = nn.Linear(width, width)


class _RankChanges(ToyMLP):
    def __init__(self, width: int) -> None:
        super().__init__(width)
        shape = (width,) if width == 32 else (width, 1)
        self.gain = nn.Parameter(torch.ones(shape))


def test_parameters_at_only_one_width_error():
    with pytest.raises(ShapeInferenceError, match=r"extra\.weight.*only one of widths 32 and 64"):
        mucore.infer_base_shapes(_ExtraLayerWhenWide, 32)


def test_rank_change_errors():
    with pytest.raises(ShapeInferenceError, match=r"'gain' changes rank between widths"):
        mucore.infer_base_shapes(_RankChanges, 32)


def test_unknown_override_errors_and_lists_known_names():
    with pytest.raises(
        ShapeInferenceError, match=r"unknown parameters \['hidden\.weight'\].*hid\.weight"
    ):
        mucore.infer_base_shapes(ToyMLP, 32, overrides={"hidden.weight": "hidden"})
    with pytest.raises(ShapeInferenceError, match=r"'hid\.weight' has unknown role 'middle'"):
        mucore.infer_base_shapes(ToyMLP, 32, overrides={"hid.weight": "middle"})


def test_model_from_another_family_errors():
    shapes = mucore.infer_base_shapes(ToyMLP, 32)
    with pytest.raises(ShapeInferenceError, match=r"'tok\.weight' is not in the base shapes"):
        mucore.parametrize(ToyTransformer(64), shapes, "mup")


def test_finite_dim_changed_errors():
    shapes = mucore.infer_base_shapes(ToyMLP, 32)
    model = ToyMLP(64)
    model.readout = mucore.Readout(64, 7)  # 7 classes instead of 5: a finite dim changed
    with pytest.raises(ShapeInferenceError, match=r"'readout\.weight' dim 0 is finite"):
        mucore.parametrize(model, shapes, "mup")


class _PlainLinearHead(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.inp = nn.Linear(12, width)
        self.head = nn.Linear(width, 5)  # should have been mucore.Readout

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.relu(self.inp(x)))


def test_plain_linear_readout_is_refused_under_mup_but_fine_in_plain_sp():
    shapes = mucore.infer_base_shapes(_PlainLinearHead, 32)
    with pytest.raises(ValueError, match=r"'head\.weight' is output-like.*mucore\.Readout"):
        mucore.parametrize(_PlainLinearHead(64), shapes, "mup")
    # SP with alpha_out = 1 needs no forward multiplier, so a plain head is correct there.
    mucore.parametrize(_PlainLinearHead(64), shapes, "sp")
    with pytest.raises(ValueError, match=r"'head\.weight' is output-like"):
        mucore.parametrize(_PlainLinearHead(64), shapes, "sp", mucore.HParams(output_mult=2.0))


def test_bad_base_widths():
    with pytest.raises(ValueError, match="base_width must be positive"):
        mucore.infer_base_shapes(ToyMLP, 0)
    with pytest.raises(ValueError, match="delta_width must differ"):
        mucore.infer_base_shapes(ToyMLP, 32, delta_width=32)
