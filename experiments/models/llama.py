"""A small LLaMA-style decoder ready for µP: RMSNorm pre-norm, rotary positions, SwiGLU, no biases.

Layout (Touvron et al., 2023): token embedding -> InputScale -> depth x [x + attn(RMSNorm(x)),
x + SwiGLU(RMSNorm(x))] -> RMSNorm -> readout. Positions enter only through rotary embeddings
(RoPE, Su et al., 2021) applied to q and k, so the model has no position table and runs at any
sequence length. Attention may be grouped-query (fewer key/value heads than query heads).

µP (TP5, Yang et al., 2022, Table 8), roles mucore infers from two widths:
- the token embedding (vocab, width) is input-like;
- q/k/v/o and the SwiGLU gate/up/down projections are hidden;
- RMSNorm gains are vector-like (init ones, Adam LR constant);
- the untied readout (`mucore.Readout`) is the output: base init, alpha_out / m on its input.
The attention reads its score scale from the parametrization in `mu_configure` (1/d_head under
µP when heads widen), as the GPT does.

Tied embeddings (`tie_embeddings=True`): one (vocab, width) tensor E is both the embedding and
the readout. We follow TP5's weight-tying rule (`mucore.TiedReadout`): E stays input-like (init
constant in width, entries Θ(1); the input LR, which under Table 8 has the output LR's exponents:
Adam 0, SGD +1) and the readout applies the output rule's alpha_out / m to its input, so the
logits (1/m) sum_i E_vi h_i stay Θ(1) once E and h correlate. E is drawn with the output row's
constant, sigma/sqrt(width0), so the logits at init are as small as an untied readout's. mucore
sees one parameter, `tok_emb.weight`, with the input role. `HParams.zero_readout` cannot zero E
(it is also the embedding): a tied model's logits at init are not zero but shrink like
1/sqrt(m), the µP limit's zero plus finite-width noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments.models.attention import configured_attention_scale
from mucore import InputScale, Readout, ResidualBranch, TiedReadout

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mucore import MuContext

RMS_EPS = 1e-5  # LLaMA's RMSNorm epsilon


def rotary_tables(
    positions: Tensor, d_head: int, base: float = 10000.0
) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotary angles: position p rotates pair i by p * base**(-2i / d_head).

    Args:
        positions: (T,) integer or float positions.
        d_head: head dimension (even).
        base: rotary base frequency theta.

    Returns:
        (cos, sin), each (T, d_head // 2), float32.
    """
    if d_head % 2:
        raise ValueError(f"rotary embeddings need an even head dim, got {d_head}")
    exponents = torch.arange(0, d_head, 2, dtype=torch.float32, device=positions.device) / d_head
    inv_freq = base**-exponents  # (d/2,)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # (T, d/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (i, i + d/2) of the last dim of `x` (..., T, d) by the tables' angles.

    A rotation by p * w on q and by p' * w on k leaves q.k depending on p - p' only: the
    scores see relative positions.
    """
    x1, x2 = x.chunk(2, dim=-1)  # (..., T, d/2) each
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class LlamaAttention(nn.Module):
    """Causal self-attention with rotary q/k and optional grouped-query key/values.

    `scale` multiplies q.k: 1/sqrt(d_head) until `mu_configure` sets it from the
    parametrization.

    Args:
        width: model width d_model.
        n_heads: query heads; d_head = width // n_heads.
        n_kv_heads: key/value heads (divides n_heads); each serves n_heads // n_kv_heads
            query heads.
        head_mode: "fixed_dim" (heads are added as width grows) or "fixed_heads" (heads widen).
    """

    def __init__(self, width: int, n_heads: int, n_kv_heads: int, head_mode: str) -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_kv_heads {n_kv_heads} does not divide n_heads {n_heads}")
        self.n_heads, self.n_kv_heads, self.head_mode = n_heads, n_kv_heads, head_mode
        self.d_head = width // n_heads
        self.q_proj = nn.Linear(width, n_heads * self.d_head, bias=False)
        self.k_proj = nn.Linear(width, n_kv_heads * self.d_head, bias=False)
        self.v_proj = nn.Linear(width, n_kv_heads * self.d_head, bias=False)
        self.o_proj = nn.Linear(n_heads * self.d_head, width, bias=False)
        self.scale: float = 1.0 / math.sqrt(self.d_head)

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        """Set the score scale by `mucore.attention_scale`; request a zero query if asked.

        The base head dim is d_head itself in "fixed_dim" mode, and d_head / m in
        "fixed_heads" mode, m being the d_model multiplier (q_proj's fan_in mult).
        """
        self.scale = configured_attention_scale(ctx, f"{prefix}.q_proj.weight", self.d_head,
                                                self.head_mode)
        if ctx.hparams.zero_query:
            # TP5 Appendix D.2: a zero query makes every attention pattern uniform at init.
            ctx.request_zero_init(f"{prefix}.q_proj.weight")

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:  # x: (B, T, C)
        b, t, _ = x.shape
        # (B, T, heads * hd) -> (B, heads, T, hd)
        q = self.q_proj(x).view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.d_head).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.d_head).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.scale, enable_gqa=self.n_kv_heads != self.n_heads
        )  # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.d_head)
        return self.o_proj(y)  # (B, T, C)

    def extra_repr(self) -> str:
        return (
            f"n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, d_head={self.d_head}, "
            f"scale={self.scale:g}"
        )


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)): width -> hidden (two projections) -> width."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(width, hidden, bias=False)
        self.up_proj = nn.Linear(width, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaBlock(nn.Module):
    """Pre-norm residual block: x + b * attn(RMSNorm(x)), then x + b * SwiGLU(RMSNorm(x)).

    b is the residual branch multiplier m_L^(-alpha) (`mucore.ResidualBranch`; 1 under SP, µP).
    """

    def __init__(
        self, width: int, n_heads: int, n_kv_heads: int, head_mode: str, mlp_hidden: int
    ) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(width, eps=RMS_EPS)
        self.attn = LlamaAttention(width, n_heads, n_kv_heads, head_mode)
        self.mlp_norm = nn.RMSNorm(width, eps=RMS_EPS)
        self.mlp = SwiGLU(width, mlp_hidden)
        self.attn_branch = ResidualBranch()
        self.mlp_branch = ResidualBranch()

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn_branch(self.attn(self.attn_norm(x), cos, sin))
        return x + self.mlp_branch(self.mlp(self.mlp_norm(x)))


class Llama(nn.Module):
    """Token embedding -> InputScale -> depth x LlamaBlock -> RMSNorm -> readout (tied or not).

    Args:
        vocab_size: tokens (256 for bytes).
        width: d_model.
        depth: number of blocks.
        n_heads: query heads per block (width // head_dim in fixed_dim mode).
        n_kv_heads: key/value heads per block (n_heads for plain multi-head attention).
        head_mode: "fixed_dim" or "fixed_heads" (see `LlamaAttention.mu_configure`).
        mlp_hidden: SwiGLU hidden width.
        tie_embeddings: the readout reuses the token embedding (`mucore.TiedReadout`).
        rope_base: rotary base frequency theta.
    """

    def __init__(
        self,
        vocab_size: int,
        width: int,
        depth: int,
        n_heads: int,
        n_kv_heads: int,
        head_mode: str = "fixed_dim",
        mlp_hidden: int | None = None,
        tie_embeddings: bool = False,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        hidden = mlp_hidden if mlp_hidden is not None else 3 * width
        self.rope_base = rope_base
        self.d_head = width // n_heads
        self.tok_emb = nn.Embedding(vocab_size, width)  # input-like: (vocab, width)
        self.input_scale = InputScale()
        self.blocks = nn.ModuleList(
            LlamaBlock(width, n_heads, n_kv_heads, head_mode, hidden) for _ in range(depth)
        )
        self.norm = nn.RMSNorm(width, eps=RMS_EPS)
        # Registered after tok_emb, so a tied weight is named (and treated) as the embedding.
        self.readout: Readout | TiedReadout = (
            TiedReadout(self.tok_emb) if tie_embeddings else Readout(width, vocab_size, bias=False)
        )

    def forward(self, idx: Tensor) -> Tensor:  # idx: (B, T) int64 -> logits (B, T, vocab)
        positions = torch.arange(idx.shape[1], device=idx.device)  # (T,)
        cos, sin = rotary_tables(positions, self.d_head, self.rope_base)  # (T, hd/2) each
        x = self.input_scale(self.tok_emb(idx))  # (B, T, C)
        for block in self.blocks:
            x = block(x, cos, sin)
        return self.readout(self.norm(x))  # (B, T, vocab)
