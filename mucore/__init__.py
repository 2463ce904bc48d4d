"""mucore: our µP (Maximal Update Parametrization) library.

Tensor Programs V (Yang et al., 2022): parametrize in µP, tune on a narrow proxy, copy the HPs
to the wide target. Depends on torch only.

Typical use::

    shapes = mucore.infer_base_shapes(factory, base_width=64)
    model = factory(1024)
    setup = mucore.parametrize(model, shapes, "mup", mucore.HParams(output_mult=2.0), seed=0)
    opt = mucore.build_optimizer(model, setup, "adam", lr=2**-8)
"""

from mucore.bundle import BundleError, apply_bundle, load_bundle
from mucore.context import MuContext, MuSetup
from mucore.coord import CoordCheckResult, CoordRecord, CoordSlope, coord_check, log2_slope
from mucore.describe import DescribeRow, describe
from mucore.hparams import HParams
from mucore.init import init_std, parametrize
from mucore.layers import InputScale, MuConfigurable, Readout, attention_scale
from mucore.optim import (
    build_optimizer,
    optimizer_family,
    param_groups,
    relative_schedule,
    warmup_cosine,
)
from mucore.parametrizations import (
    MUP,
    SP,
    InitRule,
    OptimizerFamily,
    Parametrization,
    RoleRule,
    get_parametrization,
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

__all__ = [
    "MUP",
    "SP",
    "BaseParam",
    "BaseShapes",
    "BundleError",
    "CoordCheckResult",
    "CoordRecord",
    "CoordSlope",
    "DescribeRow",
    "HParams",
    "InitRule",
    "InputScale",
    "MuConfigurable",
    "MuContext",
    "MuSetup",
    "OptimizerFamily",
    "ParamInfo",
    "Parametrization",
    "Readout",
    "Role",
    "RoleRule",
    "ShapeInferenceError",
    "apply_bundle",
    "attention_scale",
    "build_optimizer",
    "canonical_name",
    "coord_check",
    "describe",
    "get_parametrization",
    "infer_base_shapes",
    "load_bundle",
    "init_std",
    "log2_slope",
    "optimizer_family",
    "param_groups",
    "parametrization_names",
    "parametrize",
    "register_parametrization",
    "relative_schedule",
    "warmup_cosine",
]
