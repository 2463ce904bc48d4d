"""The attention score scale shared by the zoo's transformers (GPT, LLaMA).

TP5 (Yang et al., 2022), Section 4 / Table 3: µP scores attention by 1/d_head instead of SP's
1/sqrt(d_head), because query and key become correlated after training and their dot product
grows like d_head. The base head dim, where µP and SP agree, depends on how heads grow.
"""

from __future__ import annotations

from mucore import MuContext, attention_scale


def configured_attention_scale(ctx: MuContext, query_weight: str, d_head: int,
                               head_mode: str) -> float:
    """The score scale of one attention module, from its µP context.

    Args:
        ctx: the context `mucore.parametrize` hands to `mu_configure`.
        query_weight: the full name of the weight that produces the queries (its fan-in
            multiplier is the d_model multiplier m).
        d_head: this model's head width.
        head_mode: "fixed_dim" keeps d_head at every width (base head dim = d_head);
            "fixed_heads" widens heads with the model (base head dim = d_head / m).
    """
    if head_mode == "fixed_heads":
        m = ctx.param(query_weight).fan_in_mult
        base_d_head = max(1, round(d_head / m))
    else:
        base_d_head = d_head
    return attention_scale(d_head, base_d_head, attn_mult=ctx.hparams.attn_mult,
                           use_mup=ctx.parametrization.attention_inverse)
