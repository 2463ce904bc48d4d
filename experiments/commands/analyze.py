"""`python -m experiments analyze SWEEP_ID [--json OUT.json] [--tolerance 0.25] [--strict-interval]
[--regret-tolerance 0.01] [--depth-width N] [--target-width N] [--loss auto|train|val]`.

Per (parametrization, width): the optimal log2 LR with its 95% interval and the best loss, and
the transfer regret (the loss the narrowest width's optimal LR costs there); per
parametrization: the drift of the optimum against log2(width); the verdict (µP drift within the
tolerance, the per-width optima in agreement, and µP's regret at the widest width within the
regret tolerance: confirmed; not_confirmed when the evidence says the optimum moves or copying
costs more; inconclusive when it cannot tell), the one next step that would decide it, and
warnings; per parametrization, the best-loss forecast (`experiments.analysis.forecast`, at
--target-width) and the curve collapse (`experiments.analysis.collapse`, reported, not judged).
The loss is the validation loss where the task has one unless --loss says otherwise. See
experiments.analysis. The store is opened read-only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.analysis import (
    DEFAULT_REGRET_TOLERANCE,
    DEFAULT_TOLERANCE,
    TransferReport,
    analyze,
)
from experiments.analysis.forecast_schema import Forecast
from experiments.analysis.loss_choice import LOSS_CHOICES
from experiments.analysis.regret_rule import fmt_pct
from experiments.commands.sweep import add_db_arg, db_path, find_sweep, open_store, parse_sweep_id
from experiments.errors import UserError

if TYPE_CHECKING:  # typing only
    from experiments.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `analyze` command."""
    p = subparsers.add_parser("analyze", help="optimal LR per width, drift, transfer verdict",
                              description=__doc__)
    p.add_argument("sweep_id")
    p.add_argument("--json", type=Path, default=None, help="write the report here")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="allowed |µP drift| in log2 LR per width doubling (default 0.25)")
    p.add_argument("--loss", choices=LOSS_CHOICES, default="auto",
                   help="the loss the verdict, regret and forecast read: val, train, or auto "
                        "(default: validation where the task has a validation split)")
    p.add_argument("--target-width", type=int, default=None,
                   help="also predict the optimal LR, and forecast the best loss, at this width")
    p.add_argument("--strict-interval", action="store_true",
                   help="also require the µP drift's whole 95%% interval within the tolerance")
    p.add_argument("--regret-tolerance", type=float, default=DEFAULT_REGRET_TOLERANCE,
                   help="allowed µP LR regret at the widest width, as a fraction of its best "
                        "loss (default 0.01 = 1%%; the seed noise there applies when larger)")
    p.add_argument("--depth-width", type=int, default=None,
                   help="a depth ladder: the width whose runs the depth section reads "
                        "(default: the smallest)")
    add_db_arg(p)
    p.set_defaults(func=cmd_analyze)


def format_report(report: TransferReport) -> str:
    """The report as a few human lines: the verdict (confirmed, not_confirmed or
    inconclusive), why, the next step, the loss judged on, then each parametrization's optima
    and regret."""
    lines = [f"verdict: {report.verdict}", f"reason: {report.reason}",
             f"next step: {report.next_step}", f"loss: {report.loss_reason or report.loss}"]
    for param, d in report.lr.items():
        slope = "n/a" if d.drift_slope is None else f"{d.drift_slope:+.3f}"
        ci = "" if d.drift_ci is None else f" [{d.drift_ci[0]:+.3f}, {d.drift_ci[1]:+.3f}]"
        lines.append(f"{param}: drift {slope} log2 LR per width doubling{ci}")
        for w in d.widths:
            if w.opt_log2 is None:
                lines.append(f"  width {w.width:>6}: no optimum ({w.status})")
                continue
            lines.append(f"  width {w.width:>6}: opt 2^{w.opt_log2:.3f} "
                         f"[{w.ci_low:.3f}, {w.ci_high:.3f}]  best loss {w.best_loss:.4f}")
        if d.predicted_log2 is not None:
            tag = " (extrapolated)" if d.extrapolated else ""
            lines.append(f"  predicted at width {d.target_width}: 2^{d.predicted_log2:.3f}{tag}")
        lines += regret_lines(report, param)
        lines += forecast_lines(report.forecast.get(param))
    lines += [f"warning: {w}" for w in report.warnings]
    for section in report.ladders.values():  # each ladder axis (depth, ...) the sweep has
        lines += section.summary_lines()
    return "\n".join(lines)


def regret_lines(report: TransferReport, param: str) -> list[str]:
    """One line per width: what copying the proxy's optimal LR costs there."""
    r = report.regret.get(param)
    if r is None or r.proxy_width is None or r.proxy_log2_lr is None:
        return []
    lines = [f"  regret of copying the LR tuned at width {r.proxy_width} "
             f"(2^{r.proxy_log2_lr:.3f}), % of each width's best loss:"]
    for row in r.widths:
        if row.abs is None:
            lines.append(f"    width {row.width:>6}: n/a: {row.note or row.status}")
            continue
        if row.rel is None:
            lines.append(f"    width {row.width:>6}: +{row.abs:.4g} loss ({row.note})")
            continue
        # The interval as the verdict's sentence prints it (`fmt_pct`): one interval per number.
        ci = ("" if row.ci_low is None or row.ci_high is None
              else f" [{fmt_pct(row.ci_low)}, {fmt_pct(row.ci_high)}]")
        lines.append(f"    width {row.width:>6}: {100 * row.rel:.2f}%{ci}  (+{row.abs:.4g} loss)")
    return lines


def forecast_lines(f: Forecast | None) -> list[str]:
    """The best-loss forecast of one parametrization, or why there is none."""
    if f is None:
        return []
    if f.refused is not None or f.params is None:
        return [f"  loss forecast: refused: {f.refused}"]
    p = f.params
    lines = [f"  loss forecast {f.form}: L_inf {p['L_inf']:.4g}, A {p['A']:.4g}, "
             f"alpha {p['alpha']:.3f} (R^2 {f.fit_quality.get('r2', float('nan')):.3f})"]
    for a in f.at:
        ci = "" if a.ci_low is None or a.ci_high is None else f" [{a.ci_low:.4g}, {a.ci_high:.4g}]"
        lines.append(f"    width {a.width:>6}: best loss {a.loss:.4g}{ci}"
                     + (" (extrapolated)" if a.extrapolated else ""))
    return lines


def _collapse(store: Store, sweep_id: int) -> dict[str, dict[str, object]]:
    """The curve-level collapse check (`experiments.analysis.collapse`) of the sweep's train
    curves at the width ladder's base depth (the runs the width section reads)."""
    from experiments.analysis.collapse import TRAIN_CURVE, collapse_by_param
    from experiments.analysis.ladder import split_ladders

    runs, _ = split_ladders(store.runs_frame(sweep_id))  # the width section's runs
    if runs.empty:
        return {}
    metrics = store.metrics_frame(sweep_id, run_ids=[int(r) for r in runs["run_id"]],
                                  names=[TRAIN_CURVE])
    return collapse_by_param(runs, metrics)


def collapse_lines(collapse: dict[str, dict[str, object]]) -> str:
    """One line per parametrization: the curves' spread across widths against the seeds'."""
    lines = ["curve collapse (spread across widths / seed noise; reported, not judged):"]
    for param, by_lr in collapse.items():
        parts = []
        for lr, r in by_lr.items():
            assert isinstance(r, dict)
            ratio = r.get("ratio")
            parts.append(f"{lr} LR {ratio:.2f}" if isinstance(ratio, float)
                         else f"{lr} LR n/a ({r.get('note')})")
        lines.append(f"  {param}: " + ", ".join(parts))
    return "\n".join(lines)


def cmd_analyze(args: argparse.Namespace) -> int:
    """Analyse, print, write JSON."""
    sweep_id = parse_sweep_id(args.sweep_id)
    if not args.tolerance > 0:
        raise UserError(f"--tolerance must be > 0 (log2 LR per width doubling), got "
                        f"{args.tolerance}: use e.g. 0.25")
    if args.target_width is not None and args.target_width < 1:
        raise UserError(f"--target-width must be >= 1, got {args.target_width}")
    if not 0 < args.regret_tolerance < 1:
        raise UserError(f"--regret-tolerance must be a fraction of the best loss in (0, 1), got "
                        f"{args.regret_tolerance}: use e.g. 0.01 for 1%")
    store = open_store(db_path(args), read_only=True)
    find_sweep(store, sweep_id)
    try:
        report = analyze(store.runs_frame(sweep_id), tolerance=args.tolerance, loss=args.loss,
                         target_width=args.target_width, strict_interval=args.strict_interval,
                         regret_tolerance=args.regret_tolerance, depth_width=args.depth_width)
    except ValueError as exc:
        raise UserError(str(exc).replace("depth width", "--depth-width")) from None
    doc = {**report.to_contract_json(), "collapse": _collapse(store, sweep_id)}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, allow_nan=False))
    print(format_report(report))
    print(collapse_lines(doc["collapse"]))
    return 0
