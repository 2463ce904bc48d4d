"""Adapters that let a model you already have (Hugging Face transformers, torch's own blocks)
take µP without editing its source: its head becomes a readout, its attention takes µP's scale.

TP5 (Yang et al., 2022), Table 8 and Section 4: two of µP's rules live in the forward pass, not
in the weights: the readout's input is multiplied by alpha_out / m, and attention scores are
scaled by 1/d_head instead of 1/sqrt(d_head) when the head dim grows with width.

- `replace_readout(model, "lm_head")` swaps a plain `nn.Linear` head for `mucore.Readout`
  (the same weight tensor), or for `mucore.TiedReadout` when the head shares its weight with
  an input embedding (transformers' `tie_word_embeddings=True`): TP5's weight-tying rule.
- `configure_attention(model, setup)` (called by `mucore.parametrize`) sets the `scaling` of
  every attention module that exposes `scaling` and `head_dim` (every transformers attention:
  LLaMA, Qwen2, Mistral, GPT-2, ViT, BERT ...) from the table. `infer_base_shapes` records
  each one's base head dim and scale (`BaseShapes.attention`), so the rule needs no knowledge
  of the architecture. `nn.MultiheadAttention` takes no scale: `mucore.check` fails it under
  µP when its head dim grows, and says to fix the head dim instead.

Nothing here imports transformers: modules are recognised by their attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mucore.layers import Readout, TiedReadout
from mucore.roles import AttentionBase, canonical_name

if TYPE_CHECKING:  # pragma: no cover - typing only
    from mucore.context import MuContext, MuSetup

# Where an adapted attention module keeps the scale it was built with (its SP scale), so that
# parametrizing again (another table, other knobs) starts from it, not from a scale mucore set.
OWN_SCALING_ATTR = "_mucore_own_scaling"


def replace_readout(model: nn.Module, name: str = "lm_head") -> Readout | TiedReadout:
    """Swap the plain head `name` of `model` for a µP readout, in place; return the new head.

    - A head that shares its weight with an `nn.Embedding` of the model (transformers'
      `tie_word_embeddings=True`, or any `head.weight = embedding.weight`) becomes
      `mucore.TiedReadout(embedding)`: TP5's tying rule (the tensor stays input-like, the
      readout applies alpha_out / m). transformers may re-tie later (`model.tie_weights()`):
      the tied readout accepts being tied to the same embedding again.
    - Any other `nn.Linear` head becomes `mucore.Readout` holding the *same* weight and bias
      tensors (shape, dtype, device and values kept; nothing is copied or allocated).
    - A head that already is a `Readout` / `TiedReadout` is returned unchanged (idempotent).

    Call it in the model factory, before `mucore.infer_base_shapes` builds the model twice and
    before `mucore.parametrize`: the readout's role comes from its layer.

    Args:
        model: the model (e.g. transformers' `LlamaForCausalLM`, `ViTForImageClassification`).
        name: the head's dotted module name: "lm_head" for transformers' causal LMs,
            "classifier" for their image/sequence classifiers, "head", "fc" ...

    Returns:
        The new head module (already set on `model`).

    Raises:
        ValueError: no module `name`, it is not an `nn.Linear`, or a tied head has a bias
            (a tied readout has none).
    """
    head = _submodule(model, name)
    if isinstance(head, Readout | TiedReadout):
        return head
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"'{name}' is a {type(head).__name__}, not an nn.Linear: replace_readout swaps a "
            "plain linear head; make your head mucore.Readout(in_features, out_features)"
        )
    embedding = _tied_embedding(model, head)
    new: Readout | TiedReadout
    if embedding is not None:
        if head.bias is not None:
            raise ValueError(
                f"'{name}' shares its weight with an embedding but has a bias: "
                "mucore.TiedReadout has none; untie the head (e.g. tie_word_embeddings=False) "
                "or drop its bias"
            )
        new = TiedReadout(embedding)
    else:
        with torch.device("meta"):  # placeholders only: the head's own tensors move in
            new = Readout(head.in_features, head.out_features, bias=head.bias is not None)
        new.weight = head.weight
        new.bias = head.bias
        new.train(head.training)
    _set_submodule(model, name, new)
    return new


def _submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        heads = [n for n, m in model.named_modules() if type(m) is nn.Linear][-3:]
        raise ValueError(
            f"model has no module '{name}': pass the head's dotted name (its last plain "
            f"nn.Linear modules are {heads})"
        ) from None


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


def _tied_embedding(model: nn.Module, head: nn.Linear) -> nn.Embedding | None:
    """The model's `nn.Embedding` whose weight is the head's weight (the same tensor), if any."""
    for module in model.modules():
        if isinstance(module, nn.Embedding) and module.weight is head.weight:
            return module
    return None


def attention_scaling(own: float, head_dim: int, base: AttentionBase, setup: MuSetup) -> float:
    """The score scale an adapted attention module gets from the table.

    TP5 (Yang et al., 2022), Section 4: under µP (`Parametrization.attention_inverse`) the
    scores are scaled like 1/d_head once the head dim grows, because q and k correlate and
    q.k grows like d_head: scale = alpha_attn * s0 * d0 / d_head, with s0 and d0 the base
    model's scale and head dim (s0 = 1/sqrt(d0) for every transformers attention, which gives
    `mucore.attention_scale`'s alpha_attn * sqrt(d0) / d_head). Where the head dim is fixed
    (heads are added instead) or under SP, the module keeps the scale it was built with
    (`own`), times alpha_attn: at the base width µP and SP are bit-identical.

    Args:
        own: the scale the module was built with at this width (its SP scale).
        head_dim: the module's head dim at this width.
        base: the base model's head dim and scale (`BaseShapes.attention`).
        setup: the setup in force (the table and alpha_attn).
    """
    attn_mult = setup.hparams.attn_mult
    if not setup.parametrization.attention_inverse or head_dim == base.head_dim:
        return attn_mult * own
    assert base.scaling is not None  # only modules with a scale are adapted
    return attn_mult * base.scaling * base.head_dim / head_dim


def adapted_attention(model: nn.Module, setup: MuSetup
                      ) -> list[tuple[str, nn.Module, AttentionBase]]:
    """(name, module, base record) of every attention module the base shapes recorded.

    A deeper model's blocks are matched to block 0's record (`BaseShapes.base_key`).
    """
    shapes = setup.base_shapes
    if not shapes.attention:
        return []
    out = []
    for mod_name, module in model.named_modules():
        name = canonical_name(mod_name)
        base = shapes.attention.get(name) or shapes.attention.get(shapes.base_key(name))
        if base is not None:
            out.append((name, module, base))
    return out


def configure_attention(model: nn.Module, setup: MuSetup, ctx: MuContext | None = None
                        ) -> dict[str, float]:
    """Set the `scaling` of every adaptable attention module from the table; return them.

    Applies `attention_scaling` to each module the base shapes recorded with a scale
    (transformers' attention modules: `scaling` and `head_dim`); `nn.MultiheadAttention` has
    no scale to set and is skipped (`mucore.check` judges it). `mucore.parametrize` calls this;
    it is idempotent (each module keeps the scale it was built with in `OWN_SCALING_ATTR`).

    With `HParams.zero_query` and a `ctx` (parametrize passes its own), a module's separate
    query projection `q_proj` (LLaMA, Qwen2, Mistral, ViT) is asked to start at zero, as TP5
    recommends (uniform attention at init at every width); a fused q/k/v (GPT-2's `c_attn`)
    is left drawn.

    Returns:
        module name -> the scale set.
    """
    scales: dict[str, float] = {}
    for name, module, base in adapted_attention(model, setup):
        if base.scaling is None or type(getattr(module, "scaling", None)) is not float:
            continue
        attn: Any = module  # a library's module: its `scaling` and `head_dim` are plain numbers
        own = attn.__dict__.setdefault(OWN_SCALING_ATTR, attn.scaling)
        scale = attention_scaling(own, int(attn.head_dim), base, setup)
        attn.scaling = scale
        scales[name] = scale
        query = getattr(module, "q_proj", None)
        if ctx is not None and setup.hparams.zero_query and isinstance(query, nn.Linear):
            ctx.request_zero_init(f"{name}.q_proj.weight" if name else "q_proj.weight")
    return scales
