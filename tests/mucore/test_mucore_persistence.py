"""µP metadata lives in name-keyed data and plain module floats, so it survives torch.compile,
deepcopy and a state_dict round trip (unlike attributes bolted onto tensors)."""

from __future__ import annotations

import copy

import pytest
import torch
from mucore_toys import ToyMLP, mlp_batch

import mucore

BASE, WIDTH = 32, 128
HP = mucore.HParams(output_mult=2.0, input_mult=1.5)


def _setup(seed: int = 0) -> tuple[ToyMLP, mucore.MuSetup, mucore.BaseShapes]:
    shapes = mucore.infer_base_shapes(ToyMLP, BASE)
    model = ToyMLP(WIDTH)
    return model, mucore.parametrize(model, shapes, "mup", HP, seed=seed), shapes


def _groups(opt: torch.optim.Optimizer) -> list[tuple[str, float, tuple[str, ...]]]:
    return [(g["role"], g["lr"], tuple(g["param_names"])) for g in opt.param_groups]


def test_compiled_model_gets_the_same_groups_and_outputs():
    eager, setup, shapes = _setup()
    compiled = torch.compile(copy.deepcopy(eager), backend="inductor")
    # parametrize and build_optimizer take the compiled wrapper (names gain '_orig_mod.').
    assert any(n.startswith("_orig_mod.") for n, _ in compiled.named_parameters())
    c_setup = mucore.parametrize(compiled, shapes, "mup", HP, seed=0)
    assert c_setup.info.keys() == setup.info.keys()
    eager_opt = mucore.build_optimizer(eager, setup, "adam", 1e-2)
    compiled_opt = mucore.build_optimizer(compiled, c_setup, "adam", 1e-2)
    assert _groups(compiled_opt) == _groups(eager_opt)
    assert compiled._orig_mod.readout.forward_mult == pytest.approx(2.0 / 4)
    x, _ = mlp_batch()
    try:
        out = compiled(x)
    except torch._dynamo.exc.BackendCompilerFailed as exc:  # pragma: no cover - no C++ toolchain
        # torch.compile's inductor backend needs a C++ compiler; the metadata checks above are
        # what this test is about, and they ran on the compiled wrapper.
        pytest.xfail(f"inductor could not compile on this machine: {type(exc).__name__}")
    torch.testing.assert_close(out, eager(x), rtol=1e-5, atol=1e-6)


def test_deepcopy_keeps_forward_multipliers_and_outputs():
    model, _, _ = _setup()
    clone = copy.deepcopy(model)
    assert clone.readout.forward_mult == model.readout.forward_mult == pytest.approx(0.5)
    assert clone.input_scale.forward_mult == 1.5
    x, _ = mlp_batch()
    assert torch.equal(clone(x), model(x))


def test_state_dict_round_trip_through_json_base_shapes(tmp_path):
    model, _, shapes = _setup(seed=5)
    shapes.save(tmp_path / "shapes.json")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    loaded_shapes = mucore.BaseShapes.load(tmp_path / "shapes.json")
    assert loaded_shapes == shapes
    fresh = ToyMLP(WIDTH)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"))
    x, _ = mlp_batch()
    # Weights alone are not the model: the multipliers are not in the state_dict.
    assert not torch.equal(fresh(x), model(x))
    setup = mucore.parametrize(fresh, loaded_shapes, "mup", HP, reinit=False)
    assert torch.equal(fresh(x), model(x))
    assert setup.to_dict()["base_shapes"] == shapes.to_dict()


def test_reinit_is_idempotent_and_seeded():
    model, _, shapes = _setup(seed=7)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mucore.parametrize(model, shapes, "mup", HP, seed=7)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n
    mucore.parametrize(model, shapes, "mup", HP, seed=8)
    assert not torch.equal(model.hid.weight, before["hid.weight"])
