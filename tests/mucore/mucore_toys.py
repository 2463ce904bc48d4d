"""Small models for the mucore tests: every µP role, an attention with a width-dependent head dim,
a CNN with BatchNorm. Each class takes the width as its first argument, so the class itself is a
`width -> nn.Module` factory (`ResNet` takes (width, depth), a depth family). Every toy starts its biases at zero (`zero_biases`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import mucore

D_IN, N_OUT = 12, 5
VOCAB, SEQ = 32, 8


@torch.no_grad()
def zero_biases(model: nn.Module) -> None:
    """Start every bias at zero, as the zoo's models do: mucore keeps a model's own vector init
    (µP's rule for vectors is "as in the base model"), so a toy says what it wants."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()


class ToyMLP(nn.Module):
    """Linear(12, w) -> InputScale -> ReLU -> Linear(w, w) -> LayerNorm -> ReLU -> Readout(w, 5)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.input_scale = mucore.InputScale()
        self.act1 = nn.ReLU()
        self.hid = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.act2 = nn.ReLU()
        self.readout = mucore.Readout(width, N_OUT)
        zero_biases(self)

    def forward(self, x: Tensor) -> Tensor:  # (B, 12) -> (B, 5)
        h = self.act1(self.input_scale(self.inp(x)))  # (B, w)
        h = self.act2(self.norm(self.hid(h)))  # (B, w)
        return self.readout(h)


class ToyAttention(nn.Module):
    """Causal self-attention with a fixed number of heads (2): d_head grows with width, so µP's
    1/d_head score scale differs from SP's 1/sqrt(d_head) away from the base width."""

    n_heads = 2

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width, self.d_head = width, width // self.n_heads
        self.qkv = nn.Linear(width, 3 * width)  # rows [q; k; v]
        self.proj = nn.Linear(width, width)
        self.scale = self.d_head**-0.5

    def mu_configure(self, ctx: mucore.MuContext, prefix: str) -> None:
        m = ctx.param(f"{prefix}.qkv.weight").fan_in_mult
        base_d_head = round(self.d_head / m)
        self.scale = mucore.attention_scale(
            self.d_head,
            base_d_head,
            attn_mult=ctx.hparams.attn_mult,
            use_mup=ctx.parametrization.attention_inverse,
        )
        if ctx.hparams.zero_query:
            ctx.request_zero_init(f"{prefix}.qkv.weight", rows=(0, self.width))

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        b, t, c = x.shape
        q, k, v = (
            z.view(b, t, self.n_heads, self.d_head).transpose(1, 2)  # (B, nh, T, hd)
            for z in self.qkv(x).split(c, dim=2)
        )
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class ToyTransformer(nn.Module):
    """Token + position Embedding -> InputScale -> x + attn(LN(x)) -> LN -> Readout(w, vocab)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, width)
        self.pos = nn.Embedding(SEQ, width)
        self.input_scale = mucore.InputScale()
        self.ln1 = nn.LayerNorm(width)
        self.attn = ToyAttention(width)
        self.ln2 = nn.LayerNorm(width)
        self.readout = mucore.Readout(width, VOCAB)
        zero_biases(self)

    def forward(self, idx: Tensor) -> Tensor:  # (B, T) int64 -> (B, T, vocab)
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.input_scale(self.tok(idx) + self.pos(pos))  # (B, T, C)
        x = x + self.attn(self.ln1(x))
        return self.readout(self.ln2(x))


class ToyCNN(nn.Module):
    """Conv2d(3, w, 3) -> BatchNorm2d -> ReLU -> Conv2d(w, w, 3) -> pool -> Readout(w, 5)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.readout = mucore.Readout(width, N_OUT)
        zero_biases(self)

    def forward(self, x: Tensor) -> Tensor:  # (B, 3, H, W) -> (B, 5)
        h = self.conv(self.act(self.bn(self.stem(x))))  # (B, w, H, W)
        return self.readout(h.mean(dim=(2, 3)))


def mlp_batch(n: int = 16, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed classification batch for ToyMLP: x (n, 12), y (n,)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D_IN, generator=g), torch.randint(0, N_OUT, (n,), generator=g)


def lm_batch(n: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed LM batch for ToyTransformer: tokens (n, 8), targets (n, 8)."""
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, VOCAB, (n, SEQ + 1), generator=g)
    return seq[:, :-1], seq[:, 1:]


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over (B, T, V) logits."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


class Block(nn.Module):
    """h + b * W2 relu(W1 LN(h)) with b the residual branch multiplier."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(2 * width, width)
        self.branch = mucore.ResidualBranch()

    def forward(self, h: Tensor) -> Tensor:  # (B, w) -> (B, w)
        return h + self.branch(self.proj(F.relu(self.fc(self.norm(h)))))


class ResNet(nn.Module):
    """Linear(12, w) -> InputScale -> depth x Block -> LN -> Readout(w, 5)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.inp = nn.Linear(D_IN, width)
        self.input_scale = mucore.InputScale()
        self.blocks = nn.ModuleList(Block(width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.readout = mucore.Readout(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:  # (B, 12) -> (B, 5)
        h = self.input_scale(self.inp(x))
        for block in self.blocks:
            h = block(h)
        return self.readout(self.norm(h))
