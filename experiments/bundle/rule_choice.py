"""Exporting under another batch or horizon rule than the sweep's: a named one, or the fitted
exponent (`export --batch-rule`, `--horizon-rule`).

A batch or horizon ladder is swept under one rule (`scaling:` in the spec) and measures the LR
exponent the data prefer beside the published rules' (`experiments.analysis.exponent`: e_fit =
e_rule + drift slope, and each candidate's regret at the largest rung). The export may apply:

- `fitted`: the sweep's own rule (its LR, betas and eps moves: the settings the rungs trained
  with) and the LR further x k^(e_fit - e_rule), the drift the ladder measured on top of it; so
  the LR moves as k^e_fit. e_fit is the exported parametrization's;
- a named rule (`none`, `sqrt`, `linear`) or `power:X`: that rule's LR, betas and eps moves.

The evidence for a rule other than the sweep's is its candidate row, not the axis verdict (the
verdict judges the drift left under the *swept* rule). So, off the base and without `--force`,
the choice is accepted when its row priced the largest rung with a regret within the regret
tolerance (1% of the best loss) or the seed noise there, and refused otherwise naming the row
and the cheaper candidate. A power exponent no candidate row priced is refused the same way.
"""

from __future__ import annotations

from experiments.analysis import TransferReport
from experiments.analysis.exponent_schema import FITTED, CandidateRegret, ExponentFit
from experiments.analysis.verdict import DEFAULT_REGRET_TOLERANCE
from experiments.errors import UserError
from experiments.spec.scaling import PowerRule, ScalingConfig

# How a rule is written on the command line besides the named rules: `power:X`.
POWER_PREFIX = "power:"


def parse_rule(axis: str, text: str) -> str | PowerRule:
    """`--batch-rule` / `--horizon-rule` as the spec's value (`fitted` stays a marker).

    Raises:
        UserError: not a rule of the axis, `fitted` or `power:X`.
    """
    if text == FITTED:
        return FITTED
    if text.startswith(POWER_PREFIX):
        try:
            return PowerRule(power=float(text[len(POWER_PREFIX):]))
        except ValueError:
            raise UserError(f"--{axis}-rule {text}: write power:X with a finite number X, "
                            "e.g. power:0.5") from None
    try:
        ScalingConfig.model_validate({axis: text})
    except ValueError as exc:
        raise UserError(f"--{axis}-rule {text}: {_first_line(exc)}; or use fitted") from None
    return text


def _first_line(exc: ValueError) -> str:
    text = str(exc)
    return text.split("Value error, ")[-1].split("\n")[0].split(" [type=")[0]


def chosen_scaling(spec_scaling: ScalingConfig, report: TransferReport, parametrization: str,
                   rules: dict[str, str | PowerRule]) -> tuple[ScalingConfig, dict[str, float]]:
    """(the scaling config the export applies, {axis: extra LR exponent on top of it}) with
    `rules` (axis -> parsed choice) replacing the sweep's rule on their axes; `fitted` keeps
    the sweep's rule and adds the measured drift as the extra exponent.

    Raises:
        UserError: `fitted` on an axis whose section has no fitted exponent.
    """
    update: dict[str, str | PowerRule] = {}
    extra: dict[str, float] = {}
    for axis, choice in rules.items():
        if choice != FITTED:
            update[axis] = choice
            continue
        fit = _fit(report, axis, parametrization)
        if fit is None or fit.exponent is None:
            raise UserError(f"--{axis}-rule fitted needs the sweep's {axis} section to fit an "
                            f"exponent for {parametrization}, and it has none (fewer than two "
                            f"{axis} rungs with an optimum): name a rule instead")
        extra[axis] = fit.exponent - fit.rule_exponent
    return spec_scaling.model_copy(update=update), extra


def _fit(report: TransferReport, axis: str, parametrization: str) -> ExponentFit | None:
    section = report.ladders.get(axis)
    d = None if section is None else section.parametrizations.get(parametrization)
    return None if d is None else d.exponent


def check_rule_choice(report: TransferReport, parametrization: str, axis: str,
                      choice: str | PowerRule, exponent: float, base: int | None,
                      target: int | None, force: bool) -> bool:
    """Refuse (unless `force`) a rule whose priced regret at the largest rung is beyond the
    tolerance and the seed noise (module docstring); returns whether `force` overrode it.

    Raises:
        UserError: the choice is refused, naming its regret and the cheapest candidate.
    """
    if base is None or target == base:
        return False
    section = report.ladders.get(axis)
    d = None if section is None else section.parametrizations.get(parametrization)
    fit = None if d is None else d.exponent
    label = FITTED if choice == FITTED else (
        f"power:{choice.power:g}" if isinstance(choice, PowerRule) else str(choice))
    row = None if fit is None else next(
        (c for c in fit.candidates
         if (c.rule == FITTED if choice == FITTED else abs(c.exponent - exponent) < 1e-6
             and c.rule != FITTED)), None)
    if row is not None and _within(row):
        return False
    if force:
        return True
    where = "the sweep priced no rule" if fit is None else f"at {axis} {fit.rung}"
    cost = ("it was not priced (no candidate with this exponent)" if row is None else
            f"its regret {where} is " + ("not a number: " + (row.note or row.status)
                                         if row.abs is None else _cost(row)))
    hint = "" if fit is None else _hint(fit, row)
    raise UserError(f"--{axis}-rule {label}: {cost}{hint}: pick a rule within the seed noise, "
                    f"export for the base {axis} {base}, or pass --force (recorded)")


def _hint(fit: ExponentFit, chosen: CandidateRegret | None) -> str:
    """The cheaper ways out: the cheapest other published rule, and the fitted exponent."""
    others = [c for c in fit.candidates if c is not chosen and c.abs is not None]
    named = [c for c in others if c.rule != FITTED]
    fitted = next((c for c in others if c.rule == FITTED), None)
    out = ""
    if named:
        best = min(named, key=lambda c: c.abs or 0.0)
        out += f"; the cheapest other rule there is {best.rule} ({_cost(best)})"
    if fitted is not None:
        out += f"; the fitted exponent {fitted.exponent:+.2f} costs {_cost(fitted)}"
    return out


def _within(row: CandidateRegret) -> bool:
    if row.abs is None:
        return False
    noise = row.noise_abs or 0.0
    return row.abs <= noise or (row.rel is not None and row.rel <= DEFAULT_REGRET_TOLERANCE)


def _cost(row: CandidateRegret) -> str:
    if row.abs is None:
        return row.note or row.status
    rel = "" if row.rel is None else f" ({row.rel:.1%} of the best loss)"
    noise = "" if row.noise_abs is None else f", seed noise {row.noise_abs:.4f}"
    return f"{row.abs:.4f} in loss{rel}{noise}"
