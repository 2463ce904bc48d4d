"""The fact-sheet numbers (TP5 Table 8) at 16x the base width, read from what mucore actually
builds: optimizer groups, forward multipliers, and the std of the tensors it draws."""

from __future__ import annotations

import math

import pytest
import torch
from mucore_toys import D_IN, ToyCNN, ToyMLP, ToyTransformer

import mucore

BASE, M = 32, 16
WIDTH = BASE * M
SIGMA, ALPHA_OUT, LR = 0.7, 3.0, 0.01
HP = mucore.HParams(init_std=SIGMA, output_mult=ALPHA_OUT)


def _group_lrs(model, setup, optimizer: str) -> dict[str, float]:
    """Parameter name -> the LR of the optimizer group that holds it."""
    opt = mucore.build_optimizer(model, setup, optimizer, LR)
    return {n: g["lr"] for g in opt.param_groups for n in g["param_names"]}


@pytest.fixture(scope="module")
def wide_mlp():
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    model = ToyMLP(WIDTH)
    return model, mucore.parametrize(model, shapes, "mup", HP, seed=1)


def test_adam_lr_multipliers_at_16x(wide_mlp):
    model, setup = wide_mlp
    lrs = _group_lrs(model, setup, "adam")
    assert lrs["hid.weight"] == pytest.approx(LR / M)  # hidden: lr / m
    assert lrs["inp.weight"] == pytest.approx(LR)  # input-like: lr
    assert lrs["readout.weight"] == pytest.approx(LR)  # output: lr (Table 8 form)
    for vec in ("inp.bias", "hid.bias", "norm.weight", "norm.bias", "readout.bias"):
        assert lrs[vec] == pytest.approx(LR), vec
    # The readout applies alpha_out / m in the forward pass.
    assert model.readout.forward_mult == pytest.approx(ALPHA_OUT / M)


def test_sgd_lr_multipliers_at_16x(wide_mlp):
    model, setup = wide_mlp
    lrs = _group_lrs(model, setup, "sgd")
    assert lrs["hid.weight"] == pytest.approx(LR)  # hidden: lr
    assert lrs["inp.weight"] == pytest.approx(LR * M)  # input-like: lr * fan_out mult
    assert lrs["readout.weight"] == pytest.approx(LR * M)  # output: lr * fan_in mult
    for vec in ("inp.bias", "hid.bias", "norm.weight", "norm.bias"):
        assert lrs[vec] == pytest.approx(LR * M), vec
    # A vector with no width-like dim (the readout bias, size n_classes) keeps the base LR.
    assert lrs["readout.bias"] == pytest.approx(LR)


def test_sp_has_one_lr_and_alpha_out_only():
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    model = ToyMLP(WIDTH)
    setup = mucore.parametrize(model, shapes, "sp", HP, seed=1)
    for optimizer in ("adam", "sgd"):
        assert set(_group_lrs(model, setup, optimizer).values()) == {LR}
    assert model.readout.forward_mult == ALPHA_OUT
    # SP readout init is fan-in: it shrinks with width, unlike µP's.
    std = model.readout.weight.std().item()
    assert std == pytest.approx(SIGMA / math.sqrt(WIDTH), rel=0.05)


def test_init_stds_of_drawn_tensors_at_16x(wide_mlp):
    model, _ = wide_mlp
    # hidden: sigma / sqrt(fan_in), falling like 1/sqrt(m) (262144 samples: ~0.2% noise).
    assert model.hid.weight.std().item() == pytest.approx(SIGMA / math.sqrt(WIDTH), rel=0.02)
    # readout: sigma / sqrt(fan_in0), constant in width (2560 samples: ~1.5% noise).
    assert model.readout.weight.std().item() == pytest.approx(SIGMA / math.sqrt(BASE), rel=0.05)
    # input-like: sigma / sqrt(fan_in), fan_in finite, so constant in width.
    assert model.inp.weight.std().item() == pytest.approx(SIGMA / math.sqrt(D_IN), rel=0.05)
    # vectors: biases 0, norm gain 1.
    assert torch.count_nonzero(model.inp.bias) == 0 and torch.count_nonzero(model.hid.bias) == 0
    assert torch.all(model.norm.weight == 1) and torch.all(model.norm.bias == 0)
    # Means are ~0 (a normal draw, not a shifted or uniform one).
    assert abs(model.hid.weight.mean().item()) < 0.01 * SIGMA


def test_readout_std_is_width_independent():
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    stds = []
    for width in (BASE, 4 * BASE, WIDTH):
        model = ToyMLP(width)
        mucore.parametrize(model, shapes, "mup", HP, seed=2)
        stds.append(model.readout.weight.std().item())
    assert max(stds) / min(stds) < 1.1


def test_embedding_and_conv_stds():
    shapes = mucore.infer_base_shapes(ToyTransformer, BASE)
    model = ToyTransformer(WIDTH)
    mucore.parametrize(model, shapes, "mup", HP, seed=1)
    # Embedding (vocab, width) is input-like, fan_in = 1 (one-hot): std sigma at every width.
    assert model.tok.weight.std().item() == pytest.approx(SIGMA, rel=0.05)
    cnn_shapes = mucore.infer_base_shapes(ToyCNN, BASE)
    cnn = ToyCNN(WIDTH)
    mucore.parametrize(cnn, cnn_shapes, "mup", HP, seed=1)
    # Conv (out, in, k, k): fan_in = in * k * k.
    assert cnn.conv.weight.std().item() == pytest.approx(SIGMA / math.sqrt(9 * WIDTH), rel=0.02)
    assert cnn.stem.weight.std().item() == pytest.approx(SIGMA / math.sqrt(27), rel=0.05)


def test_zero_readout_and_zero_query_rows():
    shapes = mucore.infer_base_shapes(ToyTransformer, BASE)
    model = ToyTransformer(4 * BASE)
    hp = mucore.HParams(zero_readout=True, zero_query=True)
    mucore.parametrize(model, shapes, "mup", hp, seed=1)
    width = 4 * BASE
    assert torch.count_nonzero(model.readout.weight) == 0
    qkv = model.attn.qkv.weight  # (3w, w): rows [q; k; v]
    assert torch.count_nonzero(qkv[:width]) == 0
    # Keys and values are drawn normally (only the query rows were zeroed).
    assert qkv[width:].std().item() == pytest.approx(1 / math.sqrt(width), rel=0.05)
    # A zero readout gives an output of exactly zero (plus the zero bias) at any width.
    out = model(torch.zeros(2, 4, dtype=torch.long))
    assert torch.count_nonzero(out) == 0


def test_zero_inits_zero_their_biases_and_nothing_else():
    """`zero_readout` zeroes the whole readout (weight and bias) and `zero_query` the query rows
    of qkv's weight and bias; every other vector keeps the model's own values."""
    shapes = mucore.infer_base_shapes(ToyTransformer, BASE)
    model = ToyTransformer(4 * BASE)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.fill_(0.5)
    hp = mucore.HParams(zero_readout=True, zero_query=True)
    setup = mucore.parametrize(model, shapes, "mup", hp, seed=1)
    width = 4 * BASE
    assert torch.count_nonzero(model.readout.bias) == 0
    assert torch.count_nonzero(model.attn.qkv.bias[:width]) == 0
    assert torch.all(model.attn.qkv.bias[width:] == 0.5)
    assert torch.all(model.attn.proj.bias == 0.5)
    rows = {r.name: r.init for r in mucore.describe(setup)}
    assert (rows["readout.bias"], rows["attn.proj.bias"]) == ("zeros", "own")
