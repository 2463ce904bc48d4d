"""The zoo under the depth tables: branch multipliers on every residual branch of the GPT and
LLaMA, the residual MLP variant, and SP == CompleteP at the base width and depth."""

from __future__ import annotations

import pickle

import pytest
import torch
from pydantic import TypeAdapter

import mucore
from experiments.errors import UserError
from experiments.models import (
    CNNConfig,
    GPTConfig,
    LlamaConfig,
    MLPConfig,
    ModelConfig,
    build_model,
    depth_model_factory,
)
from experiments.tasks import TaskConfig, TaskInfo, load_task, task_info

torch.set_num_threads(1)

BASE_WIDTH, BASE_DEPTH, SEQ = 16, 2, 8


def _info(name: str) -> TaskInfo:
    return task_info(TaskConfig(name=name, seq_len=SEQ))  # type: ignore[arg-type]


def _branches(model: torch.nn.Module) -> list[float]:
    return [m.forward_mult for m in model.modules() if isinstance(m, mucore.ResidualBranch)]


@pytest.mark.parametrize("cfg", [GPTConfig(), LlamaConfig()], ids=["gpt", "llama"])
@pytest.mark.parametrize(("param", "expected"),
                         [("sp", 1.0), ("mup", 1.0), ("completep", 0.25), ("depth-mup", 0.5)])
def test_transformers_scale_both_branches_of_every_block(
    cfg: ModelConfig, param: str, expected: float
) -> None:
    info = _info("bytes")
    factory = depth_model_factory(cfg, info)
    shapes = mucore.infer_base_shapes(factory, BASE_WIDTH, base_depth=BASE_DEPTH)
    assert shapes.block_prefix == "blocks" and shapes.base_blocks == BASE_DEPTH
    model = factory(32, 8)
    setup = mucore.parametrize(model, shapes, param)
    assert setup.depth_mult == 4.0
    assert _branches(model) == [expected] * 16  # 8 blocks x (attention, MLP)
    rows = {r.name: r for r in mucore.describe(setup)}
    assert rows["blocks.7.mlp.fc.weight" if isinstance(cfg, GPTConfig)
                else "blocks.7.mlp.down_proj.weight"].depth_mult == 4.0
    assert rows["tok_emb.weight"].depth_mult is None


def test_the_residual_mlp_is_opt_in_and_depth_inferable() -> None:
    assert "residual" not in MLPConfig().model_dump()  # old specs and bundles keep their bytes
    cfg = TypeAdapter(ModelConfig).validate_python({"kind": "mlp", "residual": True, "depth": 3})
    assert isinstance(cfg, MLPConfig) and cfg.model_dump()["residual"] is True
    info = _info("digits")
    plain = build_model(MLPConfig(depth=3), info, 32)
    assert not hasattr(plain, "blocks")
    factory = depth_model_factory(cfg, info)
    pickle.dumps(factory)  # workers receive it
    shapes = mucore.infer_base_shapes(factory, BASE_WIDTH, base_depth=3)
    assert (shapes.block_prefix, shapes.base_blocks) == ("blocks", 2)  # depth - 1 blocks
    roles = {n: p.role.value for n, p in shapes.params.items() if p.in_block}
    assert roles == {f"blocks.{i}.{k}": r for i in range(2) for k, r in
                     [("norm.weight", "vector"), ("norm.bias", "vector"),
                      ("fc.weight", "hidden"), ("fc.bias", "vector")]}
    model = factory(64, 9)  # 8 blocks: m_L = 4
    mucore.parametrize(model, shapes, "completep")
    assert _branches(model) == [0.25] * 8
    x, _ = load_task(TaskConfig(name="digits")).batch("train", 4, torch.Generator().manual_seed(0))
    assert model(x).shape == (4, info.n_outputs)


@pytest.mark.parametrize("cfg", [GPTConfig(), MLPConfig(residual=True)], ids=["gpt", "mlp"])
def test_completep_is_sp_at_the_base_width_and_depth(cfg: ModelConfig) -> None:
    name = "bytes" if isinstance(cfg, GPTConfig) else "digits"
    info = _info(name)
    factory = depth_model_factory(cfg, info)
    shapes = mucore.infer_base_shapes(factory, BASE_WIDTH, base_depth=BASE_DEPTH)
    x, _ = load_task(TaskConfig(name=name, seq_len=SEQ)).batch(  # type: ignore[arg-type]
        "train", 3, torch.Generator().manual_seed(0))
    outs = []
    for param in ("sp", "completep", "depth-mup"):
        model = factory(BASE_WIDTH, BASE_DEPTH)
        mucore.parametrize(model, shapes, param, seed=1)
        outs.append(model(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_a_model_without_depth_has_no_depth_factory() -> None:
    with pytest.raises(UserError, match="no depth to scale"):
        depth_model_factory(CNNConfig(), _info("digits"))


def test_coord_check_over_depth_on_the_gpt_flat_for_completep_growing_for_mup() -> None:
    """Depth transfer's acceptance bound: GPT width 64, depths 2..16; CompleteP max |slope| <= 0.15 while
    plain µP's residual stream grows with depth (figures: about 0.12 and 1.2)."""
    tc = TaskConfig(name="bytes", seq_len=32)  # type: ignore[arg-type]
    factory = depth_model_factory(GPTConfig(), task_info(tc))
    shapes = mucore.infer_base_shapes(factory, 64, base_depth=2)
    batch = load_task(tc).batch("train", 16, torch.Generator().manual_seed(0))

    def loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())

    results = {p: mucore.coord_check_depth(factory, shapes, [2, 4, 8, 16], 64, batch, loss, p,
                                           lr=1e-2)
               for p in ("completep", "mup")}
    assert results["completep"].max_abs_slope <= 0.15
    assert results["completep"].verdict == "pass"
    grow = {(s.module, s.step): s.slope for s in results["mup"].slopes}
    assert grow[("blocks.last", 5)] > 0.5  # the stream is a sum of L branches under µP
    assert results["mup"].verdict == "fail"
