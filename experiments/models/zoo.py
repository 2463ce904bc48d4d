"""Build a zoo model from its config at any width, and check a config against a task."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from experiments.errors import UserError
from experiments.models.cnn import CNN
from experiments.models.configs import (
    CNNConfig,
    GPTConfig,
    HFConfig,
    LlamaConfig,
    MLPConfig,
    ModelConfig,
    depth_kinds,
    zoo_kind,
)
from experiments.models.gpt import GPT
from experiments.models.llama import Llama
from experiments.models.mlp import MLP
from experiments.tasks import TaskInfo

_TASKS_FOR_KIND = {
    "lm": "'bytes', 'synthetic-lm', 'tokens', or 'file' with a .txt",
    "classification": "'digits', 'synthetic', or 'file' with a .npz",
}


def _hook(ref: str) -> Callable[..., Any]:
    """The function a registry entry names as "module:function" (imported on first use)."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def check_task(cfg: ModelConfig, info: TaskInfo) -> list[str]:
    """Whether the model can run on the task: its zoo entry's task kind (GPT and LLaMA need an
    LM task, MLP and CNN a classifier), then the entry's own `task_check` (a GPT needs a
    seq_len, a CNN images; an hf model what its architecture is, transformers missing
    included).

    A registered model says nothing about its task up front: whether it fits is found by
    building it (`experiments.models.custom.custom_problems`).

    Returns:
        Human-readable errors (empty when the pair fits).
    """
    entry = zoo_kind(cfg.kind)
    need = entry.task_kind
    if need is not None and info.kind != need:
        what = "a language-modelling" if need == "lm" else "a classification"
        return [
            f"model '{cfg.kind}' needs {what} task, but task '{info.name}' is {info.kind}: use "
            f"task {_TASKS_FOR_KIND[need]}"
        ]
    return list(_hook(entry.task_check)(cfg, info)) if entry.task_check else []


def gpt_task_problems(cfg: GPTConfig, info: TaskInfo) -> list[str]:
    """A GPT's positions need the task's sequence length."""
    if info.seq_len:
        return []
    return [f"task '{info.name}' has no seq_len: a GPT needs one for its positions"]


def cnn_task_problems(cfg: CNNConfig, info: TaskInfo) -> list[str]:
    """A CNN convolves (C, H, W) images."""
    if len(info.input_shape) == 3:
        return []
    return [f"model 'cnn' needs (C, H, W) images, task '{info.name}' has inputs "
            f"{info.input_shape}: use the mlp"]


def _multiple_error(width: int, k: int, what: str) -> str | None:
    if width % k == 0:
        return None
    lower = (width // k) * k
    like = f"{lower} or {lower + k}" if lower > 0 else f"{k} or {2 * k}"
    return f"width {width} is not a multiple of {what} {k}: use widths like {like}"


def check_widths(cfg: ModelConfig, info: TaskInfo, widths: list[int]) -> list[str]:
    """Widths the model cannot be built at, as one human-readable error per problem.

    Every width must be >= 1; then the zoo entry's `width_check` says what its heads or groups
    need (GPT, LLaMA and hf fixed_dim: a multiple of head_dim; fixed_heads: of n_heads, LLaMA
    with an even head dim for rotary embeddings; CNN with GroupNorm: of groups).
    """
    check = zoo_kind(cfg.kind).width_check
    errors = []
    for w in widths:
        if w < 1:
            errors.append(f"width {w} must be >= 1")
            continue
        err = _hook(check)(cfg, w) if check else None
        if err:
            errors.append(err)
    return errors


def gpt_width_error(cfg: GPTConfig, width: int) -> str | None:
    """A GPT's width splits into heads of head_dim (fixed_dim) or into n_heads heads."""
    if cfg.head_mode == "fixed_dim":
        return _multiple_error(width, cfg.head_dim, "head_dim")
    assert cfg.n_heads is not None  # GPTConfig's validator guarantees it
    return _multiple_error(width, cfg.n_heads, "n_heads")


def cnn_width_error(cfg: CNNConfig, width: int) -> str | None:
    """GroupNorm splits the channels into `groups` groups."""
    return _multiple_error(width, cfg.groups, "GroupNorm groups") if cfg.norm == "group" else None


def llama_width_error(cfg: LlamaConfig, width: int) -> str | None:
    """As a GPT's, and each head even wide (rotary embeddings rotate pairs of coordinates)."""
    if cfg.head_mode == "fixed_dim":
        return _multiple_error(width, cfg.head_dim, "head_dim")
    assert cfg.n_heads is not None  # LlamaConfig's validator guarantees it
    err = _multiple_error(width, cfg.n_heads, "n_heads")
    if err is None and (width // cfg.n_heads) % 2:
        k = 2 * cfg.n_heads
        return (
            f"width {width} gives heads {width // cfg.n_heads} wide, but rotary embeddings need "
            f"an even head dim: use a multiple of {k} such as {(width // k) * k or k} or "
            f"{(width // k + 1) * k}"
        )
    return err


def build_llama(cfg: LlamaConfig, info: TaskInfo, width: int) -> nn.Module:
    """The zoo's LLaMA at `width` (heads per `head_mode`)."""
    if cfg.head_mode == "fixed_dim":
        n_heads = n_kv_heads = width // cfg.head_dim
    else:
        assert cfg.n_heads is not None
        n_heads, n_kv_heads = cfg.n_heads, cfg.n_kv_heads or cfg.n_heads
    return Llama(
        info.n_outputs,
        width,
        cfg.depth,
        n_heads,
        n_kv_heads,
        cfg.head_mode,
        cfg.mlp_hidden(width),
        cfg.tie_embeddings,
        cfg.rope_base,
    )


def _builder(cfg: ModelConfig) -> Callable[[ModelConfig, TaskInfo, int], nn.Module]:
    return _hook(zoo_kind(cfg.kind).builder)


def build_model(cfg: ModelConfig, info: TaskInfo, width: int) -> nn.Module:
    """Build the model `cfg` describes for `info` at `width` (on the current default device),
    with its zoo entry's builder (`experiments.models.configs.ZOO`).

    Weights get PyTorch's default init; `mucore.parametrize(..., reinit=True)` redraws them per
    the chosen parametrization.

    Raises:
        UserError: the model does not fit the task, or cannot be built at this width.
    """
    if zoo_kind(cfg.kind).task_kind is not None:  # hf and registered models check themselves
        errors = check_task(cfg, info) + check_widths(cfg, info, [width])
        if errors:
            raise UserError("; ".join(errors))
    return _builder(cfg)(cfg, info, width)


def build_hf_checked(cfg: HFConfig, info: TaskInfo, width: int) -> nn.Module:
    """A transformers model at `width`; transformers loads here, on first use."""
    from experiments.models.hf import build_hf

    errors = check_widths(cfg, info, [width])
    if errors:
        raise UserError("; ".join(errors))
    return build_hf(cfg, info, width)


def build_mlp(cfg: MLPConfig, info: TaskInfo, width: int) -> nn.Module:
    """The zoo's MLP at `width` (inputs flattened)."""
    in_features = 1
    for s in info.input_shape:
        in_features *= s
    return MLP(in_features, info.n_outputs, width, cfg.depth, cfg.activation, cfg.bias,
               cfg.residual)


def build_gpt(cfg: GPTConfig, info: TaskInfo, width: int) -> nn.Module:
    """The zoo's GPT at `width` (heads per `head_mode`)."""
    assert info.seq_len is not None  # check_task guarantees it
    if cfg.head_mode == "fixed_dim":
        n_heads = width // cfg.head_dim
    else:
        assert cfg.n_heads is not None
        n_heads = cfg.n_heads
    return GPT(info.n_outputs, info.seq_len, width, cfg.depth, n_heads, cfg.head_mode,
               cfg.mlp_ratio)


def build_cnn(cfg: CNNConfig, info: TaskInfo, width: int) -> nn.Module:
    """The zoo's CNN at `width`."""
    return CNN(info.input_shape[0], info.n_outputs, width, cfg.stages, cfg.norm, cfg.groups)


def model_factory(cfg: ModelConfig, info: TaskInfo) -> Callable[[int], nn.Module]:
    """`width -> nn.Module` for `mucore.infer_base_shapes` and the trainer (picklable)."""
    return functools.partial(build_model, cfg, info)


def _build_at_depth(cfg: ModelConfig, info: TaskInfo, width: int, depth: int) -> nn.Module:
    field = zoo_kind(cfg.kind).depth_field
    assert field is not None  # depth_model_factory guarantees it
    return build_model(cfg.model_copy(update={field: depth}), info, width)


def _one_of(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def depth_model_factory(cfg: ModelConfig, info: TaskInfo) -> Callable[[int, int], nn.Module]:
    """`(width, depth) -> nn.Module` for `mucore.infer_base_shapes(..., base_depth=...)`.

    Raises:
        UserError: the model has no `depth` (the CNN, registered models).
    """
    if zoo_kind(cfg.kind).depth_field is None:
        raise UserError(
            f"model '{cfg.kind}' has no depth to scale: depth ladders need "
            f"{_one_of(depth_kinds())}"
        )
    return functools.partial(_build_at_depth, cfg, info)


def count_params(cfg: ModelConfig, info: TaskInfo, width: int) -> int:
    """Number of parameters at `width`, counted on the meta device (no memory, any width).

    Raises:
        UserError: as `build_model`.
    """
    with torch.device("meta"):
        model = build_model(cfg, info, width)
    return sum(p.numel() for p in model.parameters())
