"""What a coordinate check is asked to do, checked before anything is built (torch-free).

A coordinate check runs along one axis (TP5, Appendix D, for width; Dey et al. 2025 and Yang
et al. 2023, TP VI, for depth):

- `width`: the model at each width of an increasing ladder (`--widths`), slopes against
  log2(width);
- `depth`: the model at one fixed width (`--width`) and each depth of an increasing ladder
  (`--depths`), slopes against log2(depth). Only models with residual blocks have a depth to
  scale: `gpt`, `llama`, and `mlp` with `residual: true`.

The CLI (`experiments.commands.coord_check`) and the dashboard (`Service.coord_check_command`)
both validate here, so a bad ladder is refused with the same field-named message everywhere,
before torch is even imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from experiments.errors import UserError
from experiments.models.configs import depth_kinds
from experiments.models.parametrizations import find_parametrization, resolve_parametrization
from mucore.optimizers import optimizer_family, optimizer_names
from mucore.parametrizations import OptimizerFamily

Axis = Literal["width", "depth"]

# Zoo kinds whose depth is a stack of residual blocks (mlp only with residual: true).
DEPTH_KINDS: tuple[str, ...] = tuple(depth_kinds())
DEFAULT_DEPTH_WIDTH = 64


def parse_ladder(text: str, flag: str, example: str) -> list[int]:
    """Parse "2,4,8" into integers.

    Raises:
        UserError: a part is not an integer (the message names `flag` and shows `example`).
    """
    try:
        return [int(p) for p in text.replace(" ", "").split(",") if p]
    except ValueError:
        raise UserError(
            f"{flag} must be comma-separated integers like {example}, got {text!r}"
        ) from None


def validate_depths(depths: Sequence[int], flag: str = "--depths") -> list[int]:
    """At least two depths, each >= 1, strictly increasing.

    Raises:
        UserError: naming `flag`, the offending depth and the fix.
    """
    ds = [int(d) for d in depths]
    if len(ds) < 2:
        raise UserError(f"{flag}: a depth check needs at least two depths, got {ds}: "
                        "e.g. 2,4,8,16")
    for d in ds:
        if d < 1:
            raise UserError(f"{flag}: depths must be >= 1, got {d}")
    for a, b in zip(ds, ds[1:], strict=False):
        if b <= a:
            raise UserError(f"{flag}: the depth ladder must increase strictly: got {b} after "
                            f"{a}; e.g. 2,4,8,16")
    return ds


def parse_depths(text: str) -> list[int]:
    """Parse and validate `--depths` ("2,4,8,16").

    Raises:
        UserError: not integers, fewer than two, or not strictly increasing.
    """
    return validate_depths(parse_ladder(text, "--depths", "2,4,8,16"))


def depth_problem(model_kind: str, residual: bool | None, param: str, optimizer: str) -> str | None:
    """Why a depth check cannot run on this model/parametrization/optimizer, or None.

    Args:
        model_kind: the zoo kind ("gpt", "mlp", ...) or "custom" for a registered model.
        residual: the mlp's `residual` option (None for other kinds).
        param: the parametrization name.
        optimizer: a registered optimizer name (`mucore.optimizer_names()`).
    """
    if model_kind not in DEPTH_KINDS:
        return (f"--model: '{model_kind}' has no residual blocks to add, so it has no depth "
                f"to check; use gpt, llama or mlp with --option residual=true")
    if model_kind == "mlp" and not residual:
        return ("--model mlp: a depth check needs residual blocks: add --option residual=true "
                "(the plain mlp has no residual branch to scale)")
    table = find_parametrization(param)
    family = optimizer_family(optimizer) if optimizer in optimizer_names() else None
    if family is OptimizerFamily.SGD and table is not None and not table.supports(family):
        return (f"--optimizer: '{param}' states its depth rules for Adam/AdamW only; use "
                "--optimizer adam, or --param mup for SGD")
    return None


@dataclass(frozen=True)
class CoordCheckRequest:
    """One coordinate check as the dashboard asks for it (the CLI flags, typed).

    Attributes:
        model: a zoo kind or a registered model's name.
        model_args: the `--option`/`--task` flags a registered model's fields produced.
        param: a registered parametrization (mucore's or the user's).
        axis: "width" (a width ladder) or "depth" (a depth ladder at one width).
        widths: the width ladder (axis width).
        depths: the depth ladder (axis depth).
        width: the fixed width of a depth check.
        steps: recorded steps (step 1 = at init).
        optimizer: a registered optimizer name (`mucore.optimizer_names()`).
        lr: global learning rate.
        residual: the mlp's residual option (a depth check on mlp needs it).
    """

    model: str
    param: str
    axis: Axis = "width"
    widths: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (2, 4, 8, 16)
    width: int = DEFAULT_DEPTH_WIDTH
    steps: int = 4
    optimizer: str = "adam"
    lr: float = 1e-2
    model_args: tuple[str, ...] = field(default=())
    residual: bool = False

    def validate(self) -> None:
        """Refuse what the CLI would refuse, field by field.

        Raises:
            UserError: an unknown parametrization, a bad ladder or width, or a depth check on
                a model or optimizer that has no depth rules.
        """
        try:
            resolve_parametrization(self.param)
        except UserError as exc:
            raise UserError(f"--param: {exc}") from None
        if self.axis == "width":
            return
        validate_depths(self.depths)
        if self.width < 1:
            raise UserError(f"--width must be >= 1, got {self.width}")
        problem = depth_problem(self.model, self.residual if self.model == "mlp" else None,
                                self.param, self.optimizer)
        if problem:
            raise UserError(problem)

    def cli_args(self) -> list[str]:
        """The `python -m experiments coord-check` arguments (without `--json`)."""
        self.validate()
        args = ["coord-check", "--model", self.model, *self.model_args, "--param", self.param]
        if self.axis == "depth":
            if self.model == "mlp" and self.residual:
                args += ["--option", "residual=true"]
            args += ["--depths", ",".join(map(str, self.depths)), "--width", str(self.width)]
        else:
            args += ["--widths", ",".join(map(str, self.widths))]
        return args + ["--steps", str(int(self.steps)), "--optimizer", self.optimizer,
                       "--lr", repr(float(self.lr))]
