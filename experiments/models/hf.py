"""`kind: hf`: a Hugging Face transformers architecture built at each width of the ladder.

    cfg = HFConfig(architecture="LlamaForCausalLM", config={"num_hidden_layers": 4})
    model = build_hf(cfg, task_info, width=256)      # an `HFModel`: tokens in, logits out

transformers is an optional extra (`pip install '.[hf]'`), imported only when an hf model is
checked or built, so `experiments.spec.sweep` and the service stay transformers-free; a spec naming
`kind: hf` without it is refused with the install command (a `UserError`: exit 2).

What the ladder sets in the architecture's config at `width` (the rest is the user's
`config`, over small defaults: 2 layers, no dropout):

1. hidden_size = width (`attribute_map` finds GPT-2's n_embd);
2. the MLP size (intermediate_size, n_inner, ffn_dim or d_ff) = round(mlp_ratio x width);
3. heads: "fixed_dim" gives width // head_dim heads of head_dim (key/value heads too),
   "fixed_heads" n_heads heads of width // n_heads;
4. from the task: vocab_size = n_outputs and max_position_embeddings = seq_len (LM), or
   num_labels = n_outputs, image_size and num_channels from the (C, H, W) input shape and a
   patch_size cutting the image into at least 4 x 4 patches (image classifiers).

The head (the LM's output embedding, the classifier's `classifier`) is swapped for a
`mucore.Readout` of the same shape by `mucore.replace_readout` (a tied LM head becomes a
`mucore.TiedReadout`), so µP applies alpha_out / m on it (TP5, Yang et al., 2022, Table 8).
Every other parameter is the architecture's own: mucore infers its role from two widths.

A pretrained checkpoint cannot seed the base width here: µP re-draws every matrix at the base
width's std, and a checkpoint's weights would need the proxy width to be the checkpoint's
width and the re-draw replaced by loading (out of scope).
"""

from __future__ import annotations

import inspect
import math
from types import ModuleType
from typing import Any, Literal

from torch import Tensor, nn

import mucore
from experiments.errors import UserError
from experiments.models.configs import HFConfig
from experiments.tasks.config import TaskInfo

INSTALL_HINT = "install the hf extra: pip install '.[hf]' (or pip install -r requirements-hf.txt)"
# Defaults that keep a model small and deterministic, used where `config` does not set them.
SMALL_DEFAULTS: dict[str, Any] = {
    "num_hidden_layers": 2,
    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,  # BERT, ViT
    "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,  # GPT-2
    "summary_first_dropout": 0.0, "attention_dropout": 0.0, "hidden_dropout": 0.0,
    "dropout": 0.0,
}
# Config fields holding the MLP's hidden size, by family (LLaMA/BERT/ViT, GPT-2, OPT, T5).
MLP_KEYS = ("intermediate_size", "n_inner", "ffn_dim", "d_ff")
# Special token ids: the task's vocabulary has none (GPT-2's 50256 is outside a byte vocab).
SPECIAL_TOKENS = ("bos_token_id", "eos_token_id", "pad_token_id")
# Default MLP ratio where an architecture's config leaves it out (GPT-2's n_inner None: 4x).
DEFAULT_MLP_RATIO = 4.0
# An image is cut into at least this many patches per side when `config` sets no patch_size.
MIN_PATCHES_PER_SIDE = 4
ARCH_EXAMPLES = ("a causal LM (LlamaForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel, ...) or "
                 "an image classifier (ViTForImageClassification, ...)")

TaskKind = Literal["lm", "classification"]


def load_transformers() -> ModuleType:
    """The transformers package.

    Raises:
        UserError: it is not installed (the message says how to install the extra).
    """
    try:
        import transformers
    except ImportError as exc:
        raise UserError(f"model kind 'hf' needs the transformers package, which cannot be "
                        f"imported here ({exc}): {INSTALL_HINT}") from None
    return transformers


def _mapped_names(mapping: Any) -> set[str]:
    names: set[str] = set()
    for value in mapping.values():
        names.update(value if isinstance(value, tuple | list) else (value,))
    return names


def architecture_kind(architecture: str) -> TaskKind:
    """"lm" for a causal LM class, "classification" for an image classifier.

    Raises:
        UserError: transformers is missing, has no such class, or the class is neither.
    """
    transformers = load_transformers()
    from transformers.models.auto import modeling_auto

    if architecture in _mapped_names(modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES):
        return "lm"
    if architecture in _mapped_names(modeling_auto.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES):
        return "classification"
    if not hasattr(transformers, architecture):
        raise UserError(f"model.architecture: transformers {transformers.__version__} has no "
                        f"class '{architecture}': name {ARCH_EXAMPLES}")
    raise UserError(f"model.architecture: '{architecture}' is neither a causal LM nor an image "
                    f"classifier: kind hf builds {ARCH_EXAMPLES}")


def task_problems(cfg: HFConfig, info: TaskInfo) -> list[str]:
    """Why the architecture cannot run on the task (transformers missing included)."""
    try:
        kind = architecture_kind(cfg.architecture)
    except UserError as exc:
        return [str(exc)]
    if info.kind != kind:
        need = ("a language-modelling task (bytes, synthetic-lm, tokens)" if kind == "lm"
                else "an image classification task (digits, or a file of images)")
        return [f"model 'hf' ({cfg.architecture}) needs {need}, but task '{info.name}' is "
                f"{info.kind}: pick one with --task (spec: task.name)"]
    if kind == "classification" and len(info.input_shape) != 3:
        return [f"model 'hf' ({cfg.architecture}) needs (C, H, W) images, task '{info.name}' "
                f"has inputs {info.input_shape}: pick an image task with --task (e.g. digits)"]
    return []


def head_layout(cfg: HFConfig, width: int) -> tuple[int, int]:
    """(heads, head dim) at `width` (`check_widths` has refused widths they do not divide)."""
    if cfg.head_mode == "fixed_dim":
        return max(width // cfg.head_dim, 1), cfg.head_dim
    assert cfg.n_heads is not None  # HFConfig's validator guarantees it
    return cfg.n_heads, max(width // cfg.n_heads, 1)


def _fields(config_cls: type) -> set[str]:
    params = inspect.signature(config_cls).parameters.values()
    named = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named | set(getattr(config_cls, "attribute_map", {}))


def _config_class(cfg: HFConfig) -> tuple[type, type]:
    transformers = load_transformers()
    model_cls = getattr(transformers, cfg.architecture, None)
    if model_cls is None:
        architecture_kind(cfg.architecture)  # raises, naming the architecture
    assert model_cls is not None
    return model_cls, model_cls.config_class


def _mlp_ratio(cfg: HFConfig, config_cls: type, user: dict[str, Any]) -> float:
    """`cfg.mlp_ratio`, else `config`'s MLP size over its hidden size when it gives both,
    else the architecture's default ratio (DEFAULT_MLP_RATIO where its MLP size is derived).

    Raises:
        UserError: `config` gives one of the two sizes without the other.
    """
    if cfg.mlp_ratio is not None:
        return cfg.mlp_ratio
    hidden_key = _real(config_cls, "hidden_size")
    mlp_keys = [k for k in MLP_KEYS if k in user]
    if (hidden_key in user) != bool(mlp_keys):
        raise UserError(f"model.config: give both {hidden_key} and the MLP size "
                        f"({' or '.join(MLP_KEYS)}): their ratio sets the MLP size at every "
                        "width; or set model.mlp_ratio")
    sizes = {k: user[k] for k in [hidden_key, *mlp_keys] if k in user}
    probe = config_cls(**sizes)
    mlp = next((getattr(probe, k) for k in MLP_KEYS if getattr(probe, k, None)), None)
    hidden = getattr(probe, "hidden_size", None)
    return float(mlp) / hidden if mlp and hidden else DEFAULT_MLP_RATIO


def _patch_size(h: int, w: int) -> int:
    fits = [p for p in range(1, min(h, w) + 1)
            if h % p == 0 and w % p == 0 and min(h, w) // p >= MIN_PATCHES_PER_SIDE]
    return max(fits, default=1)


def _real(config_cls: type, key: str) -> str:
    """The field a key names: itself, or what `attribute_map` maps it to (GPT-2: n_embd)."""
    aliases: dict[str, str] = getattr(config_cls, "attribute_map", {})
    return aliases.get(key, key)


def _task_fields(kw: dict[str, Any], config_cls: type, fields: set[str], info: TaskInfo,
                 user: dict[str, Any]) -> None:
    """Step 4 of the module docstring: sizes from the task."""
    if info.kind == "lm":
        kw[_real(config_cls, "vocab_size")] = info.n_outputs
        pos = _real(config_cls, "max_position_embeddings")
        if info.seq_len and pos in fields and pos not in user:
            kw[pos] = info.seq_len
        for key in SPECIAL_TOKENS:  # the task's tokens have no special ids (and may be fewer)
            if key in fields and key not in user:
                kw[key] = None
        return
    c, h, w = info.input_shape
    kw["num_labels"] = info.n_outputs
    kw["num_channels"] = c
    kw["image_size"] = h if h == w else [h, w]
    if "patch_size" in fields and "patch_size" not in user:
        kw["patch_size"] = _patch_size(h, w)


def hf_config(cfg: HFConfig, info: TaskInfo, width: int) -> Any:
    """The architecture's config object at `width` for the task (module docstring).

    Raises:
        UserError: transformers missing, unknown architecture, or `config` keys the
            architecture's config class does not take (named).
    """
    _, config_cls = _config_class(cfg)
    fields = _fields(config_cls)
    unknown = sorted(k for k in cfg.config if k not in fields)
    if unknown:
        raise UserError(f"model.config: {config_cls.__name__} has no field "
                        f"{', '.join(repr(k) for k in unknown)}: check the spelling against "
                        f"transformers' {config_cls.__name__}")
    user = {_real(config_cls, k): v for k, v in cfg.config.items()}
    kw = {_real(config_cls, k): v for k, v in SMALL_DEFAULTS.items()
          if _real(config_cls, k) in fields}
    kw.update(user)
    ratio = _mlp_ratio(cfg, config_cls, user)
    heads, d_head = head_layout(cfg, width)
    kw[_real(config_cls, "hidden_size")] = width
    kw[_real(config_cls, "num_attention_heads")] = heads
    if "num_key_value_heads" in fields:
        kw["num_key_value_heads"] = heads
    if "head_dim" in fields:
        kw["head_dim"] = d_head
    mlp_key = next((k for k in MLP_KEYS if k in fields), None)
    if mlp_key is not None:
        kw[mlp_key] = mlp_size(ratio, width)
    _task_fields(kw, config_cls, fields, info, user)
    try:
        return config_cls(**kw)
    except (TypeError, ValueError) as exc:
        raise UserError(f"model.config: {config_cls.__name__} refuses the config at width "
                        f"{width}: {exc}") from None


class HFModel(nn.Module):
    """A transformers model whose forward returns the logits the trainer's loss takes.

    LM: token ids (B, T) int64 -> logits (B, T, vocab); image classifier: pixels
    (B, C, H, W) float -> logits (B, n_classes). `net` is the transformers model (its head a
    `mucore.Readout` or `mucore.TiedReadout`).
    """

    def __init__(self, net: nn.Module, task_kind: TaskKind) -> None:
        super().__init__()
        self.net = net
        self.task_kind: TaskKind = task_kind

    def forward(self, x: Tensor) -> Tensor:
        if self.task_kind == "lm":
            # No key/value cache: training runs whole sequences, a cache only costs time.
            out = self.net(input_ids=x, use_cache=False)
        else:
            out = self.net(pixel_values=x)
        logits: Tensor = out.logits
        return logits


def head_name(net: nn.Module, task_kind: TaskKind) -> str:
    """The dotted name (in `net`) of the layer producing the logits."""
    head: nn.Module | None
    if task_kind == "lm":
        get = getattr(net, "get_output_embeddings", None)
        head = get() if callable(get) else None
    else:
        head = getattr(net, "classifier", None)
    for name, module in net.named_modules():
        if head is not None and module is head:
            return name
    raise UserError(f"the {type(net).__name__} has no output layer µP can scale (no output "
                    "embeddings / `classifier`): kind hf builds " + ARCH_EXAMPLES)


def build_hf(cfg: HFConfig, info: TaskInfo, width: int) -> nn.Module:
    """The architecture at `width` for the task, its head a `mucore.Readout` (module docstring).

    Built on the current default device with the architecture's own init (`mucore.parametrize`
    re-draws the matrices per the table; vector-like parameters keep this init).

    Raises:
        UserError: as `task_problems` and `hf_config`.
    """
    problems = task_problems(cfg, info)
    if problems:
        raise UserError("; ".join(problems))
    model_cls, _ = _config_class(cfg)
    config = hf_config(cfg, info, width)
    kind = architecture_kind(cfg.architecture)
    try:
        net = model_cls(config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"model 'hf' ({cfg.architecture}) cannot be built at width {width}: "
                        f"{exc}") from None
    try:
        mucore.replace_readout(net, head_name(net, kind))
    except ValueError as exc:
        raise UserError(f"model 'hf' ({cfg.architecture}): {exc}") from None
    return HFModel(net, kind)


def width_error(cfg: HFConfig, width: int) -> str | None:
    """Why `width` does not split into the configured heads (None when it does)."""
    k = cfg.head_dim if cfg.head_mode == "fixed_dim" else cfg.n_heads
    what = "head_dim" if cfg.head_mode == "fixed_dim" else "n_heads"
    assert k is not None
    if width % k == 0:
        return None
    lower = (width // k) * k
    like = f"{lower} or {lower + k}" if lower > 0 else f"{k} or {2 * k}"
    return f"width {width} is not a multiple of {what} {k}: use widths like {like}"


def mlp_size(ratio: float, width: int) -> int:
    """The MLP hidden size at `width` (at least 1)."""
    return max(1, math.floor(ratio * width + 0.5))

