"""The runs frame as the analysis reads it: which runs count, what "diverged" means, the seed
mean, the log2 frame every fit reads (`prepare_runs`, for the width and the depth ladder alike)
and the per-grid-point summary the dashboard draws.

One definition of each, shared by the transfer report (`experiments.analysis.report`) and the
charts (`app.widgets.charts`), so the curve a user sees is the curve the verdict is computed on:

1. A run is *finished* when its state is "done" or "diverged"; other states (queued, running,
   failed, cancelled) are missing data, never a loss.
2. A finished run *diverged* when the engine says so or its final loss is not a finite number.
   Its loss counts as +inf (`loss_values`).
3. The *seed mean* of a grid point is the mean of its finished seeds' losses (`seed_mean`): one
   diverged seed makes it +inf, so a grid point that diverged for any seed is never an optimum.
4. When other global knobs are swept too, the loss-vs-LR curve is *profiled*: at each LR, the
   knob setting with the best seed mean (TP5 tunes the HPs jointly; the report does the same).
5. Parametrizations are listed in `PARAM_ORDER`: SP, the baseline, then µP, as in TP5 Figure 1
   (and the spec's default order); any other parametrization follows alphabetically.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from experiments.spec.run import GLOBAL_KNOBS
from experiments.states import RunState
from mucore.hparams import HParams

FINISHED_STATES: tuple[RunState, ...] = (RunState.DONE, RunState.DIVERGED)
PARAM_ORDER = ("sp", "mup")
REQUIRED_COLUMNS = ("parametrization", "width", "seed", "state")
SUMMARY_COLUMNS = (
    "parametrization", "width", "log2_lr", "loss_mean", "loss_min", "loss_max", "n_seeds",
    "n_diverged",
)
OPTIMA_COLUMNS = ("parametrization", "width", "opt_log2_lr", "best_loss")
# Grid values are compared after rounding their log2 to this many decimals, so 2**-8 written as
# 0.00390625 and as 0.0039062500001 are one grid point.
LOG2_DECIMALS = 9
_KNOB_DEFAULTS = HParams()


def param_order(names: Iterable[str]) -> list[str]:
    """The distinct parametrization names in display order: `PARAM_ORDER`, then the rest A-Z."""
    rank = {name: i for i, name in enumerate(PARAM_ORDER)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(PARAM_ORDER)), n))


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs (rule 1): those whose final loss counts, diverged ones included."""
    return runs[runs["state"].astype(str).isin(FINISHED_STATES)]


def diverged_mask(runs: pd.DataFrame, loss: str) -> pd.Series:
    """Per run: True when it finished but diverged (state "diverged", or a non-finite loss)."""
    values = pd.to_numeric(runs[loss], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    state = runs["state"].astype(str)
    return (state == RunState.DIVERGED) | ((state == RunState.DONE) & ~np.isfinite(values))


def loss_values(runs: pd.DataFrame, loss: str) -> np.ndarray:
    """Per run, the loss the analysis uses: the loss if trained, +inf if diverged, NaN if missing."""
    raw = pd.to_numeric(runs[loss], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finished = runs["state"].astype(str).isin(FINISHED_STATES).to_numpy()
    diverged = diverged_mask(runs, loss).to_numpy()
    value = np.full(len(runs), np.nan)
    value[finished] = raw[finished]
    value[diverged] = np.inf
    return value


def seed_mean(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The seed mean along `axis`: NaN (missing) seeds are skipped, +inf (diverged) propagates.

    All-missing gives NaN (no data), without numpy's "mean of empty slice" warning.
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def log2_lr(runs: pd.DataFrame) -> np.ndarray:
    """Per run, log2 of the LR (the `log2_lr` column when complete, else log2 of `lr`)."""
    if "log2_lr" in runs.columns and runs["log2_lr"].notna().all():
        return np.round(runs["log2_lr"].astype(float).to_numpy(), LOG2_DECIMALS)
    return np.round(np.log2(runs["lr"].astype(float).to_numpy()), LOG2_DECIMALS)


def knob_log2(runs: pd.DataFrame, knob: str) -> np.ndarray:
    """Per run, log2 of a global knob's value; a missing value is the knob's `HParams` default."""
    default = float(getattr(_KNOB_DEFAULTS, knob))
    values = pd.to_numeric(runs[knob], errors="coerce").astype(float).fillna(default)
    return np.round(np.log2(values.to_numpy()), LOG2_DECIMALS)


def knob_columns(runs: pd.DataFrame) -> list[str]:
    """The global knobs (`GLOBAL_KNOBS`) that have a column in the runs frame."""
    return [k for k in GLOBAL_KNOBS if k in runs.columns]


def swept_hps(runs: pd.DataFrame) -> list[str]:
    """The global knobs besides the LR that take more than one value in the runs."""
    return [k for k in knob_columns(runs) if runs[k].dropna().nunique() > 1]


def prepare_runs(runs: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The runs frame as the fits read it: log2 HP columns, and `value` per run (`loss_values`).

    Columns: parametrization, width, seed, lr (log2), one log2 column per knob present, value
    (the loss; +inf diverged; NaN unfinished).

    Raises:
        ValueError: a required column is missing.
    """
    missing = [c for c in (*REQUIRED_COLUMNS, loss) if c not in runs.columns]
    if "lr" not in runs.columns and "log2_lr" not in runs.columns:
        missing.append("lr")
    if missing:
        raise ValueError(
            f"runs frame lacks columns {missing}: pass Store.runs_frame(sweep_id) (columns "
            "parametrization, width, lr, seed, state, final_train_loss, ...)"
        )
    df = pd.DataFrame(
        {
            "parametrization": runs["parametrization"].astype(str).to_numpy(),
            "width": runs["width"].astype(int).to_numpy(),
            "seed": runs["seed"].astype(int).to_numpy(),
        }
    )
    df["lr"] = log2_lr(runs)
    for knob in knob_columns(runs):
        df[knob] = knob_log2(runs, knob)
    df["value"] = loss_values(runs, loss)
    return df


def seed_summary(runs: pd.DataFrame, loss: str = "final_train_loss") -> pd.DataFrame:
    """The loss-vs-LR curve of every (parametrization, width), one row per grid point.

    Args:
        runs: the store's runs frame (parametrization, width, lr or log2_lr, seed, state,
            `loss`, and the knob columns when knobs are swept).
        loss: which final loss column to summarise.

    Returns:
        Columns `SUMMARY_COLUMNS`, sorted by parametrization, width and log2_lr: loss_mean is
        the seed mean (+inf when any seed diverged); loss_min and loss_max span the seeds that
        trained (NaN when none did); n_seeds counts finished runs and n_diverged the diverged
        ones. With other knobs swept, each row is the knob setting with the best seed mean.
    """
    finished = runs[runs["state"].astype(str).isin(FINISHED_STATES)]
    if finished.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    keys = ["parametrization", "width", "log2_lr"]
    knobs = knob_columns(finished)
    values = loss_values(finished, loss)
    table = pd.DataFrame({
        "parametrization": finished["parametrization"].astype(str).to_numpy(),
        "width": finished["width"].astype(int).to_numpy(),
        "log2_lr": log2_lr(finished),
        **{k: knob_log2(finished, k) for k in knobs},
        "loss": values,
        "trained": np.where(np.isfinite(values), values, np.nan),
        "diverged": np.isinf(values).astype(int),
    })
    grouped = table.groupby([*keys, *knobs], sort=True)
    per_setting = pd.DataFrame({
        "loss_mean": grouped["loss"].agg(lambda v: float(seed_mean(v.to_numpy()))),
        "loss_min": grouped["trained"].min(),
        "loss_max": grouped["trained"].max(),
        "n_seeds": grouped.size(),
        "n_diverged": grouped["diverged"].sum(),
    }).reset_index()
    # Profile over the other knobs: the first (smallest-knob) setting with the best seed mean.
    rank = per_setting["loss_mean"].fillna(np.inf)
    best = rank.groupby([per_setting[k] for k in keys], sort=True).idxmin()
    out = per_setting.loc[best.to_numpy(), list(SUMMARY_COLUMNS)]
    return out.astype({"n_seeds": int, "n_diverged": int}).reset_index(drop=True)


def grid_optima(summary: pd.DataFrame) -> pd.DataFrame:
    """The best grid point per (parametrization, width) of a `seed_summary` table.

    The unrefined optimum: the report's (`analyze`) refines it by a parabola through its
    neighbours; this one serves while no report is available. On ties the smaller LR wins, as
    in `experiments.analysis.curves.curve_optimum`.

    Returns:
        Columns `OPTIMA_COLUMNS`; widths whose every grid point diverged are left out.
    """
    ok = summary[np.isfinite(summary["loss_mean"].astype(float))]
    if ok.empty:
        return pd.DataFrame(columns=list(OPTIMA_COLUMNS))
    ok = ok.sort_values(["parametrization", "width", "log2_lr"], kind="stable")
    idx = ok.groupby(["parametrization", "width"], sort=True)["loss_mean"].idxmin()
    best = ok.loc[idx.to_numpy(), ["parametrization", "width", "log2_lr", "loss_mean"]]
    best = best.rename(columns={"log2_lr": "opt_log2_lr", "loss_mean": "best_loss"})
    return best.reset_index(drop=True)
