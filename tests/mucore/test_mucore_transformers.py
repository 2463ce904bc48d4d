"""Models you already have under µP: Hugging Face transformers and torch's own blocks, each
built by a user-style factory (config at the width, `mucore.replace_readout`, then
`mucore.infer_base_shapes` / `mucore.parametrize` at base width 64), as the README's recipe.

What must hold (TP5, Yang et al., 2022): parametrizing changes only what µP prescribes (norm
gains, biases, class tokens and position tables keep the model's own init), every tensor gets a
role whatever its rank or layout, the head applies alpha_out / m, attention takes the 1/d_head
scale when its head dim grows; and then the coordinate check passes under µP and fails under SP.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import mucore
from mucore.roles import Role

transformers = pytest.importorskip("transformers")
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()  # tiny vocabularies make the configs warn about token ids

VOCAB, SEQ, BASE = 64, 16, 64
WIDTHS = [64, 128, 256]


def llama(width: int) -> nn.Module:
    """LLaMA with 4 heads at every width: the head dim grows, so the attention adapter acts."""
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=SEQ,
        tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg)
    mucore.replace_readout(model, "lm_head")
    return model


def qwen2(width: int) -> nn.Module:
    """Qwen2 (its own RMSNorm class, q/k/v biases, grouped-query attention), 4 heads."""
    cfg = transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=SEQ,
        tie_word_embeddings=False)
    model = transformers.Qwen2ForCausalLM(cfg)
    mucore.replace_readout(model, "lm_head")
    return model


def gpt2(width: int, tied: bool = True, n_head: int | None = None) -> nn.Module:
    """GPT-2 (Conv1D layers stored (in, out)); 4 heads unless `n_head` says otherwise."""
    cfg = transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=width, n_layer=2, n_head=n_head or 4, n_positions=SEQ,
        tie_word_embeddings=tied, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=0, eos_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg)
    mucore.replace_readout(model, "lm_head")
    return model


def gpt2_untied(width: int) -> nn.Module:
    return gpt2(width, tied=False, n_head=width // 16)  # heads of a fixed dim 16


def vit(width: int) -> nn.Module:
    """ViT classifier: a (1, 1, d) class token, a (1, n_pos, d) position table; heads of dim 16."""
    cfg = transformers.ViTConfig(
        hidden_size=width, num_hidden_layers=2, num_attention_heads=width // 16,
        intermediate_size=2 * width, image_size=16, patch_size=4, num_channels=3, num_labels=10)
    model = transformers.ViTForImageClassification(cfg)
    mucore.replace_readout(model, "classifier")
    return model


class TorchEncoder(nn.Module):
    """Embedding -> torch's nn.TransformerEncoder (pre-norm) -> LayerNorm -> mucore.Readout.

    `nn.MultiheadAttention` takes no score scale, so the head dim stays fixed (`head_dim`) and
    heads are added as width grows: 1/sqrt(d_head) is then µP-correct.
    """

    def __init__(self, width: int, head_dim: int | None = 16) -> None:
        super().__init__()
        heads = width // head_dim if head_dim else 4
        self.emb = nn.Embedding(VOCAB, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = mucore.Readout(width, VOCAB)

    def forward(self, idx: Tensor) -> Tensor:  # (B, T) -> (B, T, vocab)
        return self.head(self.norm(self.encoder(self.emb(idx))))


def _tokens() -> tuple[Tensor, Tensor]:
    idx = torch.randint(0, VOCAB, (8, SEQ), generator=torch.Generator().manual_seed(0))
    return idx, idx


def _images() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)


def _lm_loss(out: object, targets: Tensor) -> Tensor:
    logits = out if isinstance(out, Tensor) else out.logits  # type: ignore[attr-defined]
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten())


def _cls_loss(out: object, targets: Tensor) -> Tensor:
    return F.cross_entropy(out.logits, targets)  # type: ignore[attr-defined]


Factory = Callable[[int], nn.Module]
CASES: dict[str, tuple[Factory, Callable[[], tuple[Tensor, Tensor]], Callable[..., Tensor]]] = {
    "llama": (llama, _tokens, _lm_loss),
    "qwen2": (qwen2, _tokens, _lm_loss),
    "gpt2-tied": (gpt2, _tokens, _lm_loss),
    "gpt2-untied": (gpt2_untied, _tokens, _lm_loss),
    "vit": (vit, _images, _cls_loss),
    "torch-encoder": (TorchEncoder, _tokens, _lm_loss),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_coord_check_passes_under_mup_and_fails_under_sp(name: str) -> None:
    factory, batch, loss = CASES[name]
    shapes = mucore.infer_base_shapes(factory, BASE)
    results = {p: mucore.coord_check(factory, shapes, WIDTHS, batch(), loss, p, lr=1e-2, steps=4)
               for p in ("mup", "sp")}
    assert results["mup"].verdict == "pass", results["mup"].violations[:3]
    assert results["sp"].verdict == "fail"
    # SP's failure is growth with width (Adam's updates add up over a growing fan_in).
    assert max(s.slope for s in results["sp"].slopes) > 0.4
    assert max(s.slope for s in results["mup"].slopes) < 0.15


@pytest.mark.parametrize("name", sorted(CASES))
def test_parametrize_keeps_the_models_own_vector_init(name: str) -> None:
    """Norm gains (LlamaRMSNorm, Qwen2RMSNorm: 1.0), biases, class token, position table: the
    values the model initialised, bit for bit, under µP and SP; matrices are re-drawn."""
    factory = CASES[name][0]
    shapes = mucore.infer_base_shapes(factory, BASE)
    for param in ("mup", "sp"):
        model = factory(256)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        setup = mucore.parametrize(model, shapes, param, seed=0)
        rows = {r.name: r for r in mucore.describe(setup)}
        for n, p in model.named_parameters():
            if setup.param(n).role is Role.VECTOR:
                assert torch.equal(p, before[n]), n
                assert rows[n].init == "own"
            else:
                assert rows[n].init == "normal" and not torch.equal(p, before[n]), n
        gains = [m.weight for m in model.modules() if "Norm" in type(m).__name__]
        assert gains and all(torch.all(g == 1.0) for g in gains)


def test_vit_tokens_and_position_table_are_vector_like() -> None:
    shapes = mucore.infer_base_shapes(vit, BASE)
    cls = shapes.params["vit.embeddings.cls_token"]
    pos = shapes.params["vit.embeddings.position_embeddings"]
    assert (cls.base_shape, cls.width_dims, cls.role) == ((1, 1, BASE), (2,), Role.VECTOR)
    assert (pos.base_shape, pos.width_dims, pos.role) == ((1, 17, BASE), (2,), Role.VECTOR)
    assert shapes.params["vit.embeddings.patch_embeddings.projection.weight"].role is Role.INPUT
    assert shapes.params["classifier.weight"].role is Role.OUTPUT


class _BareTable(nn.Module):
    """A bare (n, d) parameter laid out like a readout weight, used as a lookup table."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(10, width) * 0.02)
        self.hid = nn.Linear(width, width)
        self.head = mucore.Readout(width, 10)

    def forward(self, idx: Tensor) -> Tensor:
        return self.head(self.hid(self.table[idx]))


def test_a_bare_readout_shaped_parameter_is_not_refused() -> None:
    shapes = mucore.infer_base_shapes(_BareTable, 32)
    assert shapes.params["table"].role is Role.VECTOR
    model = _BareTable(128)
    own = model.table.detach().clone()
    mucore.parametrize(model, shapes, "mup")
    assert torch.equal(model.table, own)


def test_conv1d_gets_its_fan_in_from_the_layer() -> None:
    """GPT-2's Conv1D stores (in, out): fan_in is dim 0 (the width), not 3 * width."""
    shapes = mucore.infer_base_shapes(gpt2, BASE)
    model = gpt2(256)
    setup = mucore.parametrize(model, shapes, "mup", seed=0)
    for name in ("transformer.h.0.attn.c_attn.weight", "transformer.h.0.mlp.c_fc.weight",
                 "transformer.h.0.mlp.c_proj.weight"):
        info = setup.param(name)
        assert info.base.layout == "in_out" and info.role is Role.HIDDEN
        assert info.fan_in == info.shape[0] and info.fan_in_mult == 4.0
        weight = model.get_parameter(name)
        assert weight.std().item() == pytest.approx(1 / info.shape[0] ** 0.5, rel=0.03)


def test_replace_readout_keeps_the_heads_tensors() -> None:
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=1, num_attention_heads=4,
                                   tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg).to(torch.bfloat16)
    old = model.lm_head
    head = mucore.replace_readout(model, "lm_head")
    assert isinstance(head, mucore.Readout) and model.lm_head is head
    assert head.weight is old.weight and head.weight.dtype == torch.bfloat16
    assert (head.in_features, head.out_features, head.bias) == (64, VOCAB, None)
    assert mucore.replace_readout(model, "lm_head") is head  # idempotent
    idx = torch.randint(0, VOCAB, (2, 5))
    assert model(idx).logits.shape == (2, 5, VOCAB)


def test_replace_readout_ties_a_shared_head_with_the_tied_rule() -> None:
    shapes = mucore.infer_base_shapes(gpt2, BASE)
    model = gpt2(256)
    assert isinstance(model.lm_head, mucore.TiedReadout)
    assert model.lm_head.weight is model.transformer.wte.weight
    wte = shapes.params["transformer.wte.weight"]
    assert wte.role is Role.INPUT and wte.is_tied_readout
    setup = mucore.parametrize(model, shapes, "mup", mucore.HParams(output_mult=2.0))
    assert model.lm_head.forward_mult == pytest.approx(2.0 / 4)
    model.tie_weights()  # transformers re-ties by assignment: the same tensor is accepted
    assert model.lm_head.weight is model.transformer.wte.weight
    names = [n for g in mucore.build_optimizer(model, setup, "adam", 1e-3).param_groups
             for n in g["param_names"]]
    assert names.count("transformer.wte.weight") == 1 and "lm_head.weight" not in names
    assert mucore.check(model).verdict == "healthy"


def test_replace_readout_refuses_what_it_cannot_swap() -> None:
    model = TorchEncoder(64)
    with pytest.raises(ValueError, match=r"no module 'lm_head'.*nn\.Linear"):
        mucore.replace_readout(model, "lm_head")
    with pytest.raises(ValueError, match=r"'norm' is a LayerNorm, not an nn\.Linear"):
        mucore.replace_readout(model, "norm")
    tied = nn.Module()
    tied.emb = nn.Embedding(VOCAB, 32)
    tied.head = nn.Linear(32, VOCAB)
    tied.head.weight = tied.emb.weight
    with pytest.raises(ValueError, match="has a bias"):
        mucore.replace_readout(tied, "head")


def test_attention_takes_the_tables_scale_when_its_head_dim_grows() -> None:
    shapes = mucore.infer_base_shapes(llama, BASE)
    assert shapes.attention["model.layers.0.self_attn"].head_dim == 16
    model = llama(256)  # head dim 64, 4x the base's
    attn = model.model.layers[0].self_attn
    assert attn.scaling == 64**-0.5
    mucore.parametrize(model, shapes, "mup", mucore.HParams(attn_mult=2.0))
    assert attn.scaling == pytest.approx(2.0 * 16**0.5 / 64)  # alpha_attn sqrt(d0) / d
    mucore.parametrize(model, shapes, "sp")  # again, another table: from the module's own scale
    assert attn.scaling == 64**-0.5
    base = llama(BASE)  # at the base width µP is SP, bit for bit
    mucore.parametrize(base, shapes, "mup")
    assert base.model.layers[0].self_attn.scaling == 16**-0.5
    # The forward pass reads it: scores sharper by 4x change the logits.
    idx = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(1))
    before = model(idx).logits
    attn.scaling *= 4
    assert not torch.allclose(model(idx).logits, before)
    finding = mucore.check(model).finding("attention")
    assert finding.status == "fail" and finding.evidence["module"] == "model.layers.0.self_attn"
    assert "reinit=False" in finding.fix


def test_gpt2_attention_reads_the_scale_mucore_sets() -> None:
    shapes = mucore.infer_base_shapes(gpt2, BASE)
    model = gpt2(256)
    mucore.parametrize(model, shapes, "mup")
    attn = model.transformer.h[0].attn
    assert attn.scaling == pytest.approx(16**0.5 / 64)
    assert mucore.check(model).finding("attention").status == "pass"


def test_zero_query_zeroes_a_separate_query_projection() -> None:
    shapes = mucore.infer_base_shapes(llama, BASE)
    model = llama(128)
    mucore.parametrize(model, shapes, "mup", mucore.HParams(zero_query=True))
    attn = model.model.layers[0].self_attn
    assert torch.count_nonzero(attn.q_proj.weight) == 0
    assert torch.count_nonzero(attn.k_proj.weight) > 0


def test_multihead_attention_with_a_growing_head_dim_fails_the_check_with_the_fix() -> None:
    def factory(width: int) -> nn.Module:
        return TorchEncoder(width, head_dim=None)  # 4 heads: the head dim grows

    shapes = mucore.infer_base_shapes(factory, BASE)
    model = factory(256)
    mucore.parametrize(model, shapes, "mup")
    finding = mucore.check(model).finding("attention")
    assert finding.status == "fail" and "nn.MultiheadAttention" in finding.message
    assert "num_heads = width // head_dim" in finding.fix
    healthy = TorchEncoder(256)
    mucore.parametrize(healthy, mucore.infer_base_shapes(TorchEncoder, BASE), "mup")
    assert mucore.check(healthy).verdict == "healthy"
