"""Update sizes: does each layer's relative update |dW|/|W| scale with width as µP prescribes?

µP (TP5, Yang et al., 2022, Table 8; the spectral view of Yang, Simon & Bernstein, 2023)
fixes how big every weight's update is relative to the weight itself. Updates are low-rank
(a batch's worth of outer products), so |dW| is close to its operator norm, which µP keeps at
sqrt(fan_out / fan_in) in the effective (multiplier-included) weight, while |W| of a random
init grows like sqrt(fan_out). Measured in raw weights with the mean-|entry| norm (the same
ratio as Frobenius), the relative update of one step scales, per role, like:

1. input-like (finite fan_in): width^0 (Adam: LR constant, init std constant).
2. hidden: width^-1/2 (Adam: LR / m over init std 1/sqrt(fan_in); SGD: the same, since the
   gradient shrinks like 1/m once the readout multiplier is 1/m).
3. output (Table 8 form: base init std, LR constant, alpha_out / m in the forward): width^0.
4. vector-like (biases, norm gains) start at 0 or 1 and are not judged.

SP with Adam gives +1/2 for hidden and output weights (a constant LR against a shrinking
init std); a hidden LR left unscaled under µP gives +1/2 too, a width-independent hidden init
std (GPT-2's 0.02 everywhere) -1. So the check compares each slope with µP's expectation, not
with zero.

`UpdateRecorder` measures without touching the training loop: a forward pre-hook on the root
module compares every judged weight with its copy from the previous forward, so the update
made at step t is seen at the forward of step t + 1. Functions return data and never print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mucore import BaseShapes, Role, canonical_name, log2_slope

# µP's slope of log2(|dW| / |W|) against log2(width), per judged role (the list above).
EXPECTED_SLOPE: dict[Role, float] = {Role.INPUT: 0.0, Role.HIDDEN: -0.5, Role.OUTPUT: 0.0}
# Largest |measured - expected| that passes: µP and SP differ by 1 for hidden weights and by
# 1/2 for the readout; finite widths and Adam's changing second moments move slopes by ~0.1.
UPDATE_TOLERANCE = 0.25


class UpdateRecord(NamedTuple):
    """Relative update mean|W_t - W_(t-1)| / mean|W_(t-1)| of `param` at `step`, at `width`."""

    width: int
    param: str
    role: str
    step: int
    ratio: float


class UpdateSlope(NamedTuple):
    """Slope of log2(ratio) against log2(width) of one parameter at one step."""

    param: str
    step: int
    slope: float


class UpdateJudgement(NamedTuple):
    """One parameter's verdict: the slope of its step-averaged ratio against µP's."""

    param: str
    role: str
    slope: float
    expected: float
    deviation: float
    ok: bool


class UpdateRecorder:
    """Forward pre-hook that records each judged weight's relative update between forwards.

    Args:
        roles: canonical parameter name -> role, for the parameters to judge (matrices of the
            input, hidden and output roles).
    """

    def __init__(self, roles: dict[str, Role]) -> None:
        self.roles = roles
        self.previous: dict[str, Tensor] = {}
        self.ratios: dict[tuple[str, int], float] = {}
        self.forwards = 0

    @torch.no_grad()
    def __call__(self, module: nn.Module, _args: Any) -> None:
        self.forwards += 1
        for raw, p in module.named_parameters():
            name = canonical_name(raw)
            if name not in self.roles:
                continue
            now = p.detach().float()
            before = self.previous.get(name)
            if before is not None:
                size = before.abs().mean().item()
                if size > 0.0:  # a zero-initialised weight has no relative update yet
                    step = self.forwards - 1  # the update made at that step
                    self.ratios[(name, step)] = (now - before).abs().mean().item() / size
            self.previous[name] = now.clone()


def judged_roles(shapes: BaseShapes) -> dict[str, Role]:
    """The parameters whose updates are judged: matrices of the input, hidden, output roles."""
    return {name: b.role for name, b in shapes.params.items()
            if b.role in EXPECTED_SLOPE and len(b.base_shape) >= 2}


@dataclass
class UpdateResult:
    """Relative update sizes over a width ladder and µP's verdict on them.

    Attributes:
        widths: the widths.
        records: the long table (one row per width, parameter, step).
        slopes: per (parameter, step) slopes, for charts.
        judgements: per parameter: the slope of its ratio averaged over steps, against µP's.
        tolerance: largest |deviation| that passes.
    """

    widths: list[int]
    records: list[UpdateRecord]
    slopes: list[UpdateSlope]
    judgements: list[UpdateJudgement]
    tolerance: float

    @property
    def failed(self) -> list[UpdateJudgement]:
        """Parameters whose update slope deviates from µP's, largest deviation first."""
        bad = [j for j in self.judgements if not j.ok]
        return sorted(bad, key=lambda j: -abs(j.deviation) if math.isfinite(j.deviation)
                      else -math.inf)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the doctor's evidence)."""
        return {"widths": self.widths, "tolerance": self.tolerance,
                "judgements": [j._asdict() for j in self.judgements],
                "slopes": [s._asdict() for s in self.slopes],
                "records": [r._asdict() for r in self.records]}


def judge_updates(widths: list[int], per_width: dict[int, UpdateRecorder],
                  tolerance: float = UPDATE_TOLERANCE) -> UpdateResult:
    """Slopes per (parameter, step) and per parameter, judged against `EXPECTED_SLOPE`.

    A parameter is judged on the slope of its ratio averaged over all recorded steps (single
    steps are noisy); a parameter missing at some width (never updated) gets slope +inf.
    """
    roles = per_width[widths[0]].roles
    records = [UpdateRecord(w, n, roles[n].value, t, r)
               for w in widths for (n, t), r in sorted(per_width[w].ratios.items())]
    slopes: list[UpdateSlope] = []
    judgements: list[UpdateJudgement] = []
    for name, role in roles.items():
        steps = sorted({t for (n, t) in per_width[widths[0]].ratios if n == name})
        for t in steps:
            vals = [per_width[w].ratios.get((name, t), math.nan) for w in widths]
            slopes.append(UpdateSlope(name, t, log2_slope(widths, vals)))
        if not steps:
            continue  # never updated at the first width (e.g. a zero-init weight, one step)
        means = [_mean([r for (n, _), r in per_width[w].ratios.items() if n == name])
                 for w in widths]
        slope = log2_slope(widths, means)
        expected = EXPECTED_SLOPE[role]
        deviation = slope - expected
        judgements.append(UpdateJudgement(name, role.value, slope, expected, deviation,
                                          math.isfinite(slope) and abs(deviation) <= tolerance))
    return UpdateResult(list(widths), records, slopes, judgements, tolerance)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def update_message(j: UpdateJudgement) -> str:
    """One sentence: the parameter, its measured and its prescribed scaling."""
    if not math.isfinite(j.slope):
        return f"'{j.param}' ({j.role}): its relative update is not finite at every width"
    return (f"'{j.param}' ({j.role}): relative update |dW|/|W| changes x{2.0 ** j.slope:.2f} "
            f"per width doubling (slope {j.slope:+.2f}); µP prescribes x{2.0 ** j.expected:.2f} "
            f"(slope {j.expected:+.2f})")
