"""A small pre-LN decoder-only Transformer (GPT-2 layout) ready for µP.

TP5 (Yang et al., 2022), Section 4 and Appendix B: under µP, (1) the readout input is scaled by
alpha_out / m (`mucore.Readout`), (2) the attention scores use 1/d_head instead of
1/sqrt(d_head) when d_head grows with width, and (3) zero-initialising the query is recommended.
The attention module reads its own scale from the parametrization in `mu_configure`; everything
else (init, LRs) mucore derives from the parameter shapes at two widths.

Roles that mucore infers here: token and position embeddings are input-like (vocab and
positions do not grow); qkv, proj, fc and the MLP's proj are hidden; LN gains/biases and all
biases are vectors; the (untied) readout is the output.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from experiments.models.attention import configured_attention_scale
from experiments.models.biases import zero_biases
from mucore import InputScale, Readout, ResidualBranch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mucore import MuContext


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused qkv projection.

    Rows of `qkv.weight` are laid out [query; key; value], each `width` rows, heads contiguous
    inside each part. `scale` multiplies q.k: 1/sqrt(d_head) until `mu_configure` sets it from
    the parametrization.

    Args:
        width: model width d_model.
        n_heads: number of heads; d_head = width // n_heads.
        head_mode: "fixed_dim" (heads are added as width grows) or "fixed_heads" (heads widen).
    """

    def __init__(self, width: int, n_heads: int, head_mode: str) -> None:
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.width, self.n_heads, self.head_mode = width, n_heads, head_mode
        self.d_head = width // n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.scale: float = 1.0 / math.sqrt(self.d_head)

    def mu_configure(self, ctx: MuContext, prefix: str) -> None:
        """Set the score scale by `mucore.attention_scale`; request a zero query if asked.

        The base head dim is d_head itself in "fixed_dim" mode (head dim does not grow), and
        d_head / m in "fixed_heads" mode, m being the d_model multiplier (qkv's fan_in mult).
        """
        self.scale = configured_attention_scale(ctx, f"{prefix}.qkv.weight", self.d_head,
                                                self.head_mode)
        if ctx.hparams.zero_query:
            # TP5 Appendix D.2: a zero query makes every attention pattern uniform at init,
            # at every width.
            ctx.request_zero_init(f"{prefix}.qkv.weight", rows=(0, self.width))

    def forward(self, x: Tensor) -> Tensor:  # x: (B, T, C)
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)  # each (B, T, C)
        # (B, T, C) -> (B, nh, T, hd)
        q = q.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        k = k.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        v = v.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        y = y.transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.proj(y)

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, d_head={self.d_head}, scale={self.scale:g}"


class FeedForward(nn.Module):
    """width -> mlp_ratio * width -> GELU -> width."""

    def __init__(self, width: int, mlp_ratio: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, mlp_ratio * width)
        self.act = nn.GELU()
        self.proj = nn.Linear(mlp_ratio * width, width)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        return self.proj(self.act(self.fc(x)))


class Block(nn.Module):
    """Pre-LN residual block: x + b * attn(LN(x)), then x + b * mlp(LN(x)).

    b is the residual branch multiplier m_L^(-alpha) (`mucore.ResidualBranch`): 1 under SP and
    µP, 1/m_L under CompleteP, 1/sqrt(m_L) under depth-µP.
    """

    def __init__(self, width: int, n_heads: int, head_mode: str, mlp_ratio: int) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_heads, head_mode)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp = FeedForward(width, mlp_ratio)
        self.attn_branch = ResidualBranch()
        self.mlp_branch = ResidualBranch()

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        x = x + self.attn_branch(self.attn(self.ln_attn(x)))
        return x + self.mlp_branch(self.mlp(self.ln_mlp(x)))


class GPT(nn.Module):
    """Token + position embeddings -> InputScale -> depth x Block -> LN -> Readout (untied).

    Args:
        vocab_size: tokens (256 for bytes).
        max_seq_len: number of learned positions (the task's seq_len).
        width: d_model.
        depth: number of blocks.
        n_heads: heads per block (width // head_dim in fixed_dim mode).
        head_mode: "fixed_dim" or "fixed_heads" (see `CausalSelfAttention.mu_configure`).
        mlp_ratio: MLP hidden width as a multiple of width.
    """

    def __init__(
        self,
        vocab_size: int,
        max_seq_len: int,
        width: int,
        depth: int,
        n_heads: int,
        head_mode: str = "fixed_dim",
        mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.tok_emb = nn.Embedding(vocab_size, width)  # input-like: (vocab, width)
        self.pos_emb = nn.Embedding(max_seq_len, width)  # input-like: (positions, width)
        self.input_scale = InputScale()
        self.blocks = nn.ModuleList(
            Block(width, n_heads, head_mode, mlp_ratio) for _ in range(depth)
        )
        self.ln_final = nn.LayerNorm(width)
        # Untied: a tied embedding would play both the input and the output role (TP5 notes the
        # reference package has to special-case it); separate weights keep each role clean.
        self.readout = Readout(width, vocab_size)
        zero_biases(self)  # the zoo starts biases at zero; parametrize keeps them

    def forward(self, idx: Tensor) -> Tensor:  # idx: (B, T) int64 -> logits (B, T, vocab)
        t = idx.shape[1]
        if t > self.max_seq_len:
            raise ValueError(
                f"sequence length {t} exceeds the model's {self.max_seq_len} positions"
            )
        pos = torch.arange(t, device=idx.device)  # (T,)
        x = self.input_scale(self.tok_emb(idx) + self.pos_emb(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln_final(x))  # (B, T, vocab)
