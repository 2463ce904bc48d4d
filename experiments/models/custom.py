"""Build a registered model at a width, and check that µP can scale it.

A zoo model is µP-ready by construction; a user's model is checked when a spec names it, so a
bad one is refused before anything is stored (TP5, Yang et al., 2022, Section 5: µP reads each
parameter's role from how its shape grows with width):

1. it builds at every width of the ladder (on the meta device: no memory at any width);
2. it builds something different at two widths (else µP has nothing to scale);
3. its parameters keep their names and count across widths, and `mucore.infer_base_shapes`
   can assign every one a role (its errors name the parameter);
4. it has a readout that applies µP's output multiplier: a `mucore.Readout` (or another
   module that configures itself, e.g. `mucore.TiedReadout`) holding the output-like weight.

A parameter whose role its shapes cannot tell (a fixed-size matrix, say) gets it from the
model's file: a module-level mapping `ROLES = {"mixer.tokens.weight": "vector"}` (parameter
name -> "input" | "hidden" | "output" | "vector"). `build_custom` puts it on the built model
as its `mu_roles` (`mucore.roles.ROLES_ATTR`), which every `mucore.infer_base_shapes` reads.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import torch
from torch import nn

import mucore
from experiments.errors import UserError
from experiments.models.configs import CustomModelConfig
from experiments.models.registry import RegisteredModel, blame, get_model
from experiments.tasks.config import TaskInfo
from mucore.layers import MuConfigurable, TiedReadout
from mucore.roles import ROLES_ATTR

_READOUT_FIX = ("make the output layer `mucore.Readout(width, task.n_outputs)` (a drop-in "
                "nn.Linear) so µP can scale it")


def build_custom(cfg: CustomModelConfig, info: TaskInfo, width: int) -> nn.Module:
    """The registered model `cfg.name` at `width` for the task, with `cfg.options`.

    Built on the current default device (`with torch.device("meta"):` costs no memory).

    Raises:
        UserError: unknown model or options, or `build` raised or returned no `nn.Module`
            (with the file and line it failed at).
    """
    model = get_model(cfg.name)
    options = model.resolved_options(cfg.options)
    try:
        net = model.build(width, task=info, **options)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"model '{cfg.name}' failed to build at width {width} for task "
                        f"'{info.name}' ({blame(exc, model.file)}): {type(exc).__name__}: "
                        f"{exc}") from exc
    if not isinstance(net, nn.Module):
        raise UserError(f"model '{cfg.name}': build() returned a {type(net).__name__}, not a "
                        f"torch.nn.Module ({model.source})")
    roles = declared_roles(model)
    if roles:
        # The model's own `mu_roles`, if it sets one, wins over the file's mapping.
        own = getattr(net, ROLES_ATTR, None)
        setattr(net, ROLES_ATTR, {**roles, **(own if isinstance(own, Mapping) else {})})
    return net


ROLES_NAME = "ROLES"


def declared_roles(model: RegisteredModel) -> dict[str, str]:
    """The module-level `ROLES` mapping of the registered model's file (empty if none).

    Raises:
        UserError: `ROLES` is not a mapping of parameter names to role names.
    """
    roles = getattr(model.build, "__globals__", {}).get(ROLES_NAME)
    if roles is None:
        return {}
    valid = {r.value for r in mucore.Role}
    if not isinstance(roles, Mapping) or not all(
            isinstance(k, str) and v in valid for k, v in roles.items()):
        raise UserError(f"model '{model.name}' ({model.source}): {ROLES_NAME} must map "
                        f"parameter names to one of {sorted(valid)}, e.g. "
                        f"{ROLES_NAME} = {{'mixer.weight': 'vector'}}; got {roles!r}")
    return dict(roles)


# (model object, options, task, widths, base width) -> problems; the dashboard re-validates a
# spec on every edit, and a model object is new whenever its file changed.
_CHECKED: dict[tuple[int, str, TaskInfo, tuple[int, ...], int], list[tuple[str, str]]] = {}


def custom_problems(
    cfg: CustomModelConfig, info: TaskInfo, widths: Sequence[int], base_width: int
) -> list[tuple[str, str]]:
    """(spec field, message) for each reason the model cannot be swept over `widths` in µP.

    The checks of the module docstring, in order; the first failing one is reported.
    Raises nothing: an unknown model or bad options come back as problems too.
    """
    try:
        model = get_model(cfg.name)
    except UserError as exc:
        return [("model.name", str(exc))]
    key = (id(model), repr(sorted(cfg.options.items())), info, tuple(widths), base_width)
    if key not in _CHECKED:
        if len(_CHECKED) > 256:
            _CHECKED.clear()
        _CHECKED[key] = _problems(model, cfg, info, sorted({*widths, base_width}), base_width)
    return list(_CHECKED[key])


def _problems(model: RegisteredModel, cfg: CustomModelConfig, info: TaskInfo,
              widths: list[int], base_width: int) -> list[tuple[str, str]]:
    options = model.option_problems(cfg.options)
    if options:
        return [(f"model.options.{k}", msg) for k, msg in options]
    delta = next((w for w in widths if w != base_width), 2 * base_width)
    built: dict[int, nn.Module] = {}
    for w in [base_width, *[w for w in widths if w != base_width], delta]:
        try:
            with torch.device("meta"):
                built[w] = build_custom(cfg, info, w)
        except UserError as exc:
            hint = "" if w == base_width else ": use widths it can be built at"
            return [("model" if w == base_width else "widths", f"{exc}{hint}")]
    problem = _no_width_problem(model, built[base_width], built[delta], base_width, delta)
    if problem is None:
        try:
            shapes = mucore.infer_base_shapes(functools.partial(build_custom, cfg, info),
                                              base_width, delta)
        except mucore.ShapeInferenceError as exc:
            note = (f" (in a registered model, declare it in the file: {ROLES_NAME} = "
                    "{'<parameter>': 'vector'}, or make that parameter grow with width)"
                    ) if "overrides" in str(exc) else ""
            problem = f"model '{model.name}' ({model.source}): {exc}{note}"
        else:
            problem = _readout_problem(model, built[base_width], shapes)
    return [("model", problem)] if problem else []


def _no_width_problem(model: RegisteredModel, base: nn.Module, other: nn.Module,
                      base_width: int, delta: int) -> str | None:
    shapes0 = {n: tuple(p.shape) for n, p in base.named_parameters()}
    shapes1 = {n: tuple(p.shape) for n, p in other.named_parameters()}
    if not shapes0:
        return f"model '{model.name}' ({model.source}) has no parameters: nothing to train"
    if shapes0 == shapes1:
        return (f"model '{model.name}' ({model.source}) builds the same parameters at widths "
                f"{base_width} and {delta}: build() must use `width` for its hidden size (e.g. "
                "nn.Linear(width, width)), or µP has nothing to scale")
    return None


def _readout_problem(model: RegisteredModel, net: nn.Module,
                     shapes: mucore.BaseShapes) -> str | None:
    """Whether the output-like weight sits in a module that applies µP's output multiplier."""
    found = False
    for mod_name, module in net.named_modules():
        if isinstance(module, TiedReadout):
            found = True
        for p_name, _ in module.named_parameters(recurse=False):
            name = mucore.canonical_name(f"{mod_name}.{p_name}" if mod_name else p_name)
            if shapes.params[name].role is not mucore.Role.OUTPUT:
                continue
            if not isinstance(module, MuConfigurable):
                return (f"model '{model.name}' ({model.source}) has no identifiable readout: "
                        f"'{name}' is output-like (width-like fan_in, fixed fan_out) but sits in "
                        f"a {type(module).__name__}, which cannot apply µP's output multiplier: "
                        f"{_READOUT_FIX}")
            found = True
    if found:
        return None
    return (f"model '{model.name}' ({model.source}) has no identifiable readout: no parameter "
            "maps the width to a fixed number of outputs, so µP cannot tell which layer is the "
            f"output: {_READOUT_FIX}")
