"""Display tables: engine data -> DataFrames shaped for `st.dataframe` (pure, tested).

Only presentation happens here: choosing and ordering columns, progress fractions for the
progress bars, human-readable durations and labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.widgets.charts import param_label
from experiments.service import RunState

if TYPE_CHECKING:  # pragma: no cover - typing only
    from experiments.service import CoordCheckReport, DescribeTable, SweepSummary, TransferReport

ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING)
FAILED_STATES = (RunState.FAILED,)
# Runs that trained to the end (a diverged run stopped at the blow-up: it is finished too).
FINISHED_STATES = (RunState.DONE, RunState.DIVERGED)
# The live runs table shows what needs attention first.
RUN_ORDER = (
    RunState.RUNNING, RunState.FAILED, RunState.QUEUED, RunState.DIVERGED, RunState.DONE,
    RunState.CANCELLED,
)
# The sweeps table's run-count columns, in display order.
COUNT_COLUMNS = (
    RunState.DONE, RunState.RUNNING, RunState.QUEUED, RunState.DIVERGED, RunState.FAILED,
    RunState.CANCELLED,
)
WIDTH_COLUMNS = ["parametrization", "width", "opt_log2_lr", "ci_low", "ci_high", "best_loss"]
DRIFT_COLUMNS = ["parametrization", "drift_slope", "drift_ci_low", "drift_ci_high"]


def fmt_duration(seconds: float | None) -> str:
    """`95` -> `1m 35s`, `0.4` -> `0.4s` (a run that ended in its first second is not "0s");
    None or NaN -> an em dash."""
    if seconds is None or not math.isfinite(float(seconds)):
        return "—"
    if 0 < seconds < 0.05:
        return "<0.1s"
    if 0 < seconds < 0.95:
        return f"{seconds:.1f}s"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _fraction(done: Any, total: Any) -> float:
    try:
        return min(1.0, float(done) / float(total)) if total else 0.0
    except (TypeError, ValueError):
        return 0.0


def sweeps_table(sweeps: Iterable[SweepSummary]) -> pd.DataFrame:
    """One row per sweep: id, name, state, progress (0..1), runs by state, ETA, created."""
    rows = []
    for s in sweeps:
        counts: dict[str, int] = dict(s.counts or {})
        rows.append(
            {
                "id": s.id,
                "name": s.name,
                "state": str(s.state),
                "progress": _fraction(s.steps_done, s.steps_total),
                "runs": sum(counts.values()),
                **{str(state): counts.get(state, 0) for state in COUNT_COLUMNS},
                "eta": fmt_duration(s.eta_s) if s.state in ACTIVE_STATES else "—",
                "created": s.created,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values("id", ascending=False).reset_index(drop=True) if not frame.empty else frame


def _elapsed_s(runs: pd.DataFrame, now: datetime | None) -> pd.Series:
    """Seconds each run has trained: its wall time once known, else since it started (a
    running run's wall time is written only when it ends)."""
    wall = pd.to_numeric(runs.get("wall_s", pd.Series(float("nan"), index=runs.index)), errors="coerce")
    if "started_at" in runs:
        now = now or datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC
        started = pd.to_datetime(runs["started_at"], errors="coerce")
        since = (pd.Timestamp(now) - started).dt.total_seconds()
        wall = wall.fillna(since.where(runs["state"] == RunState.RUNNING))
    return wall


def run_eta_s(runs: pd.DataFrame, now: datetime | None = None) -> pd.Series:
    """Seconds left per run from its pace so far (NaN unless running with progress)."""
    done = pd.to_numeric(runs["steps_done"], errors="coerce")
    total = pd.to_numeric(runs["steps_total"], errors="coerce")
    eta = _elapsed_s(runs, now) / done.where(done > 0) * (total - done).clip(lower=0)
    return eta.where(runs["state"] == RunState.RUNNING)


def _latest_loss(runs: pd.DataFrame, live: pd.DataFrame | None) -> pd.Series:
    """A running run's latest logged train loss (`live`), else its final train loss."""
    final = pd.to_numeric(runs.get("final_train_loss", pd.Series(float("nan"), index=runs.index)),
                          errors="coerce")
    if live is None or live.empty:
        return final
    by_run = dict(zip(live["run_id"].astype(int), live["loss"], strict=True))
    now = runs["run_id"].astype(int).map(by_run)
    return pd.to_numeric(now.where(runs["state"] == RunState.RUNNING), errors="coerce").fillna(final)


def _with_live_steps(runs: pd.DataFrame, live: pd.DataFrame | None) -> pd.DataFrame:
    """`runs` with each running run's steps done raised to its latest logged step: the loss
    (read from its metrics) and the step count (written by the runner, batched) arrive by
    different ways, and the row must not show a loss at step 10 as "step 0"."""
    if live is None or live.empty:
        return runs
    by_run = dict(zip(live["run_id"].astype(int), live["step"].astype(int), strict=True))
    logged = runs["run_id"].astype(int).map(by_run).where(runs["state"] == RunState.RUNNING)
    done = pd.to_numeric(runs["steps_done"], errors="coerce")
    return runs.assign(steps_done=done.where(~(logged > done), logged))


def _steps(runs: pd.DataFrame) -> list[str]:
    """`80/150` per run: how far it trained (a diverged run: where it blew up)."""
    return [f"{int(d)}/{int(t)}" if t else "—" for d, t in
            zip(runs["steps_done"].fillna(0), runs["steps_total"].fillna(0), strict=True)]


def runs_table(runs: pd.DataFrame, live: pd.DataFrame | None = None,
               now: datetime | None = None) -> pd.DataFrame:
    """One row per run for the live table, failed and running first, then by grid position.

    Args:
        runs: the sweep's runs frame (`Service.runs`).
        live: the running runs' latest losses (`Service.live_losses`), shown while they train.
        now: the time ETAs are computed at (naive UTC; default: now).
    """
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "state", "parametrization", "width", "log2_lr", "seed", "progress"])
    order = {str(state): i for i, state in enumerate(RUN_ORDER)}
    runs = _with_live_steps(runs, live)
    device = runs.get("device", pd.Series(None, index=runs.index, dtype=object))
    if "planned_device" in runs:  # the real device is known once the run ends
        device = device.fillna(runs["planned_device"])
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "state": runs["state"],
            "parametrization": runs["parametrization"].map(param_label),
            "width": runs["width"],
            "log2_lr": runs["log2_lr"],
            "seed": runs["seed"],
            # A diverged run's bar stops where it blew up (its state says it is finished).
            "progress": [
                1.0 if st == RunState.DONE else _fraction(d, t)
                for st, d, t in zip(runs["state"], runs["steps_done"], runs["steps_total"], strict=True)
            ],
            "step": _steps(runs),
            "latest_loss": _latest_loss(runs, live),
            "eta": run_eta_s(runs, now).map(fmt_duration),
            "final_train_loss": runs.get("final_train_loss"),
            "final_val_loss": runs.get("final_val_loss"),
            "device": device,
            "wall": _elapsed_s(runs, now).map(fmt_duration),
            "attempts": runs.get("attempts"),
            # Why part of a run's curve is missing (a metrics chunk quarantined by ingest).
            "note": runs.get("note"),
        }
    )
    table["_order"] = table["state"].map(order).fillna(9)
    table = table.sort_values(["_order", "parametrization", "width", "log2_lr", "seed"], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def live_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per running row of `runs_table`: what it is, its step, loss, device, ETA."""
    lines = []
    for row in table[table["state"] == RunState.RUNNING].to_dict("records"):
        loss = row.get("latest_loss")
        loss_words = f"loss {loss:.4g}" if loss is not None and math.isfinite(loss) else "no loss logged yet"
        lines.append(
            f"#{int(row['run_id'])} {row['parametrization']} w={int(row['width'])} "
            f"log2 LR {float(row['log2_lr']):.1f} seed {int(row['seed'])}: step {row['step']}, "
            f"{loss_words}, {row.get('device') or 'device not known yet'}, "
            + (f"{row['eta']} left" if row["eta"] != "—" else "time left not known yet")
        )
    return lines


def run_label(row: Mapping[str, Any] | pd.Series) -> str:
    """`µP w=256 log2 LR -8.0 seed 1` for a runs-frame row (a dict or a Series)."""
    return (
        f"{param_label(str(row['parametrization']))} w={int(row['width'])} "
        f"log2 LR {float(row['log2_lr']):.1f} seed {int(row['seed'])}"
    )


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed runs with their error text, for the errors panel."""
    if runs.empty:
        return runs
    return runs[runs["state"].isin(FAILED_STATES)]


def report_frames(report: TransferReport | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flatten a transfer report's LR analysis into chart inputs (empty frames for None).

    Returns:
        (widths, drift): widths has one row per (parametrization, width) with opt_log2_lr,
        ci_low, ci_high, best_loss (and the optimum's grid point, status and counts); drift
        one row per parametrization with drift_slope and its interval (drift_ci_low,
        drift_ci_high).
    """
    width_rows: list[dict[str, Any]] = []
    drift_rows: list[dict[str, Any]] = []
    for param, result in (report.lr if report is not None else {}).items():
        low, high = result.drift_ci if result.drift_ci else (None, None)
        drift_rows.append(
            {"parametrization": param, "drift_slope": result.drift_slope,
             "drift_ci_low": low, "drift_ci_high": high}
        )
        for optimum in result.widths:
            row = optimum.model_dump()
            row["opt_log2_lr"] = row.pop("opt_log2")
            width_rows.append({"parametrization": param, **row})
    widths = pd.DataFrame(width_rows) if width_rows else pd.DataFrame(columns=WIDTH_COLUMNS)
    widths = widths[[*WIDTH_COLUMNS, *(c for c in widths.columns if c not in WIDTH_COLUMNS)]]
    for col in ("opt_log2_lr", "ci_low", "ci_high", "best_loss"):
        widths[col] = pd.to_numeric(widths[col], errors="coerce")
    drift = pd.DataFrame(drift_rows, columns=DRIFT_COLUMNS)
    return widths, drift


def coord_frames(report: CoordCheckReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a coordinate check's report into chart inputs.

    Returns:
        (activations, slopes): activations is long (step, module, the report's axis (width
        or depth), value = mean |activation|); slopes is (module, step, slope).
    """
    activations = pd.DataFrame(
        [(p.step, p.module, p.size, p.value) for p in report.points],
        columns=["step", "module", report.axis, "value"])
    slopes = pd.DataFrame([(s.module, s.step, s.slope) for s in report.slopes],
                          columns=["module", "step", "slope"])
    return activations, slopes


def slope_pivot(slopes: pd.DataFrame) -> pd.DataFrame:
    """Modules as rows, steps as columns, slopes as values (module order kept)."""
    if slopes.empty:
        return slopes
    table = slopes.pivot_table(index="module", columns="step", values="slope", sort=False)
    table.columns = [f"step {c}" for c in table.columns]
    return table


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def describe_compare(base: DescribeTable, target: DescribeTable) -> pd.DataFrame:
    """The describe tables at two widths side by side, one row per parameter.

    Columns: name, role, shape at base and target, width_mult, init_std at base and target,
    forward_mult and lr_mult (at the target; at the base width all multipliers are 1 under µP).
    When the target table knows depth (a table with depth rules, given a depth), also depth_mult
    (m_L) and branch_mult (m_L^(-alpha)), empty outside the residual blocks; under Muon, update
    (which optimizer trains the parameter).
    """
    at_base = {r.name: r for r in base.rows}
    rows = []
    for r in target.rows:
        b = at_base.get(r.name)
        depth: dict[str, Any] = ({"depth_mult": r.depth_mult, "branch_mult": r.branch_mult}
                                 if target.knows_depth else {})
        if r.update is not None:  # Muon: which optimizer trains it
            depth["update"] = r.update
        rows.append(
            {
                "name": r.name,
                "role": r.role,
                "shape (base)": _shape(b.shape) if b is not None else "—",
                "shape (target)": _shape(r.shape),
                "width_mult": r.width_mult,
                "init_std (base)": b.init_std if b is not None else None,
                "init_std (target)": r.init_std,
                "forward_mult": r.forward_mult,
                "lr_mult": r.lr_mult,
                **depth,
            }
        )
    return pd.DataFrame(rows)
