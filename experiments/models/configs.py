"""Model configs: the spec's `model:` block, one pydantic model per architecture, and the zoo
registry (`ZOO`): one `ZooKind` entry per model kind carrying its config class, builder, label,
depth and cost hooks, so no caller dispatches on a kind with an isinstance chain or a label dict.

Width is not a config field: a sweep builds the same config at every width of its ladder, and
`mucore.infer_base_shapes` compares two widths to find which dimensions grow.

This module imports no torch: builders are named by dotted path and imported on first build.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

# A registered model's name: a file stem or an entry point name, never a path.
CUSTOM_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class MLPConfig(BaseModel):
    """Flatten -> Linear(in, w) -> alpha_in -> act -> (depth-1) x [Linear(w, w) -> act] -> readout.

    Attributes:
        depth: hidden layers (>= 1); depth 2 has one hidden (width x width) matrix, the
            smallest net with all three µP roles (input, hidden, output).
        activation: nonlinearity; relu is the TP5 MLP default.
        bias: biases on the Linear layers (vector-like under µP).
        residual: pre-LN residual variant, depth - 1 blocks h + b * Linear(act(LN(h))) and a
            final LN before the readout, b the residual branch multiplier (CompleteP,
            depth-µP): the cheapest model on which depth transfer can be tested. Off by
            default, and left out of dumps when off, so existing specs hash the same.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(default=2, ge=1, le=64)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    bias: bool = True
    residual: bool = False

    @model_serializer(mode="wrap")
    def _drop_unset_residual(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("residual") is False:
            data.pop("residual")
        return data


def check_head_mode(head_mode: str, n_heads: int | None) -> None:
    """A transformer's heads as the width grows: `fixed_dim` (width // head_dim heads, so µP's
    1/d attention scale is a constant) needs no head count; `fixed_heads` needs one.

    Raises:
        ValueError: the two fields disagree (the message says which to set).
    """
    if head_mode == "fixed_heads" and n_heads is None:
        raise ValueError("head_mode 'fixed_heads' needs n_heads: set model.n_heads (e.g. 4)")
    if head_mode == "fixed_dim" and n_heads is not None:
        raise ValueError(
            "n_heads is only used with head_mode 'fixed_heads'; in 'fixed_dim' mode the "
            "head count is width // head_dim: remove n_heads or set head_mode: fixed_heads"
        )


class GPTConfig(BaseModel):
    """Pre-LN decoder-only Transformer with learned positions and an untied readout.

    Attributes:
        depth: transformer blocks.
        head_mode: "fixed_dim" keeps each head `head_dim` wide and adds heads as width grows
            (the attention scale is then the same under SP and µP); "fixed_heads" keeps
            `n_heads` heads and widens them (µP's 1/d_head scale then differs from SP's).
        head_dim: width of a head in "fixed_dim" mode; 16 keeps small widths multi-headed.
        n_heads: number of heads in "fixed_heads" mode (required there, refused otherwise).
        mlp_ratio: hidden width of each block's MLP, as a multiple of width (4, as in GPT-2).

    The zero-query option is `mucore.HParams.zero_query`, a global µP knob, not a model field.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["gpt"] = "gpt"
    depth: int = Field(default=2, ge=1, le=64)
    head_mode: Literal["fixed_dim", "fixed_heads"] = "fixed_dim"
    head_dim: int = Field(default=16, ge=1)
    n_heads: int | None = Field(default=None, ge=1)
    mlp_ratio: int = Field(default=4, ge=1, le=16)

    @model_validator(mode="after")
    def _heads_match_mode(self) -> GPTConfig:
        check_head_mode(self.head_mode, self.n_heads)
        return self


class LlamaConfig(BaseModel):
    """LLaMA-style decoder: RMSNorm pre-norm blocks, rotary positions, SwiGLU MLP, no biases.

    Attributes:
        depth: transformer blocks.
        head_mode: "fixed_dim" keeps each head `head_dim` wide and adds heads as width grows;
            "fixed_heads" keeps `n_heads` heads and widens them (µP's 1/d_head score scale
            then differs from SP's 1/sqrt(d_head)).
        head_dim: width of a head in "fixed_dim" mode; even, since rotary embeddings rotate
            pairs of coordinates.
        n_heads: number of query heads in "fixed_heads" mode (required there, refused otherwise).
        n_kv_heads: key/value heads for grouped-query attention, "fixed_heads" mode only; must
            divide n_heads. Unset: one per query head (plain multi-head attention). With
            fixed_dim the query heads grow with width, and a fixed kv head count would make k
            and v fixed-size outputs (readout-like under µP), so it is refused there.
        mlp_ratio: SwiGLU hidden width as a multiple of width, rounded up to a multiple of
            `mlp_multiple_of`; 3 sits between LLaMA 2's 8/3 and LLaMA 3's 3.5.
        mlp_multiple_of: round the SwiGLU hidden width up to a multiple of this (as LLaMA's
            `multiple_of`); 16 keeps small widths exact.
        tie_embeddings: share the token embedding with the readout. µP then keeps the shared
            weight input-like (Θ(1) init, the input LR) and applies alpha_out / m on the
            readout's forward (TP5's weight-tying rule, `mucore.TiedReadout`).
        rope_base: rotary base frequency theta (10000 as in LLaMA 1 and 2).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["llama"] = "llama"
    depth: int = Field(default=2, ge=1, le=64)
    head_mode: Literal["fixed_dim", "fixed_heads"] = "fixed_dim"
    head_dim: int = Field(default=16, ge=2)
    n_heads: int | None = Field(default=None, ge=1)
    n_kv_heads: int | None = Field(default=None, ge=1)
    mlp_ratio: float = Field(default=3.0, ge=1.0, le=16.0)
    mlp_multiple_of: int = Field(default=16, ge=1, le=1024)
    tie_embeddings: bool = False
    rope_base: float = Field(default=10000.0, gt=1.0)

    @model_validator(mode="after")
    def _heads_match_mode(self) -> LlamaConfig:
        if self.head_mode == "fixed_heads" and self.n_heads is None:
            raise ValueError("head_mode 'fixed_heads' needs n_heads: set model.n_heads (e.g. 4)")
        if self.head_mode == "fixed_dim":
            if self.n_heads is not None:
                raise ValueError(
                    "n_heads is only used with head_mode 'fixed_heads'; in 'fixed_dim' mode the "
                    "head count is width // head_dim: remove n_heads or set head_mode: fixed_heads"
                )
            if self.n_kv_heads is not None:
                raise ValueError(
                    "n_kv_heads needs head_mode 'fixed_heads': with fixed_dim the query heads "
                    "grow with width, and a fixed kv head count would make k and v fixed-size "
                    "(readout-like) outputs; set head_mode: fixed_heads and n_heads"
                )
            if self.head_dim % 2:
                raise ValueError(
                    f"head_dim must be even for rotary embeddings, got {self.head_dim}: use "
                    f"{self.head_dim - 1 or 2} or {self.head_dim + 1}"
                )
        if self.n_heads and self.n_kv_heads and self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_kv_heads {self.n_kv_heads} must divide n_heads {self.n_heads}: each kv head "
                "serves the same number of query heads"
            )
        return self

    def mlp_hidden(self, width: int) -> int:
        """SwiGLU hidden width at `width`: mlp_ratio * width rounded up to mlp_multiple_of."""
        k = self.mlp_multiple_of
        return k * math.ceil(self.mlp_ratio * width / k)


class CNNConfig(BaseModel):
    """Small all-3x3 CNN: stem -> alpha_in -> norm -> ReLU -> stages x [conv -> norm -> ReLU]
    -> global average pool -> readout.

    Attributes:
        stages: width x width conv layers after the stem (the hidden-role convs).
        norm: "group" (GroupNorm with `groups` groups), "layer" (GroupNorm with one group: a
            per-sample LayerNorm over channels and positions) or "none".
        groups: GroupNorm groups for norm "group"; every width must be a multiple of it.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cnn"] = "cnn"
    stages: int = Field(default=2, ge=1, le=32)
    norm: Literal["group", "layer", "none"] = "group"
    groups: int = Field(default=4, ge=1)


# `model.config` keys the width ladder and the task set (each named with what sets it instead).
HF_OWNED_KEYS: dict[str, str] = {
    "num_attention_heads": "model.head_mode with model.head_dim or model.n_heads",
    "n_head": "model.head_mode with model.head_dim or model.n_heads",
    "num_key_value_heads": "model.head_mode (key/value heads follow the query heads)",
    "head_dim": "model.head_dim",
    "vocab_size": "the task (its n_outputs)",
    "num_labels": "the task (its n_outputs)",
    "image_size": "the task (its input_shape)",
    "num_channels": "the task (its input_shape)",
}


class HFConfig(BaseModel):
    """A Hugging Face transformers causal LM or image classifier, built at each width.

    `architecture` names a class of the `transformers` package (an optional extra:
    `pip install '.[hf]'`): a causal LM (`LlamaForCausalLM`, `Qwen2ForCausalLM`,
    `GPT2LMHeadModel`, ...) or an image classifier (`ViTForImageClassification`, ...). At each
    width of the ladder (`experiments.models.hf`):

    - hidden_size (n_embd in GPT-2 style configs) is the width;
    - the MLP size (intermediate_size, n_inner, ffn_dim, d_ff) is `mlp_ratio` x width;
    - heads: `head_mode` "fixed_dim" gives width // head_dim heads of `head_dim` each (the
      attention scale is then the same under SP and µP), "fixed_heads" keeps `n_heads` heads
      and widens them (µP then sets 1/d_head through the module's `scaling`);
    - the task sets vocab_size (LM) or num_labels, image_size and num_channels (images, with
      a patch_size that cuts the image into at least 4 x 4 patches unless `config` sets one);
    - the head becomes a `mucore.Readout` (`mucore.replace_readout`; tied embeddings get the
      tied rule), so the model is swept like the zoo's own.

    Attributes:
        architecture: the transformers class name.
        config: keyword arguments of the architecture's config class (e.g.
            `{num_hidden_layers: 4, rms_norm_eps: 1e-5}`). Defaults that keep the model small:
            num_hidden_layers 2, dropouts 0. hidden_size given here (with the MLP size) only
            sets the MLP ratio; the keys in `HF_OWNED_KEYS` are set by the ladder and the task
            and are refused.
        head_mode: "fixed_dim" or "fixed_heads" (as the zoo's gpt and llama).
        head_dim: width of a head in "fixed_dim" mode.
        n_heads: number of heads in "fixed_heads" mode (required there, refused otherwise).
        mlp_ratio: MLP size as a multiple of width. Unset: the ratio of `config`'s
            intermediate size to its hidden size, each the architecture's default where
            `config` leaves it out (LLaMA 11008 / 4096, ViT 3072 / 768).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["hf"] = "hf"
    architecture: str = Field(default="LlamaForCausalLM", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                              max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    head_mode: Literal["fixed_dim", "fixed_heads"] = "fixed_dim"
    head_dim: int = Field(default=16, ge=1)
    n_heads: int | None = Field(default=None, ge=1)
    mlp_ratio: float | None = Field(default=None, gt=0.0, le=16.0)

    @model_validator(mode="after")
    def _heads_and_owned_keys(self) -> HFConfig:
        check_head_mode(self.head_mode, self.n_heads)
        owned = [k for k in self.config if k in HF_OWNED_KEYS]
        if owned:
            raise ValueError("; ".join(f"config.{k} is set by {HF_OWNED_KEYS[k]}: remove it"
                                       for k in owned))
        return self


class CustomModelConfig(BaseModel):
    """A registered model: the user's own `build(width, *, task, **options)` (see
    `experiments.models.registry`), found by name in `MUTRANSFER_MODEL_DIRS` or the
    `mutransfer.models` entry points.

    Attributes:
        name: the registered name (a model file's name without `.py`, or an entry point's).
        options: keyword options of the model's `build`, checked against its signature when
            the spec is validated (unknown or mistyped options are refused by name).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["custom"] = "custom"
    name: str = Field(pattern=CUSTOM_NAME_PATTERN, max_length=100)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class ZooKind:
    """One model kind of the zoo.

    Attributes:
        config: its pydantic config class (a Literal `kind` field names the kind).
        label: display name in the pages' model pickers.
        builder: "module:function" of `(cfg, info, width) -> nn.Module`, imported when first
            built (torch loads there, never at spec time).
        task_kind: the task kind it needs ("lm" or "classification"), checked before building;
            None: the builder checks the task itself (hf, registered models).
        depth_field: the config field a depth ladder scales (None: no depth to scale).
        depth_of: the residual block count a depth ladder measures (None: no residual depth,
            e.g. the plain mlp); default: the `depth_field` value.
        layers: cost hook `(cfg, width, params) -> (layers, activations per layer in units of
            width)` for the memory estimate; None: two activations per width x width block.
        pickable: offered in the pages' zoo picker (not hf or registered models, which have
            pickers of their own).
        task_check: "module:function" of `(cfg, info) -> list[str]`, what else the model needs
            of its task (a GPT a seq_len, a CNN images); None: nothing more.
        width_check: "module:function" of `(cfg, width) -> str | None`, why the model cannot
            take a width (heads, groups); None: any width >= 1.
        heads: attention heads at a width (the estimate's seq_len^2 term); None: no attention.
        spatial: its positions are the pixels of a (C, H, W) image (the estimate's cost).
    """

    config: type[BaseModel]
    label: str
    builder: str
    task_kind: str | None = None
    depth_field: str | None = None
    depth_of: Callable[[Any], int | None] | None = None
    layers: Callable[[Any, int, int], tuple[int, int]] | None = None
    pickable: bool = True
    task_check: str | None = None
    width_check: str | None = None
    heads: Callable[[Any, int], int] | None = None
    spatial: bool = False

    @property
    def kind(self) -> str:
        """The spec's `model.kind` of this entry."""
        return str(self.config.model_fields["kind"].default)

    def depth(self, cfg: Any) -> int | None:
        """The residual block count of `cfg` a depth ladder scales, or None."""
        if self.depth_field is None:
            return None
        return self.depth_of(cfg) if self.depth_of else int(getattr(cfg, self.depth_field))


ZOO: dict[str, ZooKind] = {}


def register_zoo_kind(entry: ZooKind) -> ZooKind:
    """Add a model kind to the zoo (the spec's union is built from this registry)."""
    ZOO[entry.kind] = entry
    return entry


def zoo_kind(kind: str) -> ZooKind:
    """The registry entry of a model kind.

    Raises:
        KeyError: unknown kind.
    """
    return ZOO[kind]


def zoo_labels(pickable_only: bool = True) -> dict[str, str]:
    """`{kind: label}` of the kinds the pages' zoo picker offers (every kind with
    `pickable_only` False), in registry order."""
    return {k: e.label for k, e in ZOO.items() if e.pickable or not pickable_only}


def depth_kinds() -> list[str]:
    """The kinds with a depth a depth ladder can scale."""
    return [k for k, e in ZOO.items() if e.depth_field is not None]


_Z = "experiments.models.zoo"


def _heads(cfg: GPTConfig | LlamaConfig, width: int) -> int:
    """Attention heads at `width`: width / head_dim (fixed_dim) or the fixed count."""
    return width // cfg.head_dim if cfg.head_mode == "fixed_dim" else cfg.n_heads or 1


register_zoo_kind(ZooKind(
    MLPConfig, "MLP", f"{_Z}:build_mlp", "classification", "depth",
    depth_of=lambda c: c.depth if c.residual else None, layers=lambda c, w, p: (c.depth, 2)))
register_zoo_kind(ZooKind(
    GPTConfig, "GPT (small transformer)", f"{_Z}:build_gpt", "lm", "depth",
    # qkv, attn out, residuals, MLP hidden
    layers=lambda c, w, p: (c.depth, 4 + 2 * c.mlp_ratio),
    task_check=f"{_Z}:gpt_task_problems", width_check=f"{_Z}:gpt_width_error", heads=_heads))
register_zoo_kind(ZooKind(
    LlamaConfig, "LLaMA (RMSNorm, RoPE, SwiGLU)", f"{_Z}:build_llama", "lm", "depth",
    # 2 norms, q/k/v, attn out; SwiGLU keeps gate, up, silu(gate) and their product.
    layers=lambda c, w, p: (c.depth, math.ceil(6 + 4 * c.mlp_ratio)),
    width_check=f"{_Z}:llama_width_error", heads=_heads))
register_zoo_kind(ZooKind(
    CNNConfig, "CNN", f"{_Z}:build_cnn", "classification",
    layers=lambda c, w, p: (c.stages + 1, 3),  # conv out, norm out, relu out
    task_check=f"{_Z}:cnn_task_problems", width_check=f"{_Z}:cnn_width_error", spatial=True))
register_zoo_kind(ZooKind(HFConfig, "Hugging Face transformers model", f"{_Z}:build_hf_checked",
                          pickable=False, task_check="experiments.models.hf:task_problems",
                          width_check="experiments.models.hf:width_error"))
register_zoo_kind(ZooKind(CustomModelConfig, "Registered model",
                          "experiments.models.custom:build_custom", pickable=False))

if TYPE_CHECKING:  # the static view of the union the registry builds at run time
    ModelConfig = Annotated[
        MLPConfig | GPTConfig | LlamaConfig | CNNConfig | HFConfig | CustomModelConfig,
        Field(discriminator="kind"),
    ]
else:
    ModelConfig = Annotated[Union[tuple(e.config for e in ZOO.values())],  # noqa: UP007
                            Field(discriminator="kind")]
