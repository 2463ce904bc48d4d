"""Parametrize a built model: set its forward multipliers and (re-)initialise its weights.

TP5 (Yang et al., 2022), Table 8: init stds per role. Every matrix (hidden, input-like, output) is drawn from its own
generator seeded by (seed, name), so the draw does not depend on parameter order, SP and µP
draw the same noise at the base width (bit-identical models there), and re-initialising twice
with the same seed changes nothing (idempotent).

µP changes only what µP prescribes: a vector-like parameter's rule is "as the base model has
it" (Table 8: its init does not depend on width), so it keeps the model's own init, whatever
its class: norm gains (torch's or a library's own RMSNorm), biases, class tokens, position
tables. The reference package likewise leaves them as the model initialised them.
"""

from __future__ import annotations

import math
import zlib

import torch
from torch import nn

from mucore.adapters import configure_attention
from mucore.context import MuContext, MuSetup, make_setup
from mucore.hparams import HParams
from mucore.layers import MuConfigurable
from mucore.parametrizations import InitRule, Parametrization
from mucore.roles import BaseShapes, ParamInfo, Role, canonical_name

# The attribute of the root module where `parametrize` records its MuSetup (`mucore.check`
# reads it back through `mucore.check.setup_of`).
SETUP_ATTR = "_mucore_setup"


def parametrize(
    model: nn.Module,
    base_shapes: BaseShapes,
    parametrization: str | Parametrization = "mup",
    hparams: HParams | None = None,
    *,
    seed: int = 0,
    reinit: bool = True,
) -> MuSetup:
    """Apply a parametrization to `model` in place and return its metadata.

    Steps: 1. measure every parameter against the base shapes; 2. let every `MuConfigurable`
    module set its forward multipliers, and set the score scale of the attention modules the
    base shapes recorded (`mucore.adapters.configure_attention`: transformers' attention);
    3. if `reinit`, draw every matrix per its role's init rule; vector-like parameters keep
    the model's own values (`init_std` is None for them). Call with `reinit=False` after
    loading a state_dict to restore multipliers only.

    Args:
        model: a model built by the same factory as `base_shapes` (compiled models accepted).
        base_shapes: from `infer_base_shapes`.
        parametrization: "mup", "sp" or a registered table.
        hparams: global knobs (sigma, alpha_out, alpha_attn, alpha_in, zero inits).
        seed: init seed; each parameter's generator is seeded by (seed, name).
        reinit: draw fresh weights (True) or only set multipliers (False).

    Returns:
        The `MuSetup` that optimizers and describe tables take.
    """
    hparams = hparams or HParams()
    setup = make_setup(base_shapes.info_for(model), parametrization, hparams, base_shapes)
    # named_parameters() yields a shared tensor once, under its first name: that is its name.
    names = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    ctx = MuContext(setup, names=names)
    _check_readouts(model, setup)
    for mod_name, module in model.named_modules():
        if isinstance(module, MuConfigurable):
            module.mu_configure(ctx, canonical_name(mod_name))
    configure_attention(model, setup, ctx)
    if reinit:
        _reinit(model, ctx, seed)
    # Recorded on the root module (a plain attribute, not on tensors) so `mucore.check` can find
    # it: deepcopy and pickle keep it; a fresh model loaded from a state_dict must be
    # parametrized again, which its layers' multipliers need anyway.
    model.__dict__[SETUP_ATTR] = setup
    return setup


def _check_readouts(model: nn.Module, setup: MuSetup) -> None:
    """Fail loudly when an output-role weight sits in a layer that cannot apply its multiplier.

    µP's readout rule (TP5, Table 8) lives partly in the forward pass (alpha_out / m on the
    readout input); a plain nn.Linear head would silently train as SP. Only checked when the
    rules or knobs ask for a multiplier other than 1.
    """
    rule = setup.parametrization.rule(Role.OUTPUT)
    if rule.forward_exp == 0.0 and setup.hparams.output_mult == 1.0:
        return
    for mod_name, module in model.named_modules():
        if isinstance(module, MuConfigurable):
            continue
        for p_name, _ in module.named_parameters(recurse=False):
            name = canonical_name(f"{mod_name}.{p_name}" if mod_name else p_name)
            if setup.param(name).role is Role.OUTPUT:
                raise ValueError(
                    f"parameter '{name}' is output-like (width-like fan_in, finite fan_out) but "
                    f"its module is {type(module).__name__}, which cannot apply the readout "
                    "multiplier: use mucore.Readout for the head (for a model you did not write: "
                    f"mucore.replace_readout(model, '{canonical_name(mod_name)}') in its factory)"
                )


def init_std(info: ParamInfo, setup: MuSetup) -> float | None:
    """The std a parameter is drawn with, or None when it keeps the model's own init.

    None for every parameter whose rule is `InitRule.KEEP` (vector-like in the built-in
    tables: biases, norm gains, tokens, position tables, fixed-size matrices declared
    vector-like): TP5's rule for them is "as in the base model", so mucore does not touch them.

    A tied embedding (`BaseParam.is_tied_readout`) is input-like but drawn by the *output*
    row's init rule, read along its width dim (the readout's fan_in): µP sigma/sqrt(fan_in0),
    SP sigma/sqrt(fan_in). Under µP that is constant in width, so it is also a valid input-like
    init (TP5's tying rule: Θ(1) entries); its constant makes the logits at init as large as an
    untied readout's, where the embedding rule (sigma) would make them sqrt(fan_in0) times
    larger. It is never zeroed by `zero_readout`: it is also the embedding.
    """
    sigma = setup.hparams.init_std
    if setup.hparams.zero_readout and (info.role is Role.OUTPUT or _is_readout_bias(info, setup)):
        return 0.0
    if info.base.is_tied_readout:
        rule = setup.parametrization.rule(Role.OUTPUT).init
        fan_in, base_fan_in = info.shape[1], info.base.base_shape[1]
    else:
        rule = setup.parametrization.rule(info.role).init
        fan_in, base_fan_in = info.fan_in, info.base_fan_in
    if rule is InitRule.KEEP:
        return None
    if rule is InitRule.BASE_FAN_IN:
        return sigma / math.sqrt(base_fan_in)
    return sigma / math.sqrt(fan_in)


def _is_readout_bias(info: ParamInfo, setup: MuSetup) -> bool:
    """A readout's bias: `HParams.zero_readout` zeroes it with the weight (TP5 and the reference
    package zero the whole readout, so the output is exactly 0 at init at every width)."""
    if info.role is not Role.VECTOR or not info.name.endswith("bias"):
        return False
    weight = setup.info.get(info.name[: -len("bias")] + "weight")
    return weight is not None and weight.role is Role.OUTPUT


def _bias_rows(ctx: MuContext) -> dict[str, tuple[int, int] | None]:
    """Zero-init requests carried over to the requested weights' biases (same rows): a zero
    query (`HParams.zero_query`) makes the scores exactly 0 at init only if its bias is 0 too."""
    out: dict[str, tuple[int, int] | None] = {}
    for name, rows in ctx.zero_rows.items():
        if not name.endswith("weight"):
            continue
        bias = name[: -len("weight")] + "bias"
        info = ctx.setup.info.get(bias)
        if info is not None and len(info.shape) == 1 and ctx.param(name).base.layout == "out_in":
            out[bias] = rows
    return out


def _seeded_generator(seed: int, name: str) -> torch.Generator:
    g = torch.Generator(device="cpu")
    g.manual_seed((seed * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return g


@torch.no_grad()
def _reinit(model: nn.Module, ctx: MuContext, seed: int) -> None:
    bias_rows = _bias_rows(ctx)
    for raw_name, p in model.named_parameters():
        name = canonical_name(raw_name)
        info = ctx.param(name)
        std = init_std(info, ctx.setup)
        if std is None:
            # Vector-like: the model's own init is µP's (see the module docstring), but for
            # the rows of a bias whose weight rows were asked to start at zero.
            if name in bias_rows:
                rows = bias_rows[name]
                p[slice(None) if rows is None else slice(rows[0], rows[1])] = 0.0
            continue
        # Draw on CPU from a per-name generator (order- and device-independent), then copy.
        values = torch.randn(p.shape, generator=_seeded_generator(seed, name), dtype=torch.float32)
        values.mul_(std)
        if name in ctx.zero_rows:
            rows = ctx.zero_rows[name]
            if rows is None:
                values.zero_()
            else:
                values[rows[0] : rows[1]] = 0.0
        p.copy_(values.to(dtype=p.dtype))
