"""Display tables: engine data -> DataFrames shaped for `st.dataframe` (pure, tested).

Only presentation happens here: choosing and ordering columns, progress fractions for the
progress bars, human-readable durations and labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from app.charts import param_label

ACTIVE_STATES = ("queued", "running")
FAILED_STATES = ("failed",)


def fmt_duration(seconds: float | None) -> str:
    """`95` -> `1m 35s`; None or NaN -> an em dash."""
    if seconds is None or not math.isfinite(float(seconds)):
        return "—"
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict | pd.Series):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _fraction(done: Any, total: Any) -> float:
    try:
        return min(1.0, float(done) / float(total)) if total else 0.0
    except (TypeError, ValueError):
        return 0.0


def sweeps_table(sweeps: Iterable[Any]) -> pd.DataFrame:
    """One row per sweep: id, name, state, progress (0..1), runs by state, ETA, created."""
    rows = []
    for s in sweeps:
        counts: dict[str, int] = dict(_get(s, "counts", {}) or {})
        rows.append(
            {
                "id": _get(s, "id"),
                "name": _get(s, "name"),
                "state": _get(s, "state"),
                "progress": _fraction(_get(s, "steps_done", 0), _get(s, "steps_total", 0)),
                "runs": sum(counts.values()),
                "done": counts.get("done", 0),
                "running": counts.get("running", 0),
                "queued": counts.get("queued", 0),
                "diverged": counts.get("diverged", 0),
                "failed": counts.get("failed", 0),
                "cancelled": counts.get("cancelled", 0),
                "eta": fmt_duration(_get(s, "eta_s")) if _get(s, "state") in ACTIVE_STATES else "—",
                "created": _get(s, "created"),
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values("id", ascending=False).reset_index(drop=True) if not frame.empty else frame


def run_eta_s(runs: pd.DataFrame) -> pd.Series:
    """Seconds left per run from its pace so far (NaN unless running with progress)."""
    done = pd.to_numeric(runs["steps_done"], errors="coerce")
    total = pd.to_numeric(runs["steps_total"], errors="coerce")
    wall = pd.to_numeric(runs.get("wall_s", pd.Series(float("nan"), index=runs.index)), errors="coerce")
    eta = wall / done.where(done > 0) * (total - done).clip(lower=0)
    return eta.where(runs["state"] == "running")


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run for the live table, failed and running first, then by grid position."""
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "state", "parametrization", "width", "log2_lr", "seed", "progress"])
    order = {"running": 0, "failed": 1, "queued": 2, "diverged": 3, "done": 4, "cancelled": 5}
    table = pd.DataFrame(
        {
            "run_id": runs["run_id"],
            "state": runs["state"],
            "parametrization": runs["parametrization"].map(param_label),
            "width": runs["width"],
            "log2_lr": runs["log2_lr"],
            "seed": runs["seed"],
            # A diverged run stops at the blow-up: it is finished, so its bar is full.
            "progress": [
                1.0 if st in ("done", "diverged") else _fraction(d, t)
                for st, d, t in zip(runs["state"], runs["steps_done"], runs["steps_total"], strict=True)
            ],
            "eta": run_eta_s(runs).map(fmt_duration),
            "final_train_loss": runs.get("final_train_loss"),
            "final_val_loss": runs.get("final_val_loss"),
            "device": runs.get("device"),
            "wall": pd.to_numeric(runs.get("wall_s", pd.Series(float("nan"), index=runs.index)), errors="coerce").map(fmt_duration),
            "attempts": runs.get("attempts"),
        }
    )
    table["_order"] = table["state"].map(order).fillna(9)
    table = table.sort_values(["_order", "parametrization", "width", "log2_lr", "seed"], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def run_label(row: Any) -> str:
    """`µP w=256 log2 LR -8.0 seed 1` for a runs-frame row."""
    return (
        f"{param_label(str(_get(row, 'parametrization')))} w={int(_get(row, 'width'))} "
        f"log2 LR {float(_get(row, 'log2_lr')):.1f} seed {int(_get(row, 'seed'))}"
    )


def failed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed runs with their error text, for the errors panel."""
    if runs.empty:
        return runs
    return runs[runs["state"].isin(FAILED_STATES)]


def report_frames(contract: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flatten a transfer report (the `analyze --json` shape) into chart inputs.

    Returns:
        (widths, drift): widths has one row per (parametrization, width) with opt_log2_lr,
        ci_low, ci_high, best_loss; drift one row per parametrization with drift_slope and
        its interval (drift_ci_low, drift_ci_high).
    """
    width_rows, drift_rows = [], []
    for param, block in (contract.get("parametrizations") or {}).items():
        ci = block.get("drift_ci") or [None, None]
        drift_rows.append(
            {"parametrization": param, "drift_slope": block.get("drift_slope"),
             "drift_ci_low": ci[0], "drift_ci_high": ci[1]}
        )
        for row in block.get("widths") or []:
            width_rows.append({"parametrization": param, **row})
    widths = pd.DataFrame(
        width_rows, columns=None if width_rows else ["parametrization", "width", "opt_log2_lr", "ci_low", "ci_high", "best_loss"]
    )
    for col in ("opt_log2_lr", "ci_low", "ci_high", "best_loss"):
        if col in widths:
            widths[col] = pd.to_numeric(widths[col], errors="coerce")
    drift = pd.DataFrame(
        drift_rows, columns=None if drift_rows else ["parametrization", "drift_slope", "drift_ci_low", "drift_ci_high"]
    )
    return widths, drift


def coord_frames(result: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a coordinate-check result (the `coord-check --json` shape) into chart inputs.

    Returns:
        (activations, slopes): activations is long (step, module, width, value = mean
        |activation|); slopes is (module, step, slope).
    """
    slopes = pd.DataFrame(result.get("modules") or [], columns=None)
    if slopes.empty:
        slopes = pd.DataFrame(columns=["module", "step", "slope"])
    rows = result.get("table") or result.get("rows") or []
    activations = pd.DataFrame(rows)
    if activations.empty:
        return pd.DataFrame(columns=["step", "module", "width", "value"]), slopes
    value_col = next(c for c in ("value", "mean_abs", "l1", "mean_abs_activation") if c in activations)
    activations = activations.rename(columns={value_col: "value"})
    return activations[["step", "module", "width", "value"]], slopes[["module", "step", "slope"]]


def slope_pivot(slopes: pd.DataFrame) -> pd.DataFrame:
    """Modules as rows, steps as columns, slopes as values (module order kept)."""
    if slopes.empty:
        return slopes
    table = slopes.pivot_table(index="module", columns="step", values="slope", sort=False)
    table.columns = [f"step {c}" for c in table.columns]
    return table


def describe_compare(base_rows: list[dict[str, Any]], target_rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The describe tables at two widths side by side, one row per parameter.

    Columns: name, role, shape at base and target, width_mult, init_std at base and target,
    forward_mult and lr_mult (at the target; at the base width all multipliers are 1 under µP).
    """
    base = {r["name"]: r for r in base_rows}
    rows = []
    for r in target_rows:
        b = base.get(r["name"], {})
        rows.append(
            {
                "name": r["name"],
                "role": r.get("role"),
                "shape (base)": " x ".join(map(str, b.get("shape", []))) or "—",
                "shape (target)": " x ".join(map(str, r.get("shape", []))),
                "width_mult": r.get("width_mult"),
                "init_std (base)": b.get("init_std"),
                "init_std (target)": r.get("init_std"),
                "forward_mult": r.get("forward_mult"),
                "lr_mult": r.get("lr_mult"),
            }
        )
    return pd.DataFrame(rows)
