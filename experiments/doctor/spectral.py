"""Update norms: does each weight's step update have the spectral norm µP prescribes?

The spectral condition (Yang, Simon & Bernstein, 2023, "A Spectral Condition for Feature
Learning", arXiv 2310.17813) states µP for any optimizer at once: every weight W of the
effective network and every update dW should have spectral norm of order
sqrt(fan_out / fan_in). In the raw weights mucore trains (the readout's alpha_out / m lives in
the forward) that gives, per role, the slope of log2 |dW|_2 against log2(width):

1. input-like (fan_in finite, fan_out ~ n): sqrt(n) -> +1/2;
2. hidden (fan_in, fan_out ~ n): 1 -> 0, whatever the optimizer: Adam's LR / m times a
   sign-like update of norm ~ n, Lion's the same, Muon's orthogonalised update (norm ~1) at a
   width-constant LR ("original" adjustment), or at LR / sqrt(m) with "match_rms_adamw", whose
   update is 0.2 sqrt(max(fan_out, fan_in)) times larger; left uncorrected that is +1/2;
3. output (fan_out finite, fan_in ~ n): effective sqrt(1 / n), raw (x m) sqrt(n) -> +1/2.

Unlike the relative update |dW| / |W| in mean-|entry| norm (`experiments.doctor.updates`), the
spectral norm does not depend on the update's rank, so it judges Muon's full-rank updates and
Adam's low-rank ones by one rule. The weights' own spectral norms are recorded as evidence (a
random fan_out x fan_in matrix has norm ~ sqrt(fan_out) + sqrt(fan_in), so the asymptotic rule
is approached only slowly when one side is finite: they are shown, not judged).

`SpectralRecorder` is a forward pre-hook on the root module, like `UpdateRecorder`: the update
made at step t is seen at the forward of step t + 1. Functions return data and never print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from mucore import Role, canonical_name, log2_slope
from mucore.check import Finding

# The spectral condition's slope of log2 |dW|_2 against log2(width), per judged role.
EXPECTED_NORM_SLOPE: dict[Role, float] = {Role.INPUT: 0.5, Role.HIDDEN: 0.0, Role.OUTPUT: 0.5}
# Largest |measured - expected| that passes: Muon "match_rms_adamw" without its hidden LR
# correction is off by +1/2 and SP with Adam by +1 (hidden); healthy zoo models measure within
# ~0.1 (docs/optimizers.md has the numbers).
NORM_TOLERANCE = 0.25
# The weights' own norms (evidence, not judged) are taken every this many steps: an SVD per
# weight and step would double the check's cost.
WEIGHT_EVERY = 10


class NormJudgement(NamedTuple):
    """One weight's verdict: the slope of its step-averaged |dW|_2 against the rule's."""

    param: str
    role: str
    slope: float
    expected: float
    deviation: float
    ok: bool
    weight_slope: float


def _spectral(t: Tensor) -> float:
    """Largest singular value, a rank > 2 tensor read as (out, everything else)."""
    m = t.reshape(t.shape[0], -1) if t.ndim > 2 else t
    return float(torch.linalg.matrix_norm(m, ord=2).item())


class SpectralRecorder:
    """Forward pre-hook recording |W_t - W_(t-1)|_2 and |W_t|_2 of each judged weight.

    Args:
        roles: canonical parameter name -> role (matrices of the input, hidden, output roles).
    """

    def __init__(self, roles: dict[str, Role]) -> None:
        self.roles = roles
        self.previous: dict[str, Tensor] = {}
        self.updates: dict[tuple[str, int], float] = {}
        self.weights: dict[tuple[str, int], float] = {}
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
                step = self.forwards - 1  # the update made at that step
                self.updates[(name, step)] = _spectral(now - before)
                if step % WEIGHT_EVERY == 1:  # evidence only: a few steps are enough
                    self.weights[(name, step)] = _spectral(now)
            self.previous[name] = now.clone()


@dataclass
class NormResult:
    """Spectral update norms over a width ladder and the spectral condition's verdict.

    Attributes:
        widths: the widths.
        judgements: per weight: slope of its step-averaged |dW|_2, against the rule's.
        tolerance: largest |deviation| that passes.
    """

    widths: list[int]
    judgements: list[NormJudgement]
    tolerance: float

    @property
    def failed(self) -> list[NormJudgement]:
        """Weights whose update norm scales off the rule, largest deviation first."""
        bad = [j for j in self.judgements if not j.ok]
        return sorted(bad, key=lambda j: -abs(j.deviation) if math.isfinite(j.deviation)
                      else -math.inf)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (the doctor's evidence)."""
        return {"widths": self.widths, "tolerance": self.tolerance,
                "judgements": [j._asdict() for j in self.judgements]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _slope(widths: list[int], per_width: dict[int, SpectralRecorder], name: str,
           attr: str) -> float:
    means = [_mean([v for (n, _), v in getattr(per_width[w], attr).items() if n == name and v > 0])
             for w in widths]
    return log2_slope(widths, means)


def judge_norms(widths: list[int], per_width: dict[int, SpectralRecorder],
                tolerance: float = NORM_TOLERANCE) -> NormResult:
    """Per weight, the slope of its step-averaged update norm, judged against
    `EXPECTED_NORM_SLOPE`; weights never updated at the first width are skipped."""
    roles = per_width[widths[0]].roles
    judgements = []
    for name, role in roles.items():
        if not any(n == name and v > 0 for (n, _), v in per_width[widths[0]].updates.items()):
            continue  # never moved (a frozen or zero-gradient weight): nothing to judge
        slope = _slope(widths, per_width, name, "updates")
        expected = EXPECTED_NORM_SLOPE[role]
        deviation = slope - expected
        judgements.append(NormJudgement(
            name, role.value, slope, expected, deviation,
            math.isfinite(slope) and abs(deviation) <= tolerance,
            _slope(widths, per_width, name, "weights")))
    return NormResult(list(widths), judgements, tolerance)


def norm_message(j: NormJudgement) -> str:
    """One sentence: the weight, its measured and its prescribed update-norm scaling."""
    if not math.isfinite(j.slope):
        return f"'{j.param}' ({j.role}): its update norm is not finite at every width"
    return (f"'{j.param}' ({j.role}): update spectral norm |dW|_2 changes x{2.0 ** j.slope:.2f} "
            f"per width doubling (slope {j.slope:+.2f}); the spectral condition prescribes "
            f"x{2.0 ** j.expected:.2f} (slope {j.expected:+.2f})")


# The fix for Muon's "match_rms_adamw" run without its hidden LR correction.
MATCH_RMS_FIX = (
    "Muon with adjust_lr_fn='match_rms_adamw' scales each hidden update by 0.2 sqrt(max(fan_out, "
    "fan_in)), which grows like sqrt(m): divide the hidden LR by sqrt(m) as well. Keep "
    "hidden_lr_correction on (drop --no-hidden-lr-correction / hidden_lr_correction: false): "
    "mucore.build_optimizer(model, setup, 'muon', lr, adjust_lr_fn='match_rms_adamw') does it; "
    "or use the 'original' adjustment, whose hidden LR is width-constant")
_GENERIC_FIX = (
    "build the optimizer with mucore.build_optimizer after mucore.parametrize: its groups give "
    "each role the LR that keeps |dW|_2 ~ sqrt(fan_out / fan_in) (Adam and Lion: hidden LR / m; "
    "Muon: hidden LR constant, / sqrt(m) with 'match_rms_adamw')")


def uncorrected_match_rms(optimizer_options: dict[str, Any]) -> bool:
    """Muon's "match_rms_adamw" with the hidden LR correction left out."""
    return (optimizer_options.get("adjust_lr_fn") == "match_rms_adamw"
            and not optimizer_options.get("hidden_lr_correction", True))


def norm_finding(norms: NormResult, param: str, optimizer: str,
                 optimizer_options: dict[str, Any]) -> Finding:
    """The update-norm measurement as one finding (SP deviating is SP: a warning)."""
    evidence = norms.to_dict()
    failed = norms.failed
    if not failed:
        return Finding("update_norm", "pass",
                       f"every weight's update spectral norm scales with width as the spectral "
                       f"condition prescribes ({len(norms.judgements)} weights, {optimizer}, "
                       f"widths {norms.widths})", evidence=evidence)
    worst = norm_message(failed[0])
    if param == "sp":
        return Finding("update_norm", "warn", f"SP: update norms do not scale as µP's ({worst})",
                       "use --param mup for hyperparameters that transfer across width",
                       evidence)
    hidden = failed[0].role == Role.HIDDEN.value and failed[0].deviation > 0
    fix = MATCH_RMS_FIX if hidden and uncorrected_match_rms(optimizer_options) else _GENERIC_FIX
    return Finding("update_norm", "fail",
                   f"{len(failed)} weights take updates of the wrong spectral norm for µP "
                   f"({optimizer}); worst: {worst}", fix, evidence)
