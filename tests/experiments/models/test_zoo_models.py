"""experiments.models: shapes, µP roles through mucore, head modes, checks, SP == µP at base."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

import mucore
from experiments.errors import UserError
from experiments.models import (
    CNNConfig,
    GPTConfig,
    MLPConfig,
    ModelConfig,
    build_model,
    check_task,
    check_widths,
    count_params,
    model_factory,
)
from experiments.models.gpt import CausalSelfAttention
from experiments.tasks import TaskConfig, TaskInfo, load_task, task_info

torch.set_num_threads(1)

BASE = 16
SEQ = 8


def _info(name: str) -> TaskInfo:
    return task_info(TaskConfig(name=name, seq_len=SEQ))  # type: ignore[arg-type]


def _batch(name: str, batch_size: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    task = load_task(TaskConfig(name=name, seq_len=SEQ))  # type: ignore[arg-type]
    return task.batch("train", batch_size, torch.Generator().manual_seed(0))


# (config, task) pairs covering every zoo model and both head modes.
ZOO: list[tuple[ModelConfig, str]] = [
    (MLPConfig(), "synthetic"),
    (MLPConfig(depth=3, activation="tanh", bias=False), "synthetic"),
    (CNNConfig(), "synthetic"),
    (CNNConfig(norm="layer", stages=1), "synthetic"),
    (CNNConfig(norm="none"), "synthetic"),
    (GPTConfig(depth=1, head_dim=8), "synthetic-lm"),
    (GPTConfig(depth=1, head_mode="fixed_heads", n_heads=2), "synthetic-lm"),
]


def _roles(cfg: ModelConfig, task: str) -> dict[str, str]:
    shapes = mucore.infer_base_shapes(model_factory(cfg, _info(task)), base_width=BASE)
    return {name: p.role.value for name, p in shapes.params.items()}


# -- configs ----------------------------------------------------------------------------------


def test_model_config_discriminates_on_kind() -> None:
    adapter: TypeAdapter[ModelConfig] = TypeAdapter(ModelConfig)
    assert isinstance(adapter.validate_python({"kind": "gpt", "depth": 3}), GPTConfig)
    assert isinstance(adapter.validate_python({"kind": "cnn"}), CNNConfig)
    assert isinstance(adapter.validate_python({"kind": "mlp"}), MLPConfig)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "rnn"})
    with pytest.raises(ValidationError, match="needs n_heads"):
        GPTConfig(head_mode="fixed_heads")
    with pytest.raises(ValidationError, match="only used with head_mode 'fixed_heads'"):
        GPTConfig(n_heads=4)
    with pytest.raises(ValidationError):
        MLPConfig(width=64)  # type: ignore[call-arg]  # width is not a config field


# -- forward shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "task", "out_shape"),
    [
        (MLPConfig(), "digits", (3, 10)),
        (MLPConfig(), "synthetic", (3, 10)),
        (CNNConfig(), "digits", (3, 10)),
        (GPTConfig(depth=1), "synthetic-lm", (3, SEQ, 64)),
        (GPTConfig(depth=1), "bytes", (3, SEQ, 256)),
    ],
)
def test_forward_shapes(cfg: ModelConfig, task: str, out_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_model(cfg, _info(task), 32)
    x, y = _batch(task)
    logits = model(x)
    assert logits.shape == out_shape
    loss = load_task(TaskConfig(name=task, seq_len=SEQ)).loss(logits, y)  # type: ignore[arg-type]
    assert torch.isfinite(loss)


def test_gpt_is_causal() -> None:
    torch.manual_seed(0)
    model = build_model(GPTConfig(depth=2), _info("synthetic-lm"), 32).eval()
    x, _ = _batch("synthetic-lm", 2)
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 64
    a, b = model(x), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1], rtol=0, atol=0)
    assert not torch.allclose(a[:, -1], b[:, -1])


# -- roles through mucore ---------------------------------------------------------------------


def test_mlp_roles() -> None:
    roles = _roles(MLPConfig(depth=3), "synthetic")
    assert roles == {
        "input.weight": "input",
        "input.bias": "vector",
        "hidden.0.weight": "hidden",
        "hidden.0.bias": "vector",
        "hidden.1.weight": "hidden",
        "hidden.1.bias": "vector",
        "readout.weight": "output",
        "readout.bias": "vector",
    }


def test_cnn_roles() -> None:
    roles = _roles(CNNConfig(stages=2), "synthetic")
    assert roles["stem.weight"] == "input"
    assert roles["stages.0.conv.weight"] == roles["stages.1.conv.weight"] == "hidden"
    assert roles["readout.weight"] == "output"
    vectors = {n for n, r in roles.items() if r == "vector"}
    assert vectors == {
        "stem_norm.weight",
        "stem_norm.bias",
        "stages.0.norm.weight",
        "stages.0.norm.bias",
        "stages.1.norm.weight",
        "stages.1.norm.bias",
        "readout.bias",
    }
    # Without a norm the convs carry biases, which are vectors too.
    assert _roles(CNNConfig(norm="none", stages=1), "synthetic")["stages.0.conv.bias"] == "vector"


@pytest.mark.parametrize("cfg", [GPTConfig(depth=2), GPTConfig(head_mode="fixed_heads", n_heads=2)])
def test_gpt_roles(cfg: GPTConfig) -> None:
    roles = _roles(cfg, "synthetic-lm")
    assert roles["tok_emb.weight"] == roles["pos_emb.weight"] == "input"
    assert roles["readout.weight"] == "output"
    for i in range(cfg.depth):
        for name in ("attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"):
            assert roles[f"blocks.{i}.{name}.weight"] == "hidden"
            assert roles[f"blocks.{i}.{name}.bias"] == "vector"
        for ln in ("ln_attn", "ln_mlp"):
            assert roles[f"blocks.{i}.{ln}.weight"] == roles[f"blocks.{i}.{ln}.bias"] == "vector"
    assert roles["ln_final.weight"] == roles["ln_final.bias"] == "vector"
    assert roles["readout.bias"] == "vector"
    assert set(roles.values()) == {"input", "hidden", "output", "vector"}


# -- attention and head modes -----------------------------------------------------------------


def _attentions(model: torch.nn.Module) -> list[CausalSelfAttention]:
    return [m for m in model.modules() if isinstance(m, CausalSelfAttention)]


def _configured(cfg: GPTConfig, width: int, par: str, hp: mucore.HParams | None = None):
    factory = model_factory(cfg, _info("synthetic-lm"))
    shapes = mucore.infer_base_shapes(factory, base_width=BASE)
    torch.manual_seed(0)
    model = factory(width)
    mucore.parametrize(model, shapes, par, hp or mucore.HParams(), seed=0)
    return model


def test_head_mode_decides_what_grows_and_the_attention_scale() -> None:
    fixed_dim, fixed_heads = GPTConfig(head_dim=8), GPTConfig(head_mode="fixed_heads", n_heads=2)
    for width in (16, 64):
        # fixed_dim: heads are added, d_head stays 8; the scale is 1/sqrt(8) under both rules.
        for par in ("sp", "mup"):
            attn = _attentions(_configured(fixed_dim, width, par))[0]
            assert (attn.n_heads, attn.d_head) == (width // 8, 8)
            assert attn.scale == pytest.approx(1 / math.sqrt(8))
        # fixed_heads: 2 heads that widen; µP uses sqrt(d0)/d, SP 1/sqrt(d).
        mup = _attentions(_configured(fixed_heads, width, "mup"))[0]
        sp = _attentions(_configured(fixed_heads, width, "sp"))[0]
        d, d0 = width // 2, BASE // 2
        assert (mup.n_heads, mup.d_head) == (2, d)
        assert mup.scale == pytest.approx(math.sqrt(d0) / d)
        assert sp.scale == pytest.approx(1 / math.sqrt(d))
    attn_mult = _attentions(_configured(fixed_heads, 64, "mup", mucore.HParams(attn_mult=3.0)))
    assert attn_mult[0].scale == pytest.approx(3.0 * math.sqrt(8) / 32)


def test_default_scale_before_parametrize() -> None:
    model = build_model(GPTConfig(head_mode="fixed_heads", n_heads=2), _info("synthetic-lm"), 32)
    assert _attentions(model)[0].scale == pytest.approx(1 / math.sqrt(16))


def test_zero_query_zeroes_only_query_rows() -> None:
    model = _configured(GPTConfig(depth=2), 32, "mup", mucore.HParams(zero_query=True))
    for attn in _attentions(model):
        w = attn.qkv.weight  # (3C, C) = [query; key; value]
        assert bool((w[:32] == 0).all())
        assert bool((w[32:] != 0).any(dim=1).all())
    plain = _configured(GPTConfig(depth=1), 32, "mup")
    assert bool((_attentions(plain)[0].qkv.weight[:32] != 0).any())


# -- SP and µP agree at the base width ---------------------------------------------------------


@pytest.mark.parametrize(("cfg", "task"), ZOO)
def test_sp_and_mup_are_bit_identical_at_base_width(cfg: ModelConfig, task: str) -> None:
    factory = model_factory(cfg, _info(task))
    shapes = mucore.infer_base_shapes(factory, base_width=BASE)
    x, _ = _batch(task)
    hp = mucore.HParams(output_mult=2.0, input_mult=1.5, attn_mult=1.0)

    def out(width: int, par: str) -> torch.Tensor:
        torch.manual_seed(123)  # the factory's default init is redrawn by parametrize anyway
        model = factory(width)
        mucore.parametrize(model, shapes, par, hp, seed=7)
        with torch.no_grad():
            return model(x)

    assert torch.equal(out(BASE, "sp"), out(BASE, "mup"))
    assert torch.equal(out(BASE, "mup"), out(BASE, "mup"))  # deterministic
    # Away from the base the rules differ (the readout multiplier at least), so outputs do too.
    assert not torch.equal(out(2 * BASE, "sp"), out(2 * BASE, "mup"))


# -- checks and counting ----------------------------------------------------------------------


def test_check_widths_messages() -> None:
    lm, cls = _info("synthetic-lm"), _info("synthetic")
    errors = check_widths(GPTConfig(), lm, [64, 100, 128])
    assert errors == ["width 100 is not a multiple of head_dim 16: use widths like 96 or 112"]
    heads = GPTConfig(head_mode="fixed_heads", n_heads=6)
    assert check_widths(heads, lm, [96, 64]) == [
        "width 64 is not a multiple of n_heads 6: use widths like 60 or 66"
    ]
    assert check_widths(CNNConfig(groups=4), cls, [8, 10]) == [
        "width 10 is not a multiple of GroupNorm groups 4: use widths like 8 or 12"
    ]
    assert check_widths(CNNConfig(norm="layer"), cls, [10]) == []
    assert check_widths(MLPConfig(), cls, [7, 0]) == ["width 0 must be >= 1"]
    assert "16 or 32" in check_widths(GPTConfig(), lm, [8])[0]
    with pytest.raises(UserError, match="head_dim 16"):
        build_model(GPTConfig(), lm, 100)


def test_check_task_messages() -> None:
    lm, cls = _info("synthetic-lm"), _info("digits")
    assert check_task(GPTConfig(), lm) == []
    assert check_task(MLPConfig(), cls) == check_task(CNNConfig(), cls) == []
    (gpt_err,) = check_task(GPTConfig(), cls)
    assert "'bytes'" in gpt_err and "'synthetic-lm'" in gpt_err and "'digits'" in gpt_err
    for cfg in (MLPConfig(), CNNConfig()):
        (err,) = check_task(cfg, lm)
        assert "'digits'" in err and "'synthetic'" in err and ".npz" in err
    with pytest.raises(UserError, match="classification task"):
        build_model(MLPConfig(), lm, 32)


@pytest.mark.parametrize(("cfg", "task"), ZOO)
def test_count_params_matches_a_real_build(cfg: ModelConfig, task: str) -> None:
    info = _info(task)
    for width in (BASE, 48):
        real = sum(p.numel() for p in build_model(cfg, info, width).parameters())
        assert count_params(cfg, info, width) == real


def test_mlp_count_params_formula() -> None:
    # in 64 -> 32 -> 32 -> 10 with biases.
    assert count_params(MLPConfig(depth=2), _info("synthetic"), 32) == (
        64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10
    )


def test_model_factory_is_picklable_and_builds_the_same_names() -> None:
    factory = pickle.loads(pickle.dumps(model_factory(GPTConfig(depth=1), _info("bytes"))))
    names_a = [n for n, _ in factory(16).named_parameters()]
    names_b = [n for n, _ in factory(64).named_parameters()]
    assert names_a == names_b
