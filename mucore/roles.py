"""Width-like dimension inference and per-parameter roles.

TP5 (Yang et al., 2022), Section 5 and Table 8: every parameter dimension is either finite
(vocab, classes, input features, a fixed head dim) or width-like (d_model, d_ff, channels). We
find width-like dimensions by building the model at two widths and comparing shapes: a dimension
that differs is width-like. From how many dims are width-like we assign a role, for a tensor
of any rank (as the reference package counts them: one = vector-like, two or more =
matrix-like):

- a 1-D tensor, or a bare parameter (not the weight of a layer mucore knows the layout of)
  with one width-like dim: vector-like (biases, norm gains, a ViT class token
  (1, 1, d), a position table (n_pos, d)); µP keeps its base rules and the model's own init;
- two or more width-like dims: hidden;
- the weight of a layer (Linear, Conv, Embedding, transformers' Conv1D, RNN, or a
  `MuConfigurable` module) with one width-like dim: input-like when it is the layer's fan_out
  (first layer, embeddings), output (readout) when it is the layer's fan_in. The layer, not
  the tensor's dim order, says which dims are fan_in: transformers' `Conv1D` (GPT-2) and
  `nn.ConvTranspose` store (in, out, ...), recorded as `BaseParam.layout`;
- a matrix with no width-like dim is refused unless an override (or the model's own
  `mu_roles` mapping, see `infer_base_shapes`) says what it is.

Attention modules whose score scale mucore can set from outside (a float `scaling` and an int
`head_dim`, as every transformers attention has) and `nn.MultiheadAttention` are recorded too
(`BaseShapes.attention`: the base head dim and scale), so `mucore.parametrize` can give them
µP's 1/d_head scale when their head dim grows (`mucore.adapters`).

The result is a name-keyed, JSON-serialisable `BaseShapes`; nothing is stored on tensors, so it
survives torch.compile (names gain an `_orig_mod.` prefix that we strip), deepcopy and
state_dict round trips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mucore.layers import MuConfigurable, TiedReadout
from mucore.role_kinds import Role  # re-exported: defined torch-free for the rule tables

COMPILE_PREFIX = "_orig_mod."


class ShapeInferenceError(ValueError):
    """The two builds of a model cannot be matched into roles; the message names the fix."""


def canonical_name(name: str) -> str:
    """Strip wrapper prefixes (torch.compile's `_orig_mod.`) so names match the eager model."""
    while COMPILE_PREFIX in name:
        name = name.replace(COMPILE_PREFIX, "")
    # The compiled wrapper's own child is named "_orig_mod" (no dot): it is the eager root.
    if name == COMPILE_PREFIX[:-1]:
        return ""
    return name


# Weight layouts (`BaseParam.layout`): which dims are fan_out and which fan_in.
LAYOUT_OUT_IN = "out_in"  # (out, in, *kernel): nn.Linear, nn.Conv*, bare tensors
LAYOUT_IN_OUT = "in_out"  # (in, out, *kernel): transformers' Conv1D, nn.ConvTranspose*


def fan_dims(ndim: int, is_embedding: bool = False, layout: str = LAYOUT_OUT_IN
             ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(fan_out dims, fan_in dims) of a tensor of rank `ndim` (see `BaseParam.layout`)."""
    if ndim <= 1:
        return (0,) if ndim == 1 else (), ()
    if is_embedding:
        return (1,), ()
    if layout == LAYOUT_IN_OUT:
        return (1,), (0, *range(2, ndim))
    return (0,), tuple(range(1, ndim))


@dataclass(frozen=True)
class AttentionBase:
    """What the base model says about one attention module whose scale mucore sets from outside.

    Attributes:
        head_dim: its head dim at the base width.
        scaling: its score scale at the base width (its own `scaling` attribute), or None for a
            module that takes no scale (`nn.MultiheadAttention`).
    """

    head_dim: int
    scaling: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"head_dim": self.head_dim, "scaling": self.scaling}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AttentionBase:
        scaling = d.get("scaling")
        return cls(int(d["head_dim"]), None if scaling is None else float(scaling))


@dataclass(frozen=True)
class BaseParam:
    """What the base (proxy) model says about one parameter.

    Attributes:
        base_shape: shape at the base width.
        width_dims: indices of width-like dimensions.
        role: the parameter's role.
        is_embedding: the weight of an nn.Embedding, laid out (vocab, width): its width-like
            dim is dim 1, yet it is input-like.
        is_norm_gain: the weight of a normalisation layer (initialised to ones, not zeros).
        is_tied_readout: an embedding weight that a `mucore.TiedReadout` reuses as the readout
            (tied input/output embeddings): input-like, but drawn by the output init rule
            (see `mucore.init.init_std`).
        in_block: the parameter lives in a repeated residual block (found by building the
            model at two depths); the depth rules of CompleteP / depth-µP apply to it.
        layout: how the owning layer lays the weight out: "out_in" (dim 0 is fan_out, the
            rest fan_in: nn.Linear, nn.Conv*, any bare tensor) or "in_out" (dim 0 is fan_in,
            dim 1 fan_out, the rest kernel: transformers' Conv1D, nn.ConvTranspose*).
    """

    base_shape: tuple[int, ...]
    width_dims: tuple[int, ...]
    role: Role
    is_embedding: bool = False
    is_norm_gain: bool = False
    is_tied_readout: bool = False
    in_block: bool = False
    layout: str = LAYOUT_OUT_IN

    def fan_dims(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(fan_out dims, fan_in dims) of the tensor, from the layer's layout.

        An embedding (vocab, width) has fan_out dim 1 and no fan_in (its input is one-hot); a
        1-D tensor has fan_out dim 0 and no fan_in.
        """
        return fan_dims(len(self.base_shape), self.is_embedding, self.layout)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "base_shape": list(self.base_shape),
            "width_dims": list(self.width_dims),
            "role": self.role.value,
            "is_embedding": self.is_embedding,
            "is_norm_gain": self.is_norm_gain,
        }
        # Written only when set: base shapes (and bundles) of untied models stay byte-identical.
        if self.is_tied_readout:
            out["is_tied_readout"] = True
        if self.in_block:
            out["in_block"] = True
        if self.layout != LAYOUT_OUT_IN:
            out["layout"] = self.layout
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseParam:
        return cls(
            base_shape=tuple(int(x) for x in d["base_shape"]),
            width_dims=tuple(int(x) for x in d["width_dims"]),
            role=Role(d["role"]),
            is_embedding=bool(d.get("is_embedding", False)),
            is_norm_gain=bool(d.get("is_norm_gain", False)),
            is_tied_readout=bool(d.get("is_tied_readout", False)),
            in_block=bool(d.get("in_block", False)),
            layout=str(d.get("layout", LAYOUT_OUT_IN)),
        )


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a concrete model, measured against its base.

    Attributes:
        name: canonical parameter name.
        shape: shape in this model.
        base: the base record.
        fan_in_mult: fan_in / fan_in0 (1 when fan_in is finite).
        fan_out_mult: fan_out / fan_out0 (1 when fan_out is finite).
        fan_in: this model's fan_in (product of the layer's fan_in dims, `BaseParam.fan_dims`:
            the dims after the first, or dim 0 and the kernel for an (in, out) layout; 1 for
            vectors and embeddings, whose input is one-hot).
        base_fan_in: the base model's fan_in.
        depth_mult: m_L, this model's residual blocks / the base model's (1 when the base
            shapes know no depth). The same for every parameter of a model; the rules apply it
            to parameters with `base.in_block` only.
    """

    name: str
    shape: tuple[int, ...]
    base: BaseParam
    fan_in_mult: float
    fan_out_mult: float
    fan_in: int
    base_fan_in: int
    depth_mult: float = 1.0

    @property
    def role(self) -> Role:
        return self.base.role

    @property
    def width_mult(self) -> float:
        """The multiplier m the role's rules use.

        hidden/output: fan_in mult (TP5 Table 8); input-like: fan_out mult; vector-like: the
        mult of its width-like dim (1 if it has none).
        """
        if self.role in (Role.HIDDEN, Role.OUTPUT):
            return self.fan_in_mult
        if self.role is Role.INPUT:
            return self.fan_out_mult
        if not self.base.width_dims:
            return 1.0
        d = self.base.width_dims[0]
        return self.shape[d] / self.base.base_shape[d]


@dataclass
class BaseShapes:
    """Name-keyed base-shape metadata for a model family (serialisable, tensor-free).

    Build it with `infer_base_shapes`; query a concrete model with `info_for(model)`.

    Attributes:
        params: the base model's parameters by canonical name.
        base_width: the width they were measured at.
        base_depth: the depth passed to the factory for the base model (None: width only).
        block_prefix: the module list holding the repeated residual blocks ("blocks"): a
            parameter named `{block_prefix}.{i}.{rest}` is measured against block 0's `rest`,
            so a model of any depth matches.
        base_blocks: how many blocks the base model has (m_L = blocks / base_blocks).
        attention: attention modules whose score scale mucore sets from outside (transformers'
            attention: a float `scaling` and an int `head_dim`) or cannot set
            (`nn.MultiheadAttention`), by module name: their base head dim and scale.
    """

    params: dict[str, BaseParam] = field(default_factory=dict)
    base_width: int | None = None
    base_depth: int | None = None
    block_prefix: str | None = None
    base_blocks: int | None = None
    attention: dict[str, AttentionBase] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "base_width": self.base_width,
            "params": {k: v.to_dict() for k, v in self.params.items()},
        }
        # Written only when the model has such attention: other base shapes keep their bytes.
        if self.attention:
            out["attention"] = {k: v.to_dict() for k, v in self.attention.items()}
        # Written only when depth is known: width-only base shapes (and bundles) stay
        # byte-identical.
        if self.base_depth is not None:
            out["depth"] = {
                "base_depth": self.base_depth,
                "block_prefix": self.block_prefix,
                "base_blocks": self.base_blocks,
            }
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseShapes:
        depth = d.get("depth") or {}
        return cls(
            params={k: BaseParam.from_dict(v) for k, v in d["params"].items()},
            base_width=d.get("base_width"),
            base_depth=depth.get("base_depth"),
            block_prefix=depth.get("block_prefix"),
            base_blocks=depth.get("base_blocks"),
            attention={k: AttentionBase.from_dict(v)
                       for k, v in (d.get("attention") or {}).items()},
        )

    def block_of(self, name: str) -> tuple[int, str] | None:
        """(block index, name inside the block) for a parameter of a repeated block, else None."""
        if self.block_prefix is None or not name.startswith(self.block_prefix + "."):
            return None
        index, _, rest = name[len(self.block_prefix) + 1 :].partition(".")
        if not index.isdigit() or not rest:
            return None
        return int(index), rest

    def base_key(self, name: str) -> str:
        """The base-shapes key a parameter is measured against (block i's -> block 0's)."""
        block = self.block_of(name)
        if block is None:
            return name
        return f"{self.block_prefix}.0.{block[1]}"

    def save(self, path: str | Path) -> None:
        """Write as JSON (the only I/O mucore does besides bundles)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> BaseShapes:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def info_for(self, model: nn.Module) -> dict[str, ParamInfo]:
        """Measure `model` against the base: one `ParamInfo` per canonical parameter name.

        Raises:
            ShapeInferenceError: a parameter is missing on either side, or a finite dimension
                changed size (the model is not the family these base shapes describe).
        """
        named = [(canonical_name(n), tuple(p.shape)) for n, p in model.named_parameters()]
        depth_mult = self._depth_mult(name for name, _ in named)
        seen: dict[str, ParamInfo] = {}
        keys_seen: dict[str, int] = {}
        for name, shape in named:
            key = self.base_key(name)
            if key not in self.params:
                raise ShapeInferenceError(
                    f"parameter '{name}' is not in the base shapes: build the base shapes from "
                    "the same model factory (same depth and knobs) as this model"
                    + ("" if self.base_depth is None else ", with base_depth and the depth factory")
                )
            keys_seen[key] = keys_seen.get(key, 0) + 1
            seen[name] = _measure(name, shape, self.params[key], depth_mult)
        missing = sorted(k for k in set(self.params) - set(seen) if self.block_of(k) is None)
        if self.block_prefix is not None:
            # Every block must hold what block 0 of the base holds, no more, no fewer.
            n_blocks = len({b[0] for n, _ in named if (b := self.block_of(n)) is not None})
            template = [k for k in self.params if k.startswith(f"{self.block_prefix}.0.")]
            missing += sorted(k for k in template if keys_seen.get(k, 0) != n_blocks)
        if missing:
            raise ShapeInferenceError(
                f"model lacks parameters {missing[:5]} that the base shapes have: build the "
                "model with the same factory and knobs as the base shapes"
            )
        return seen

    def _depth_mult(self, names: Iterable[str]) -> float:
        """m_L = the model's residual blocks / the base's (1 for width-only base shapes)."""
        if self.block_prefix is None or not self.base_blocks:
            return 1.0
        indices = {b[0] for n in names if (b := self.block_of(n)) is not None}
        return len(indices) / self.base_blocks


def _fan_in(shape: tuple[int, ...], base: BaseParam) -> int:
    """Product of the fan_in dims (1 for vectors and embeddings, whose input is one-hot)."""
    n = 1
    for d in base.fan_dims()[1]:
        n *= shape[d]
    return n


def _dims_mult(ratios: list[float], dims: tuple[int, ...]) -> float:
    out = 1.0
    for d in dims:
        out *= ratios[d]
    return out


def _measure(
    name: str, shape: tuple[int, ...], base: BaseParam, depth_mult: float = 1.0
) -> ParamInfo:
    if len(shape) != len(base.base_shape):
        raise ShapeInferenceError(
            f"parameter '{name}' has rank {len(shape)} but rank {len(base.base_shape)} in the "
            "base: build the model with the same factory as the base shapes"
        )
    for d, (n, n0) in enumerate(zip(shape, base.base_shape, strict=True)):
        if d not in base.width_dims and n != n0:
            raise ShapeInferenceError(
                f"parameter '{name}' dim {d} is finite in the base shapes ({n0}) but is {n} "
                "here: pass it as width-like, or keep that dimension fixed across widths"
            )
    ratios = [shape[d] / base.base_shape[d] for d in range(len(shape))]
    out_dims, in_dims = base.fan_dims()
    return ParamInfo(
        name=name,
        shape=shape,
        base=base,
        fan_in_mult=_dims_mult(ratios, in_dims),
        fan_out_mult=_dims_mult(ratios, out_dims),
        fan_in=_fan_in(shape, base),
        base_fan_in=_fan_in(base.base_shape, base),
        depth_mult=depth_mult,
    )


_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.RMSNorm)


def _weights_of(model: nn.Module, kinds: tuple[type, ...]) -> set[str]:
    out = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, kinds):
            out.add(canonical_name(f"{mod_name}.weight" if mod_name else "weight"))
    return out


def _tied_readout_weights(model: nn.Module) -> set[str]:
    """Names of the weights that `TiedReadout` modules reuse, as their owners register them.

    Raises:
        ShapeInferenceError: a tied readout reuses a weight the model does not register.
    """
    names = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    out = set()
    for mod_name, mod in model.named_modules():
        if not isinstance(mod, TiedReadout):
            continue
        if id(mod.weight) not in names:
            raise ShapeInferenceError(
                f"tied readout '{canonical_name(mod_name)}' reuses an embedding that the model "
                "does not register: make the embedding a submodule of the model (it is the input "
                "layer) and pass that same module to TiedReadout"
            )
        out.add(names[id(mod.weight)])
    return out


# The attribute a module may carry to declare roles its shapes cannot tell: a mapping from
# parameter names (relative to that module) to roles, read by `infer_base_shapes`.
ROLES_ATTR = "mu_roles"


def _layer_layouts(model: nn.Module) -> dict[str, str]:
    """Layout of every weight that belongs to a layer whose fan_in mucore knows, by name.

    Linear, Conv, RNN and `nn.MultiheadAttention` projection weights and any `MuConfigurable`
    module's `weight` are (out, in, ...); transposed convolutions and transformers' `Conv1D`
    (duck-typed: `nx`, `nf` and a weight of shape (nx, nf), so mucore needs no transformers)
    are (in, out, ...). A parameter not listed is bare: its role comes from counting alone.
    """
    out: dict[str, str] = {}
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            name = canonical_name(f"{mod_name}.{p_name}" if mod_name else p_name)
            layout = _layout_of(mod, p_name, tuple(p.shape))
            if layout is not None:
                out[name] = layout
    return out


def _layout_of(mod: nn.Module, p_name: str, shape: tuple[int, ...]) -> str | None:
    if isinstance(mod, nn.modules.conv._ConvNd):
        if p_name != "weight":
            return None
        return LAYOUT_IN_OUT if mod.transposed else LAYOUT_OUT_IN
    nx, nf = getattr(mod, "nx", None), getattr(mod, "nf", None)
    if p_name == "weight" and isinstance(nx, int) and isinstance(nf, int) and shape == (nx, nf):
        return LAYOUT_IN_OUT  # transformers' Conv1D: y = x @ W + b, W (in, out)
    if isinstance(mod, nn.RNNBase):
        return LAYOUT_OUT_IN if p_name.startswith("weight") else None
    if isinstance(mod, nn.MultiheadAttention):
        return LAYOUT_OUT_IN if p_name.endswith("proj_weight") else None
    if p_name == "weight" and isinstance(mod, nn.Linear | MuConfigurable):
        return LAYOUT_OUT_IN
    return None


def _declared_roles(model: nn.Module) -> dict[str, str]:
    """Roles the model declares itself: every module's `mu_roles` mapping, names prefixed."""
    out: dict[str, str] = {}
    for mod_name, mod in model.named_modules():
        declared = getattr(mod, ROLES_ATTR, None)
        if declared is None:
            continue
        if not isinstance(declared, Mapping):
            raise ShapeInferenceError(
                f"'{canonical_name(mod_name) or 'the model'}'.{ROLES_ATTR} is a "
                f"{type(declared).__name__}: it must map parameter names to roles, e.g. "
                "{'mixer.weight': 'vector'}"
            )
        for k, v in declared.items():
            out[canonical_name(f"{mod_name}.{k}" if mod_name else str(k))] = v
    return out


def _attention_bases(model: nn.Module) -> dict[str, AttentionBase]:
    """Attention modules whose scale mucore sets from outside (a float `scaling` and an int
    `head_dim`, as every transformers attention has) or cannot set (`nn.MultiheadAttention`);
    modules that configure themselves (`MuConfigurable`) are left to their own hook."""
    out: dict[str, AttentionBase] = {}
    for mod_name, mod in model.named_modules():
        if isinstance(mod, MuConfigurable):
            continue
        head_dim, scaling = getattr(mod, "head_dim", None), getattr(mod, "scaling", None)
        if type(head_dim) is not int:
            continue
        if isinstance(mod, nn.MultiheadAttention):
            out[canonical_name(mod_name)] = AttentionBase(head_dim, None)
        elif type(scaling) is float:
            out[canonical_name(mod_name)] = AttentionBase(head_dim, scaling)
    return out


def _role_from_dims(
    name: str, ndim: int, width_dims: tuple[int, ...], is_embedding: bool,
    layout: str | None,
) -> Role:
    """The role of a tensor from its width-like dims (see the module docstring).

    `layout` is the owning layer's weight layout, or None for a bare parameter (and biases),
    which counts width-like dims only: one is vector-like, as in the reference package.
    """
    if ndim <= 1:
        return Role.VECTOR
    if is_embedding:
        if width_dims == (1,):
            return Role.INPUT
        if not width_dims:
            return Role.VECTOR
        raise ShapeInferenceError(
            f"embedding '{name}' has width-like dims {list(width_dims)}: only the embedding dim "
            f"(dim 1) may grow; keep the vocabulary size fixed or pass overrides={{'{name}': role}}"
        )
    if len(width_dims) >= 2:
        return Role.HIDDEN
    if len(width_dims) == 1:
        if layout is None:
            return Role.VECTOR  # a class token, a position table, any bare tensor
        out_dims, _ = fan_dims(ndim, layout=layout)
        return Role.INPUT if width_dims[0] in out_dims else Role.OUTPUT
    raise ShapeInferenceError(
        f"parameter '{name}' is a matrix with no width-like dimension: if it should grow with "
        "width, make the factory scale it (and pass a second width that differs); if it is "
        f"truly fixed, pass overrides={{'{name}': 'vector'}} to keep its base rules (a model "
        f"can declare it itself: a `{ROLES_ATTR}` mapping on the module, or a module-level "
        "ROLES mapping in a registered model's file)"
    )


def infer_base_shapes(
    factory: Callable[..., nn.Module],
    base_width: int,
    delta_width: int | None = None,
    overrides: dict[str, Role | str] | None = None,
    *,
    base_depth: int | None = None,
    delta_depth: int | None = None,
) -> BaseShapes:
    """Build the model at `base_width` and `delta_width`, compare shapes, assign roles.

    TP5, Section 5 ("infshape"): a dimension whose size differs between the two builds is
    width-like. Models are built on the meta device when the factory allows it (no memory).

    Depth works the same way: with `base_depth`, the factory is `f(width, depth)` and a third
    build at (`base_width`, `delta_depth`) shows which parameters belong to the repeated
    residual blocks: those that exist only in the deeper build, `{prefix}.{i}.{rest}` with the
    block index i under one module list `prefix`. The depth multiplier of any model is then
    its block count over the base's (CompleteP / depth-µP's m_L).

    Args:
        factory: `f(width) -> nn.Module`, the same modules and names at every width; with
            `base_depth`, `f(width, depth) -> nn.Module`.
        base_width: width of the proxy whose HPs are tuned (where µP equals SP).
        delta_width: a second width; default 2 * base_width.
        overrides: explicit roles by parameter name, applied after inference. A model may
            declare roles itself: any module with a `mu_roles` mapping (names relative to
            that module, e.g. `self.mu_roles = {"mixer.weight": "vector"}` on the root) is
            read too; `overrides` wins where both name a parameter.
        base_depth: depth of the proxy (where the depth rules equal µP); None: width only.
        delta_depth: a second, larger depth; default 2 * base_depth.

    Raises:
        ShapeInferenceError: names differ between builds, a rank changes, or a matrix has no
            width-like dim (and no override says what it is); with depth: the deeper build
            adds no blocks, drops or reshapes parameters, or adds them under several lists.
    """
    if base_width <= 0:
        raise ValueError(f"base_width must be positive, got {base_width}")
    if base_depth is not None:
        return _infer_with_depth(factory, base_width, delta_width, overrides, base_depth,
                                 delta_depth)
    delta_width = delta_width if delta_width is not None else 2 * base_width
    if delta_width == base_width:
        raise ValueError("delta_width must differ from base_width, or nothing can be compared")
    base_model, delta_model = _build(factory, base_width), _build(factory, delta_width)
    override_roles: dict[str, Role] = {}
    for k, v in {**_declared_roles(base_model), **(overrides or {})}.items():
        try:
            override_roles[canonical_name(k)] = Role(v)
        except ValueError:
            raise ShapeInferenceError(
                f"override for '{k}' has unknown role {v!r}: use one of {[r.value for r in Role]}"
            ) from None
    base_params = {canonical_name(n): tuple(p.shape) for n, p in base_model.named_parameters()}
    delta_params = {canonical_name(n): tuple(p.shape) for n, p in delta_model.named_parameters()}
    only_one = sorted(set(base_params) ^ set(delta_params))
    if only_one:
        raise ShapeInferenceError(
            f"parameters {only_one[:5]} exist at only one of widths {base_width} and "
            f"{delta_width}: the factory must build the same modules at every width"
        )
    unknown = sorted(set(override_roles) - set(base_params))
    if unknown:
        raise ShapeInferenceError(
            f"overrides name unknown parameters {unknown}: use names from "
            f"model.named_parameters(), e.g. {sorted(base_params)[:5]}"
        )
    embeddings = _weights_of(base_model, (nn.Embedding,))
    norm_gains = _weights_of(base_model, _NORMS)
    tied = _tied_readout_weights(base_model)
    layouts = _layer_layouts(base_model)
    params: dict[str, BaseParam] = {}
    for name, shape0 in base_params.items():
        shape1 = delta_params[name]
        if len(shape0) != len(shape1):
            raise ShapeInferenceError(
                f"parameter '{name}' changes rank between widths ({shape0} vs {shape1}): "
                "the factory must keep the layout fixed"
            )
        width_dims = tuple(d for d, (a, b) in enumerate(zip(shape0, shape1, strict=True)) if a != b)
        is_emb = name in embeddings
        layout = layouts.get(name)
        if name in override_roles:
            role = override_roles[name]
        else:
            role = _role_from_dims(name, len(shape0), width_dims, is_emb, layout)
        params[name] = BaseParam(
            shape0, width_dims, role, is_emb, name in norm_gains, is_tied_readout=name in tied,
            layout=layout or LAYOUT_OUT_IN,
        )
    return BaseShapes(params=params, base_width=base_width,
                      attention=_attention_bases(base_model))


def _infer_with_depth(
    factory: Callable[[int, int], nn.Module],
    base_width: int,
    delta_width: int | None,
    overrides: dict[str, Role | str] | None,
    base_depth: int,
    delta_depth: int | None,
) -> BaseShapes:
    """`infer_base_shapes` at `base_depth`, then the blocks from a build at `delta_depth`."""
    if base_depth <= 0:
        raise ValueError(f"base_depth must be positive, got {base_depth}")
    deeper = delta_depth if delta_depth is not None else 2 * base_depth
    if deeper <= base_depth:
        raise ValueError(f"delta_depth must be larger than base_depth {base_depth}, got {deeper}")
    shapes = infer_base_shapes(lambda w: factory(w, base_depth), base_width, delta_width, overrides)
    deep_model = _build(lambda w: factory(w, deeper), base_width)
    return _with_blocks(shapes, deep_model, base_depth, deeper)


def _with_blocks(shapes: BaseShapes, deep_model: nn.Module, base_depth: int, deeper: int
                 ) -> BaseShapes:
    """Mark the parameters of the repeated blocks by comparing the base with a deeper build."""
    base = shapes.params
    deep = {canonical_name(n): tuple(p.shape) for n, p in deep_model.named_parameters()}
    where = f"depths {base_depth} and {deeper}"
    lost = sorted(set(base) - set(deep))
    if lost:
        raise ShapeInferenceError(
            f"parameters {lost[:5]} exist at depth {base_depth} but not at {deeper}: a deeper "
            "build must keep every parameter and add blocks"
        )
    extra = sorted(set(deep) - set(base))
    if not extra:
        raise ShapeInferenceError(
            f"the factory builds the same parameters at {where}: pass the depth through to "
            "the number of residual blocks"
        )
    prefixes = {_block_prefix(name, base) for name in extra}
    if None in prefixes or len(prefixes) != 1:
        raise ShapeInferenceError(
            f"the parameters added at depth {deeper} ({extra[:3]}...) are not the blocks of one "
            f"module list (found {sorted(str(p) for p in prefixes)}): keep the residual blocks "
            "in one nn.ModuleList, e.g. self.blocks"
        )
    prefix = prefixes.pop()
    assert prefix is not None
    probe = BaseShapes(params=base, block_prefix=prefix)
    n_base = len({b[0] for n in base if (b := probe.block_of(n)) is not None})
    if n_base == 0:
        raise ShapeInferenceError(
            f"the model at base depth {base_depth} has no residual block in '{prefix}': pick a "
            "base depth that builds at least one block"
        )
    for name, shape in deep.items():
        key = probe.base_key(name)
        if key not in base or base[key].base_shape != shape:
            raise ShapeInferenceError(
                f"parameter '{name}' at depth {deeper} does not match '{key}' at depth "
                f"{base_depth}: every block must have block 0's parameters and shapes"
            )
    params = {
        name: replace(p, in_block=probe.block_of(name) is not None) for name, p in base.items()
    }
    return BaseShapes(params=params, base_width=shapes.base_width, base_depth=base_depth,
                      block_prefix=prefix, base_blocks=n_base, attention=shapes.attention)


def _block_prefix(name: str, base: dict[str, BaseParam]) -> str | None:
    """The module list whose new index makes `name` absent from the base build, if any."""
    tokens = name.split(".")
    for k, tok in enumerate(tokens[:-1]):
        if not tok.isdigit():
            continue
        head = ".".join(tokens[:k])
        if not any(n.startswith(f"{head}.{tok}.") for n in base):
            return head or None
    return None


def _build(factory: Callable[[int], nn.Module], width: int) -> nn.Module:
    # The meta device allocates no memory, so inference at wide widths is free; factories that
    # create real tensors internally (rare) fall back to CPU.
    try:
        with torch.device("meta"):
            return factory(width)
    except Exception:
        return factory(width)


def params_by_role(info: Iterable[ParamInfo]) -> dict[Role, list[str]]:
    """Group parameter names by role (for describe tables and tests)."""
    out: dict[Role, list[str]] = {r: [] for r in Role}
    for p in info:
        out[p.role].append(p.name)
    return out
