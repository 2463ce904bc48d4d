"""Model configs: the spec's `model:` block, one pydantic model per architecture.

Width is not a config field: a sweep builds the same config at every width of its ladder, and
`mucore.infer_base_shapes` compares two widths to find which dimensions grow.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MLPConfig(BaseModel):
    """Flatten -> Linear(in, w) -> alpha_in -> act -> (depth-1) x [Linear(w, w) -> act] -> readout.

    Attributes:
        depth: hidden layers (>= 1); depth 2 has one hidden (width x width) matrix, the
            smallest net with all three µP roles (input, hidden, output).
        activation: nonlinearity; relu is the TP5 MLP default.
        bias: biases on the Linear layers (vector-like under µP).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mlp"] = "mlp"
    depth: int = Field(default=2, ge=1, le=64)
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    bias: bool = True


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
        if self.head_mode == "fixed_heads" and self.n_heads is None:
            raise ValueError("head_mode 'fixed_heads' needs n_heads: set model.n_heads (e.g. 4)")
        if self.head_mode == "fixed_dim" and self.n_heads is not None:
            raise ValueError(
                "n_heads is only used with head_mode 'fixed_heads'; in 'fixed_dim' mode the "
                "head count is width // head_dim: remove n_heads or set head_mode: fixed_heads"
            )
        return self


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


ModelConfig = Annotated[MLPConfig | GPTConfig | CNNConfig, Field(discriminator="kind")]
