"""The µTransfer verdict of one HP (step 5 of `experiments.analysis.report`, which states the rule).

Judged on µP's drift (`VERDICT_PARAMETRIZATION`); SP's drift is quoted beside it, as the
contrast TP5 Figure 1 draws.
"""

from __future__ import annotations

from experiments.analysis.schema import VERDICT_PARAMETRIZATION, DriftResult, HPVerdict, hp_words

DEFAULT_TOLERANCE = 0.25
# Its drift is quoted in every reason, beside µP's: the contrast the verdict is about.
COMPARED_PARAMETRIZATION = "sp"


def fmt_ci(ci: list[float] | None) -> str:
    """A 95% interval as words use it: "[-0.12, +0.30]", or "[n/a]"."""
    return "[n/a]" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def hp_verdict(
    hp: str, by_param: dict[str, DriftResult], tol: float, strict_interval: bool = False
) -> HPVerdict:
    """Apply the rule of `experiments.analysis.report` (step 5) to one HP.

    Args:
        hp: the HP ("lr" or a global knob).
        by_param: its drift per parametrization.
        tol: |µP drift| allowed, log2 units per width doubling.
        strict_interval: also require the drift's whole 95% interval within `tol` (rule (d)).
    """
    words = hp_words(hp)
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    sp = by_param.get(COMPARED_PARAMETRIZATION)
    sp_note = ""
    if sp is not None and sp.drift_slope is not None:
        sp_note = (f"; SP {words} drift {sp.drift_slope:+.2f} log2 per width doubling "
                   f"(95% CI {fmt_ci(sp.drift_ci)})")

    def no(reason: str) -> HPVerdict:
        return HPVerdict(hp=hp, verdict="not_confirmed", reason=reason + sp_note)

    if mup is None:
        return no(f"the sweep has no µP runs: {words} transfer is judged on µP; add mup to "
                  "parametrizations")
    usable = mup.usable()
    if len(usable) < 2 or mup.drift_slope is None:
        return no(f"µP has an {words} optimum at {len(usable)} width(s): at least two are needed")
    edges = [w.width for w in usable if w.edge is not None]
    if edges:
        return no(f"µP {words} optimum at the edge of the grid for widths {edges}: the true "
                  "optimum may lie beyond it; extend the grid")
    drift = (f"µP {words} drift {mup.drift_slope:+.2f} log2 per width doubling "
             f"(95% CI {fmt_ci(mup.drift_ci)})")
    if abs(mup.drift_slope) > tol:
        return no(f"{drift} exceeds the tolerance ±{tol:g}")
    if strict_interval and not _ci_within(mup.drift_ci, tol):
        return no(f"{drift}: the interval is not within the tolerance ±{tol:g} (strict rule); "
                  "add widths or seeds to narrow it")
    step = mup.grid_step or 0.0
    if not mup.optima_agree:
        return no(f"{drift} is within ±{tol:g}, but the per-width optima disagree: their "
                  f"intervals are {mup.optima_spread:.2f} log2 apart, more than one grid step "
                  f"({step:g})")
    return HPVerdict(hp=hp, verdict="confirmed",
                     reason=f"{drift} is within ±{tol:g} and the per-width optima agree within "
                            f"their intervals (within one grid step, {step:g}){sp_note}")


def interval_warning(hp: str, by_param: dict[str, DriftResult], tol: float) -> str | None:
    """The warning when µP's drift interval pokes out of the tolerance (not part of the default
    rule, so the reader is told what the verdict rests on); None when it fits or is absent."""
    mup = by_param.get(VERDICT_PARAMETRIZATION)
    if mup is None or mup.drift_ci is None or _ci_within(mup.drift_ci, tol):
        return None
    return (f"mup: the {hp_words(hp)} drift's 95% interval {fmt_ci(mup.drift_ci)} is "
            f"wider than the tolerance ±{tol:g}, so the verdict rests on the "
            "drift estimate and the agreement of the per-width optima; add widths "
            "or seeds to narrow the interval")


def _ci_within(ci: list[float] | None, tol: float) -> bool:
    """Whether a whole interval lies in [-tol, +tol]."""
    return ci is not None and -tol <= ci[0] and ci[1] <= tol
