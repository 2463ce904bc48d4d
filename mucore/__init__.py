"""mucore: our µP (Maximal Update Parametrization) library.

Tensor Programs V (Yang et al., 2022): parametrize in µP, tune on a narrow proxy, copy the HPs
to the wide target. Depends on torch only.

Typical use::

    shapes = mucore.infer_base_shapes(factory, base_width=64)
    model = factory(1024)
    setup = mucore.parametrize(model, shapes, "mup", mucore.HParams(output_mult=2.0), seed=0)
    opt = mucore.build_optimizer(model, setup, "adam", lr=2**-8)

A model you did not write (Hugging Face transformers, torch's blocks): in its factory, swap
the head with `mucore.replace_readout(model, "lm_head")`; `parametrize` then sets the score
scale of its attention modules too (`mucore.adapters`).

The public names load on first use (PEP 562), so `import mucore.hparams`,
`import mucore.parametrizations` or `import mucore.optimizers` stays torch-free: the spec and
form layers of `experiments` read the knob, parametrization and optimizer tables without paying
for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "configure_attention": "adapters",
    "replace_readout": "adapters",
    "BundleError": "bundle",
    "apply_bundle": "bundle",
    "load_bundle": "bundle",
    "Diagnosis": "check",
    "Finding": "check",
    "check": "check",
    "setup_of": "check",
    "MuContext": "context",
    "MuSetup": "context",
    "CoordCheckResult": "coord",
    "CoordRecord": "coord",
    "CoordSlope": "coord",
    "coord_check": "coord",
    "log2_slope": "coord",
    "DepthCoordResult": "coord",
    "LadderRun": "coord",
    "coord_check_depth": "coord",
    "coord_check_ladder": "coord",
    "DescribeRow": "summary",
    "describe": "summary",
    "HParams": "hparams",
    "init_std": "init",
    "parametrize": "init",
    "InputScale": "layers",
    "MuConfigurable": "layers",
    "Readout": "layers",
    "ResidualBranch": "layers",
    "TiedReadout": "layers",
    "attention_scale": "layers",
    "build_optimizer": "optim",
    "optimizer_class": "optim",
    "OptimizerEntry": "optimizers",
    "get_optimizer": "optimizers",
    "optimizer_family": "optimizers",
    "optimizer_names": "optimizers",
    "register_optimizer": "optimizers",
    "rule_family": "optimizers",
    "settings_family": "optimizers",
    "MUON_ADJUSTMENTS": "optimizers",
    "Lion": "lion",
    "MuonAdamW": "muon",
    "muon_owns": "parametrizations",
    "param_groups": "optim",
    "relative_schedule": "optim",
    "warmup_cosine": "optim",
    "warmup_stable_decay": "optim",
    "COMPLETEP": "parametrizations",
    "DEPTH_MUP": "parametrizations",
    "MUP": "parametrizations",
    "SP": "parametrizations",
    "InitRule": "parametrizations",
    "OptimizerFamily": "parametrizations",
    "Parametrization": "parametrizations",
    "RoleRule": "parametrizations",
    "get_parametrization": "parametrizations",
    "parametrization_names": "parametrizations",
    "register_parametrization": "parametrizations",
    "OptimizerSettings": "scaling",
    "ScalingAxis": "scaling",
    "ScalingRule": "scaling",
    "candidate_exponents": "scaling",
    "get_scaling_rule": "scaling",
    "power_rule": "scaling",
    "scale_settings": "scaling",
    "BaseParam": "roles",
    "BaseShapes": "roles",
    "ParamInfo": "roles",
    "Role": "roles",
    "ShapeInferenceError": "roles",
    "canonical_name": "roles",
    "infer_base_shapes": "roles",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name's submodule on first access (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mucore' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mucore.{module}"), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # static checkers see the eager imports
    from mucore.adapters import configure_attention, replace_readout
    from mucore.bundle import BundleError, apply_bundle, load_bundle
    from mucore.check import Diagnosis, Finding, check, setup_of
    from mucore.context import MuContext, MuSetup
    from mucore.coord import (
        CoordCheckResult,
        CoordRecord,
        CoordSlope,
        DepthCoordResult,
        LadderRun,
        coord_check,
        coord_check_depth,
        coord_check_ladder,
        log2_slope,
    )
    from mucore.hparams import HParams
    from mucore.init import init_std, parametrize
    from mucore.layers import (
        InputScale,
        MuConfigurable,
        Readout,
        ResidualBranch,
        TiedReadout,
        attention_scale,
    )
    from mucore.lion import Lion
    from mucore.muon import MuonAdamW
    from mucore.optim import (
        build_optimizer,
        optimizer_class,
        param_groups,
        relative_schedule,
        warmup_cosine,
        warmup_stable_decay,
    )
    from mucore.optimizers import (
        MUON_ADJUSTMENTS,
        OptimizerEntry,
        get_optimizer,
        optimizer_family,
        optimizer_names,
        register_optimizer,
        rule_family,
        settings_family,
    )
    from mucore.parametrizations import (
        COMPLETEP,
        DEPTH_MUP,
        MUP,
        SP,
        InitRule,
        OptimizerFamily,
        Parametrization,
        RoleRule,
        get_parametrization,
        muon_owns,
        parametrization_names,
        register_parametrization,
    )
    from mucore.roles import (
        BaseParam,
        BaseShapes,
        ParamInfo,
        Role,
        ShapeInferenceError,
        canonical_name,
        infer_base_shapes,
    )
    from mucore.scaling import (
        OptimizerSettings,
        ScalingAxis,
        ScalingRule,
        candidate_exponents,
        get_scaling_rule,
        power_rule,
        scale_settings,
    )
    from mucore.summary import DescribeRow, describe
