"""The dashboard over depth: Setup's depth ladder and the Transfer page's width/depth
switch, against a real store (AppTest), and the pure ladder chart helpers (any axis).

The Transfer sweep's runs are finished with synthetic losses whose optima are known (µP's moves
-0.8 log2 per depth doubling, CompleteP's stays), so the page must show both families and the
engine's depth verdict.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from app.transfer import ladder_charts

SPEC: dict[str, Any] = {
    "name": "depth-page", "model": {"kind": "mlp", "depth": 2, "residual": True},
    "task": {"name": "digits"}, "widths": [32, 64], "base_width": 32, "depths": [2, 4, 8],
    "parametrizations": ["mup", "completep"], "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -11, "log2_max": -3, "step": 1}, "seeds": [0, 1], "steps": 4,
    "batch_size": 8, "log_every": 2, "device": "cpu",
}


def finished_ladder(db: Path, spec: dict[str, Any]) -> int:
    """The sweep in the store at `db`, every run finished on a known bowl in log2 LR."""
    from experiments.spec.sweep import SweepSpec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    store = Store(db)
    sweep_id = int(create_sweep(store, SweepSpec.model_validate(spec)))
    rng = torch.Generator().manual_seed(0)
    for claim in store.claim(10_000, "test", sweep_id):
        p = claim.payload
        drift = -0.8 if p["parametrization"] == "mup" else 0.0
        opt = -6.3 + drift * math.log2(p["model"]["depth"] / 2)
        loss = 0.1 + 0.05 * (math.log2(p["lr"]) - opt) ** 2
        loss += 0.002 * float(torch.randn((), generator=rng))
        result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": 4})
    return sweep_id


def test_setup_takes_a_depth_ladder_and_names_a_bad_one(open_page, db_path, no_runner) -> None:
    from experiments.store import Store

    at = open_page("views/setup.py")
    assert at.text_input(key="setup.depths").value == ""
    at.text_input(key="setup.depths").set_value("2, 4").run()
    # The quick preset's MLP has no residual branches: refused beside the ladder.
    assert any("set model.residual: true" in e.value for e in at.error), [e.value for e in at.error]
    at.checkbox(key="setup.model.mlp.residual").check().run()
    at.text_input(key="setup.depths").set_value("4, 2").run()
    # In the form's words: the field's label leads the engine's sentence.
    assert any(e.value.startswith("Depths must increase: got 2 after 4") for e in at.error), [
        e.value for e in at.error]
    at.text_input(key="setup.depths").set_value("2, 4").run()
    at.number_input(key="setup.base_depth").set_value(3).run()
    assert any("base_depth 3 is not in depths [2, 4]" in e.value for e in at.error)
    at.number_input(key="setup.base_depth").set_value(2).run()
    assert not at.error, [e.value for e in at.error]
    at.text_input(key="setup.name").set_value("ladder")
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None and record.spec["depths"] == [2, 4]
    assert sorted(store.runs_frame(sweep.id)["depth"].unique()) == [2, 4]


def test_transfer_switches_between_width_and_depth(open_page, db_path) -> None:
    sweep_id = finished_ladder(db_path, SPEC)
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    assert at.radio(key="transfer_family").value == "width"
    width_chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert width_chart["layout"]["legend"]["title"]["text"] == "width"
    at.radio(key="transfer_family").set_value("depth").run()
    assert not at.exception
    curves, optimum = (json.loads(c.proto.spec) for c in at.get("plotly_chart")[:2])
    assert curves["layout"]["legend"]["title"]["text"] == "depth"
    names = {t.get("name") for t in curves["data"]}
    assert {"depth 2", "depth 4", "depth 8"} <= names
    assert optimum["layout"]["xaxis"]["title"]["text"] == "depth"
    assert any("µP drift -0.8" in (t.get("name") or "") or "µP drift -0.7" in (t.get("name") or "")
               for t in optimum["data"])
    assert any(h.value == "Optimal learning rate vs depth (width 32)" for h in at.subheader)
    assert any("Depth transfer confirmed" in s.value for s in at.success)
    # Another width of the ladder: the depth section is re-read there.
    at.selectbox(key="transfer_depth_width").set_value(64).run()
    assert not at.exception
    assert any(h.value == "Optimal learning rate vs depth (width 64)" for h in at.subheader)


def test_a_width_only_sweep_has_no_family_switch(open_page, db_path) -> None:
    plain = {k: v for k, v in SPEC.items() if k != "depths"}
    sweep_id = finished_ladder(db_path, plain)
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    assert not [r for r in at.radio if r.key == "transfer_family"]


def test_ladder_chart_helpers_shape_the_report() -> None:
    import pandas as pd

    from experiments.analysis.ladder_schema import LadderDrift, LadderOptimum
    from experiments.service import LadderReport, TransferReport, get_axis

    depth = LadderReport(axis="depth", verdict="confirmed", reason="r", tolerance=0.25, width=32,
                         base=2, judged_on="completep", parametrizations={"completep": LadderDrift(
                             parametrization="completep", drift_slope=0.05,
                             drift_ci=[-0.1, 0.2], points=[
                                 LadderOptimum(value=d, opt_log2_lr=-6.0, ci_low=-6.5,
                                               ci_high=-5.5, best_loss=1.0) for d in (2, 4, 8)])})
    report = TransferReport(verdict="confirmed", reason="", tolerance=0.25, loss="x",
                            ladders={"depth": depth})
    assert report.depth is depth and report.to_contract_json()["depth"]["base_depth"] == 2
    optima, drift = ladder_charts.ladder_frames(report.depth)
    assert list(optima["width"]) == [2, 4, 8] and list(drift["drift_ci_high"]) == [0.2]
    assert ladder_charts.ladder_frames(None)[0].empty
    runs = pd.DataFrame({"width": [32, 32, 64], "depth": [2, 4, 2], "base_depth": [2, 2, 2]})
    axis = get_axis("depth")
    assert ladder_charts.ladders(runs) == {"depth": 2}
    assert list(ladder_charts.at_bases(runs)["depth"]) == [2, 2]
    assert list(ladder_charts.axis_as_width(runs, axis, 32)["width"]) == [2, 4]
    flat = runs.assign(base_depth=None)
    assert ladder_charts.ladders(flat) == {} and len(ladder_charts.at_bases(flat)) == 3
    fig = ladder_charts.ladder_optimum_figure(report.depth, axis)
    assert fig.layout.xaxis.title.text == "depth"
    assert all("width" not in (t.hovertemplate or "") for t in fig.data)


BATCH_SPEC: dict[str, Any] = {
    **{k: v for k, v in SPEC.items() if k != "depths"}, "name": "batch-page",
    "parametrizations": ["mup"], "batch_sizes": [8, 16, 32, 64], "base_batch_size": 8,
    "steps": 16,
}


def test_transfer_over_batch_says_which_rule_fits(open_page, db_path) -> None:
    """The optimum rises as batch^0.5: the page reads the exponent and prices sqrt cheapest."""
    from experiments.spec.sweep import SweepSpec
    from experiments.store import ChunkWriter, Store
    from experiments.sweep.submit import create_sweep

    store = Store(db_path)
    sweep_id = int(create_sweep(store, SweepSpec.model_validate({**BATCH_SPEC,
                                                                 "noise_scale": True})))
    rng = torch.Generator().manual_seed(0)
    dirs = []
    for claim in store.claim(10_000, "test", sweep_id):
        p = claim.payload
        opt = -7.0 + 0.5 * math.log2(p["batch_size"] / 8)
        loss = 0.1 + 0.05 * (math.log2(p["lr"]) - opt) ** 2 + 0.001 * float(
            torch.randn((), generator=rng))
        # The runs measured a critical batch of about 20 (the last log point counts).
        writer = ChunkWriter(claim.directory, claim.run_id, claim.attempt)
        writer.add(2, {"noise_scale": 500.0})
        writer.add(4, {"noise_scale": 20.0})
        writer.flush()
        dirs.append(claim.directory)
        result = {"state": "done", "final_train_loss": loss, "final_val_loss": loss}
        assert store.finish(claim.run_id, claim.attempt, {**result, "steps_done": 4})
    store.ingest(dirs)
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    at.radio(key="transfer_family").set_value("batch").run()
    assert not at.exception
    assert any(h.value == "Which scaling rule fits" for h in at.subheader)
    words = " ".join(m.value for m in at.markdown)
    assert "the optimal LR grows as batch size^+0.5" in words, words
    assert "the sweep ran under no rule" in words and "**sqrt** costs least at batch size 64" in words
    table = next(d.value for d in at.dataframe if "rule" in d.value.columns)
    assert list(table["rule"]) == ["none", "sqrt", "linear", "fitted (measured)"]
    regret = dict(zip(table["rule"], table["regret"], strict=True))
    assert float(regret["sqrt"]) < 0.01 < float(regret["none"])
    # The critical batch: 20 per run; batch 32 and 64 sit above it, 8 and 16 below.
    assert any(h.value == "Critical batch size" for h in at.subheader)
    warned = [w.value for w in at.warning if "gradient noise scale" in w.value]
    assert [w.split(" is above")[0] for w in warned] == ["Batch size 32", "Batch size 64"]
    noise = next(d.value for d in at.dataframe if "B_simple (median)" in d.value.columns)
    assert list(noise["batch size"]) == [8, 16, 32, 64]
    assert list(noise["B_simple (median)"]) == ["20"] * 4
