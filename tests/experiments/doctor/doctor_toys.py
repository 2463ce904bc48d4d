"""Model families for the doctor's tests, written as a user would: an MLP whose head may be a
plain nn.Linear, and a small LM whose attention reads its score scale from the rules table
(d_head grows with width) and exposes its scores as a module, so the coordinate check sees
them. Each `*_trial` builds an `experiments.doctor.dynamic.Trial` for a (possibly modified)
rules table."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import mucore
from experiments.doctor.dynamic import Trial

D_IN, N_OUT = 12, 5
VOCAB, SEQ = 32, 8
WIDTHS = [32, 64, 128]


class UserMLP(nn.Module):
    """Linear(12, w) -> ReLU -> 2 x [Linear(w, w) -> ReLU] -> head(w, 5)."""

    def __init__(self, width: int, plain_head: bool = False, width_constant: bool = False
                 ) -> None:
        super().__init__()
        # A hand-written width-dependent constant (x sqrt(width / 32) on the features): no
        # µP ingredient of the table explains it.
        self.constant = (width / 32) ** 0.5 if width_constant else 1.0
        self.inp = nn.Linear(D_IN, width)
        self.act0 = nn.ReLU()
        self.fc1 = nn.Linear(width, width)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.act2 = nn.ReLU()
        self.head = nn.Linear(width, N_OUT) if plain_head else mucore.Readout(width, N_OUT)

    def forward(self, x: Tensor) -> Tensor:  # (B, 12) -> (B, 5)
        h = self.act0(self.inp(x)) * self.constant  # (B, w)
        h = self.act2(self.fc2(self.act1(self.fc1(h))))  # (B, w)
        return self.head(h)


class EmbedScale(nn.Module):
    """Multiplies the embeddings by the input row's forward multiplier of the table in force
    (alpha_in under µP; a table may make it width-dependent, like x sqrt(d_model))."""

    def __init__(self) -> None:
        super().__init__()
        self.forward_mult = 1.0

    def mu_configure(self, ctx: mucore.MuContext, prefix: str) -> None:
        self.forward_mult = ctx.forward_mult("tok.weight")

    def forward(self, x: Tensor) -> Tensor:
        return x * self.forward_mult


class Attention(nn.Module):
    """Two heads (d_head = width / 2 grows); scale from the table; scores pass `self.scores`."""

    n_heads = 2

    def __init__(self, width: int) -> None:
        super().__init__()
        self.d_head = width // self.n_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.scores = nn.Identity()  # (B, nh, T, T): recorded by the coordinate check
        self.scale = self.d_head**-0.5

    def mu_configure(self, ctx: mucore.MuContext, prefix: str) -> None:
        m = ctx.param(f"{prefix}.qkv.weight").fan_in_mult
        self.scale = mucore.attention_scale(self.d_head, round(self.d_head / m),
                                            use_mup=ctx.parametrization.attention_inverse)
        if ctx.hparams.zero_query:  # TP5, Appendix D.2: scores exactly 0 at init
            ctx.request_zero_init(f"{prefix}.qkv.weight", rows=(0, 2 * self.d_head))

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C) -> (B, T, C)
        b, t, c = x.shape
        q, k, v = (z.view(b, t, self.n_heads, self.d_head).transpose(1, 2)
                   for z in self.qkv(x).split(c, dim=2))  # each (B, nh, T, hd)
        att = self.scores(q @ k.transpose(-2, -1) * self.scale)  # (B, nh, T, T)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, t, c))


class UserLM(nn.Module):
    """tok + pos Embedding -> EmbedScale -> x + attn(LN x) -> LN -> Readout(w, vocab)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, width)
        self.pos = nn.Embedding(SEQ, width)
        self.embed_scale = EmbedScale()
        self.ln1 = nn.LayerNorm(width)
        self.attn = Attention(width)
        self.ln2 = nn.LayerNorm(width)
        self.head = mucore.Readout(width, VOCAB)

    def forward(self, idx: Tensor) -> Tensor:  # (B, T) -> (B, T, vocab)
        x = self.embed_scale(self.tok(idx) + self.pos(torch.arange(idx.shape[1])))
        x = x + self.attn(self.ln1(x))
        return self.head(self.ln2(x))


@torch.no_grad()
def zero_biases(model: nn.Module) -> nn.Module:
    """Start every bias at zero, as transformers' and the zoo's models do: `mucore.parametrize`
    keeps vector-like parameters as the model initialised them, and torch's default bias init
    (uniform +-1/sqrt(fan_in)) would make them shrink with width (and a zero query or readout
    not exactly zero)."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
    return model


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def mlp_trial(table: str | mucore.Parametrization = "mup", *, plain_head: bool = False,
              width_constant: bool = False, steps: int = 30, **changes: object) -> Trial:
    """A `Trial` of `UserMLP` at widths 32, 64, 128 on a fixed random batch (Adam, LR 1e-3:
    at these widths a larger LR moves a healthy µP MLP's features by ~0.2 in 30 steps)."""
    def factory(w: int) -> nn.Module:
        return zero_biases(UserMLP(w, plain_head, width_constant))

    g = torch.Generator().manual_seed(1)
    batch = torch.randn(32, D_IN, generator=g), torch.randint(0, N_OUT, (32,), generator=g)
    trial = Trial(factory, mucore.infer_base_shapes(factory, WIDTHS[0], WIDTHS[1]),
                  mucore.get_parametrization(table), WIDTHS, batch, F.cross_entropy,
                  lr=1e-3, steps=steps)
    return trial.with_(**changes)


def lm_trial(table: str | mucore.Parametrization = "mup", *, steps: int = 30,
             **changes: object) -> Trial:
    """A `Trial` of `UserLM` at widths 32, 64, 128 on a copy-the-previous-token batch (Adam,
    LR 3e-2, zero query: q and k must align within 30 steps for 1/sqrt(d_head) to show)."""
    g = torch.Generator().manual_seed(2)
    idx = torch.randint(0, VOCAB, (16, SEQ), generator=g)
    # Copy the previous token: learnable only by attending to it, so q and k must align.
    targets = torch.cat([idx[:, :1], idx[:, :-1]], dim=1)
    def factory(w: int) -> nn.Module:
        return zero_biases(UserLM(w))

    trial = Trial(factory, mucore.infer_base_shapes(factory, WIDTHS[0], WIDTHS[1]),
                  mucore.get_parametrization(table), WIDTHS, (idx, targets),
                  lm_loss, hparams=mucore.HParams(zero_query=True), lr=3e-2, steps=steps)
    return trial.with_(**changes)
