"""transformers' LlamaForCausalLM under mucore trains like the zoo's `llama`: the same
architecture (RMSNorm pre-norm, rotary positions, SwiGLU, no biases, untied head), the same
width, depth, heads and LR, parametrized in µP by the README's three-line recipe. A
parametrization that broke a part of it (norm gains refilled with zeros, the attention left at
1/sqrt(d_head), a plain head) would stall it or make it fall less far than the zoo's model.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mucore
from experiments.models.llama import RMS_EPS, Llama

transformers = pytest.importorskip("transformers")

VOCAB, SEQ, WIDTH, DEPTH, HEADS, BASE = 64, 16, 128, 2, 4, 64
STEPS, LR, SEEDS = 20, 2e-3, (0, 1, 2)


def hf_llama(width: int) -> nn.Module:
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=width, intermediate_size=2 * width,
        num_hidden_layers=DEPTH, num_attention_heads=HEADS, num_key_value_heads=HEADS,
        max_position_embeddings=SEQ, rms_norm_eps=RMS_EPS, tie_word_embeddings=False)
    model = transformers.LlamaForCausalLM(cfg)
    mucore.replace_readout(model, "lm_head")
    return model


def zoo_llama(width: int) -> nn.Module:
    return Llama(VOCAB, width, DEPTH, HEADS, HEADS, "fixed_heads", 2 * width)


def _losses(factory: Callable[[int], nn.Module], seed: int) -> list[float]:
    """Adam at a fixed LR for STEPS steps on one fixed batch (next-token loss)."""
    shapes = mucore.infer_base_shapes(factory, BASE)
    model = factory(WIDTH)
    setup = mucore.parametrize(model, shapes, "mup", seed=seed)
    opt = mucore.build_optimizer(model, setup, "adam", LR)
    idx = torch.randint(0, VOCAB, (8, SEQ), generator=torch.Generator().manual_seed(0))
    out = []
    for _ in range(STEPS):
        logits = model(idx)
        logits = logits if isinstance(logits, torch.Tensor) else logits.logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), idx[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


def test_transformers_llama_falls_as_far_as_the_zoo_llama() -> None:
    final = {name: [_losses(f, s)[-1] for s in SEEDS]
             for name, f in (("hf", hf_llama), ("zoo", zoo_llama))}
    mean = {k: sum(v) / len(v) for k, v in final.items()}
    spread = max(max(v) - min(v) for v in final.values())  # seed noise of either model
    # Both learn the batch (from ln(64) ~ 4.2 to ~0.14), and end within seed noise of each other.
    assert max(mean.values()) < 0.3
    assert abs(mean["hf"] - mean["zoo"]) <= spread, (final, spread)
