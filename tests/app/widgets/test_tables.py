"""Display-table shaping: progress, ETA, ordering, report and coord-check flattening."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from app.widgets import tables
from experiments.analysis import DriftResult, TransferReport, WidthOptimum
from experiments.service import RunState, SweepSummary


def test_fmt_duration():
    assert tables.fmt_duration(None) == "—"
    assert tables.fmt_duration(float("nan")) == "—"
    assert tables.fmt_duration(5) == "5s"
    assert tables.fmt_duration(95) == "1m 35s"
    assert tables.fmt_duration(3 * 3600 + 120) == "3h 02m"


def test_sweeps_table_progress_and_eta():
    t0 = datetime(2024, 1, 1)
    sweeps = [
        SweepSummary(id=1, name="a", state=RunState.DONE, counts={"done": 4}, created=t0,
                     steps_done=40, steps_total=40, eta_s=None),
        SweepSummary(id=2, name="b", state=RunState.RUNNING,
                     counts={"done": 1, "running": 1, "queued": 2}, created=t0, steps_done=15,
                     steps_total=40, eta_s=65.0),
    ]
    t = tables.sweeps_table(sweeps)
    assert list(t["id"]) == [2, 1]
    assert t.loc[0, "progress"] == 15 / 40 and t.loc[0, "eta"] == "1m 05s" and t.loc[0, "runs"] == 4
    assert (t.loc[0, "done"], t.loc[0, "running"], t.loc[0, "queued"]) == (1, 1, 2)
    assert t.loc[0, "state"] == "running" and t.loc[1, "eta"] == "—"
    assert tables.sweeps_table([]).empty


def runs_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": [1, 2, 3, 4], "parametrization": ["mup", "mup", "sp", "sp"], "width": [64, 128, 64, 128],
        "log2_lr": [-8.0] * 4, "seed": [0] * 4, "state": ["done", "running", "failed", "queued"],
        "steps_done": [100, 25, 3, 0], "steps_total": [100] * 4, "wall_s": [10.0, 5.0, 1.0, None],
        "final_train_loss": [0.5, None, None, None], "final_val_loss": [0.6, None, None, None],
        "device": ["cpu", "cpu", "cpu", None], "attempts": [1, 1, 2, 0], "error": [None, None, "boom", None],
    })


def test_runs_table_orders_and_eta():
    t = tables.runs_table(runs_frame())
    assert list(t["state"]) == ["running", "failed", "queued", "done"]
    assert t.loc[0, "progress"] == 0.25 and t.loc[0, "eta"] == "15s"  # 5 s for 25 steps, 75 left
    assert t.loc[1, "eta"] == "—" and t.loc[0, "parametrization"] == "µP"
    assert list(tables.failed_runs(runs_frame())["run_id"]) == [3]
    assert tables.run_label(runs_frame().iloc[0]) == "µP w=64 log2 LR -8.0 seed 0"


def test_report_frames():
    mup = DriftResult(hp="lr", parametrization="mup", drift_slope=0.02, drift_ci=[-0.1, 0.14], widths=[
        WidthOptimum(width=64, opt_log2=-7.9, ci_low=-8.2, ci_high=-7.6, best_loss=0.4),
        WidthOptimum(width=128, opt_log2=None, ci_low=None, ci_high=None, best_loss=None,
                     status="all_diverged")])
    sp = DriftResult(hp="lr", parametrization="sp", drift_slope=-0.9, widths=[
        WidthOptimum(width=64, opt_log2=-6.0, ci_low=-6.5, ci_high=-5.5, best_loss=0.5)])
    report = TransferReport(verdict="confirmed", reason="flat", tolerance=0.25, loss="final_train_loss",
                            lr={"sp": sp, "mup": mup})
    widths, drift = tables.report_frames(report)
    assert list(widths.columns[:6]) == tables.WIDTH_COLUMNS
    assert list(zip(widths["parametrization"], widths["width"], strict=True)) == [("sp", 64), ("mup", 64), ("mup", 128)]
    assert widths["opt_log2_lr"].tolist()[:2] == [-6.0, -7.9] and widths["opt_log2_lr"].isna().tolist() == [False, False, True]
    assert widths.loc[2, "status"] == "all_diverged" and widths.loc[1, "ci_low"] == -8.2
    assert list(drift["parametrization"]) == ["sp", "mup"]
    assert drift.loc[1, "drift_ci_high"] == 0.14 and drift.loc[1, "drift_slope"] == 0.02
    assert pd.isna(drift.loc[0, "drift_ci_low"])  # SP had no interval
    w0, d0 = tables.report_frames(None)
    assert w0.empty and list(w0.columns) == tables.WIDTH_COLUMNS
    assert d0.empty and list(d0.columns) == tables.DRIFT_COLUMNS


def test_running_rows_show_step_latest_loss_device_and_eta_as_metrics_arrive():
    from datetime import timedelta

    now = datetime(2024, 1, 1, 12, 0, 30)
    runs = runs_frame().assign(
        wall_s=[10.0, None, 1.0, None],  # a running run's wall time is written at its end
        started_at=[now - timedelta(seconds=40), now - timedelta(seconds=5), None, None],
        device=["cpu", None, "cpu", None], planned_device=["cpu", "cuda", "cpu", "cuda"],
    )
    live = pd.DataFrame({"run_id": [2], "step": [20], "loss": [1.25]})
    t = tables.runs_table(runs, live=live, now=now).set_index("run_id")
    # 25 of 100 steps in the 5 s since it started: 15 s left.
    assert t.loc[2, "step"] == "25/100" and t.loc[2, "eta"] == "15s" and t.loc[2, "wall"] == "5s"
    assert t.loc[2, "latest_loss"] == 1.25 and t.loc[2, "device"] == "cuda"  # the planned one
    assert t.loc[1, "latest_loss"] == 0.5 and t.loc[1, "device"] == "cpu"  # finished: final
    (line,) = tables.live_lines(tables.runs_table(runs, live=live, now=now))
    assert line == "#2 µP w=128 log2 LR -8.0 seed 0: step 25/100, loss 1.25, cuda, 15s left"
    # A loss logged at step 40 while the runner's batched step count still says 25.
    ahead = tables.runs_table(runs, live=live.assign(step=[40]), now=now).set_index("run_id")
    assert ahead.loc[2, "step"] == "40/100" and ahead.loc[2, "progress"] == 0.4
    # Before its first metrics chunk: no loss yet, said so.
    (line,) = tables.live_lines(tables.runs_table(runs, now=now))
    assert "step 25/100, no loss logged yet" in line


def test_a_diverged_row_shows_where_it_stopped_and_a_sub_second_wall_time():
    runs = runs_frame().assign(state=["done", "diverged", "failed", "queued"],
                               steps_done=[100, 20, 3, 0], wall_s=[10.0, 0.4, 1.0, None])
    t = tables.runs_table(runs).set_index("run_id")
    assert t.loc[2, "progress"] == 0.2 and t.loc[2, "step"] == "20/100"
    assert t.loc[2, "wall"] == "0.4s" and t.loc[2, "eta"] == "—"
    assert tables.fmt_duration(0.4) == "0.4s" and tables.fmt_duration(0) == "0s"
    assert tables.fmt_duration(0.01) == "<0.1s"


def test_the_plans_per_width_facts_read_as_lines() -> None:
    import pandas as pd

    from app.widgets.form import widths_lines

    frame = pd.DataFrame({"width": [64, 1024], "params": [8970, 4_200_000],
                          "flops_per_step": [3.44e6, 1.6e9], "memory_MiB": [0.4, 48.6],
                          "runs": [60, 1200]})
    assert widths_lines(frame) == [
        "**width 64**: 8.97 k params, 3.44 M FLOP per step, 0.4 MiB, 60 runs",
        "**width 1,024**: 4.2 M params, 1.6 G FLOP per step, 49 MiB, 1,200 runs",
    ]
