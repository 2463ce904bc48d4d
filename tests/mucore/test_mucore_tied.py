"""Tied input/output embeddings (TP5's weight-tying rule): one tensor, the input role, the output
rule's init constant and forward multiplier. Every mucore entry point must see the shared tensor
once: base shapes, parametrize, optimizer groups, describe and bundles."""

from __future__ import annotations

import math

import pytest
import torch
from test_bundle_apply import make_bundle
from torch import Tensor, nn

import mucore

VOCAB, BASE, M = 24, 16, 8
WIDTH = BASE * M
SIGMA, ALPHA_OUT, LR = 0.7, 3.0, 0.01
HP = mucore.HParams(init_std=SIGMA, output_mult=ALPHA_OUT)


class ToyTiedLM(nn.Module):
    """Embedding(24, w) -> Linear(w, w) -> ReLU -> TiedReadout (the embedding's weight)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, width)
        self.hid = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.readout = mucore.TiedReadout(self.emb)

    def forward(self, idx: Tensor) -> Tensor:  # (B, T) -> (B, T, vocab)
        return self.readout(self.act(self.hid(self.emb(idx))))


def _idx() -> Tensor:
    return torch.randint(0, VOCAB, (3, 5), generator=torch.Generator().manual_seed(0))


def test_the_shared_weight_is_one_input_like_parameter() -> None:
    shapes = mucore.infer_base_shapes(ToyTiedLM, BASE)
    assert set(shapes.params) == {"emb.weight", "hid.weight", "hid.bias"}
    tied = shapes.params["emb.weight"]
    assert tied.role is mucore.Role.INPUT and tied.is_tied_readout and tied.is_embedding
    model = ToyTiedLM(WIDTH)
    assert model.readout.weight is model.emb.weight
    assert "readout.weight" not in model.state_dict()
    # Serialised only when set, so base shapes of untied models are unchanged; round trips.
    data = shapes.to_dict()
    assert data["params"]["emb.weight"]["is_tied_readout"] is True
    assert "is_tied_readout" not in data["params"]["hid.weight"]
    assert mucore.BaseShapes.from_dict(data) == shapes


def test_mup_rules_of_the_tied_weight_at_8x() -> None:
    shapes = mucore.infer_base_shapes(ToyTiedLM, BASE)
    model = ToyTiedLM(WIDTH)
    setup = mucore.parametrize(model, shapes, "mup", HP, seed=1)
    # Forward: the output rule's alpha_out / m on the readout input.
    assert model.readout.forward_mult == pytest.approx(ALPHA_OUT / M)
    # Init: the output row's constant sigma / sqrt(fan_in0), the same at every width.
    assert model.emb.weight.std().item() == pytest.approx(SIGMA / math.sqrt(BASE), rel=0.05)
    # LR: the input row's (Adam: lr; SGD: lr * m), the same exponents as the output row's.
    for optimizer, mult in (("adam", 1.0), ("sgd", M)):
        opt = mucore.build_optimizer(model, setup, optimizer, LR)
        owners = [g for g in opt.param_groups if "emb.weight" in g["param_names"]]
        assert len(owners) == 1 and owners[0]["param_names"].count("emb.weight") == 1
        assert owners[0]["lr"] == pytest.approx(LR * mult)
        n_params = sum(len(g["params"]) for g in opt.param_groups)
        assert n_params == len(list(model.parameters())) == 3
    rows = {r.name: r for r in mucore.describe(setup, "adam")}
    assert list(rows) == ["emb.weight", "hid.weight", "hid.bias"]
    assert rows["emb.weight"].role == "input"
    assert rows["emb.weight"].init_std == pytest.approx(SIGMA / math.sqrt(BASE))
    # zero_readout cannot zero a tied weight: it is also the embedding.
    mucore.parametrize(model, shapes, "mup", mucore.HParams(zero_readout=True))
    assert model.emb.weight.abs().sum() > 0


def test_sp_rules_of_the_tied_weight() -> None:
    shapes = mucore.infer_base_shapes(ToyTiedLM, BASE)
    model = ToyTiedLM(WIDTH)
    mucore.parametrize(model, shapes, "sp", HP, seed=1)
    assert model.readout.forward_mult == ALPHA_OUT
    assert model.emb.weight.std().item() == pytest.approx(SIGMA / math.sqrt(WIDTH), rel=0.05)


def test_tied_sp_equals_mup_at_the_base_width() -> None:
    shapes = mucore.infer_base_shapes(ToyTiedLM, BASE)
    out = {}
    for param in ("sp", "mup"):
        torch.manual_seed(4)  # the bias keeps the model's own init: the same in both models
        model = ToyTiedLM(BASE)
        setup = mucore.parametrize(model, shapes, param, HP, seed=4)
        opt = mucore.build_optimizer(model, setup, "adam", LR)
        model(_idx()).square().mean().backward()
        opt.step()
        out[param] = model(_idx())
    assert torch.equal(out["sp"], out["mup"])


def test_bundle_applies_to_a_tied_model() -> None:
    bundle = mucore.load_bundle(make_bundle(ToyTiedLM, WIDTH))
    model, opt = mucore.apply_bundle(bundle, ToyTiedLM(WIDTH), seed=0)
    names = [n for g in opt.param_groups for n in g["param_names"]]
    assert sorted(names) == ["emb.weight", "hid.bias", "hid.weight"]
    assert model.readout.forward_mult == pytest.approx(2.0 / M)  # make_bundle's alpha_out is 2
    assert model.readout.weight is model.emb.weight


class _Unregistered(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.hid = nn.Linear(width, width)
        self.readout = mucore.TiedReadout(nn.Embedding(VOCAB, width))  # owner not registered


class _TiedToHidden(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(width, width)  # both dims grow: not an input-like embedding
        self.readout = mucore.TiedReadout(self.emb)


def test_misuse_is_refused_with_the_fix() -> None:
    with pytest.raises(mucore.ShapeInferenceError, match="make the embedding a submodule"):
        mucore.infer_base_shapes(_Unregistered, BASE)
    with pytest.raises(mucore.ShapeInferenceError, match="embedding 'emb.weight'"):
        mucore.infer_base_shapes(_TiedToHidden, BASE)
    shapes = mucore.infer_base_shapes(
        _TiedToHidden, BASE, overrides={"emb.weight": "hidden"}
    )
    with pytest.raises(ValueError, match="tie the readout to an nn.Embedding"):
        mucore.parametrize(_TiedToHidden(WIDTH), shapes, "mup")
