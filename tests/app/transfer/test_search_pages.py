"""The adaptive LR search in the dashboard: Setup offers grid or adaptive with the
expected runs, Runs shows runs planned but not queued, Transfer rings the adaptively chosen
points. Real store and planner; runs finished with synthetic losses (no training).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SPEC: dict[str, Any] = {
    "name": "adaptive-page", "model": {"kind": "mlp", "depth": 2}, "task": {"name": "digits"},
    "widths": [32, 64, 128], "base_width": 32, "parametrizations": ["sp", "mup"],
    "lr_grid": {"log2_min": -11, "log2_max": -3, "step": 1}, "seeds": [0, 1], "steps": 4,
    "batch_size": 8, "log_every": 2, "device": "cpu", "search": {"kind": "adaptive"},
}


def finish_queued(db: Path, sweep_id: int, rounds: int) -> None:
    """Finish the queued runs on a bowl around 2^-7 and let the planner queue the next ones,
    `rounds` times (what the runner does as results arrive)."""
    from experiments.store import Store
    from experiments.sweep.planning import SweepPlanner

    store = Store(db)
    planner = SweepPlanner(store)
    for _ in range(rounds):
        for claim in store.claim(10_000, "test", sweep_id):
            p = claim.payload
            loss = 0.2 + 0.05 * (math.log2(p["lr"]) + 7) ** 2 + 0.001 * p["seed"]
            assert store.finish(claim.run_id, claim.attempt,
                                {"state": "done", "final_train_loss": loss, "steps_done": 4})
        planner.top_up(sweep_id)


def make_sweep(db: Path, rounds: int) -> int:
    from experiments.spec.sweep import SweepSpec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    sweep_id = int(create_sweep(Store(db), SweepSpec.model_validate(SPEC)))
    finish_queued(db, sweep_id, rounds)
    return sweep_id


def test_setup_offers_adaptive_with_expected_runs(open_page, db_path, no_runner) -> None:
    from experiments.store import Store

    at = open_page("views/setup.py")
    assert at.selectbox(key="setup.search.kind").value == "grid"
    assert any("Grid search:" in c.value for c in at.caption)
    at.selectbox(key="setup.search.kind").set_value("adaptive").run()
    metric = next(m for m in at.metric if m.label == "Expected runs (adaptive)")
    total = next(m for m in at.metric if m.label == "Runs").value
    fewest, most = (int(x.replace(",", "")) for x in metric.value.split(" to "))
    assert most == int(total.replace(",", "")) and fewest < most
    at.number_input(key="setup.search.bracket").set_value(4).run()
    assert any("search.bracket must be odd" in e.value for e in at.error)
    at.number_input(key="setup.search.bracket").set_value(3).run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="FormSubmitter:setup_launch-Launch sweep").click().run()
    assert not at.exception and no_runner
    store = Store(db_path)
    (sweep,) = store.list_sweeps()
    record = store.get_sweep(sweep.id)
    assert record is not None and record.spec["search"]["kind"] == "adaptive"
    widths = set(store.runs_frame(sweep.id)["width"])
    assert len(widths) == 1  # only the narrowest width is queued at launch


def test_runs_page_shows_runs_planned_not_queued(open_page, db_path) -> None:
    sweep_id = make_sweep(db_path, rounds=1)  # width 32 done, width 64's brackets queued
    at = open_page("views/runs.py", current_sweep_id=sweep_id)
    (note,) = [i.value for i in at.info if "Adaptive search" in i.value]
    # 2 params x 2 seeds x 9 LRs at 32, 2 x 2 x 3 at 64 stored; 128's brackets still to plan.
    assert "48 runs so far; **12 planned but not queued yet**" in note
    assert "at most 108 (the full grid)" in note


def test_transfer_rings_the_adaptively_chosen_points(open_page, db_path) -> None:
    sweep_id = make_sweep(db_path, rounds=6)
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    rings = [t for t in chart["data"] if t.get("name") == "adaptively chosen"]
    assert len(rings) == 2  # one per parametrization panel
    # Widths 64 and 128 trained brackets of 3 around 2^-7; width 32 (the full grid) is unringed.
    assert sorted(rings[0]["x"]) == [-8, -8, -7, -7, -6, -6]


def test_grid_sweep_has_no_rings_and_no_note(open_page, db_path) -> None:
    from experiments.spec.sweep import SweepSpec
    from experiments.store import Store
    from experiments.sweep.submit import create_sweep

    grid = {**SPEC, "search": {"kind": "grid"}, "widths": [32, 64]}
    sweep_id = int(create_sweep(Store(db_path), SweepSpec.model_validate(grid)))
    finish_queued(db_path, sweep_id, rounds=1)
    at = open_page("views/transfer.py", current_sweep_id=sweep_id)
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert not [t for t in chart["data"] if t.get("name") == "adaptively chosen"]
    at = open_page("views/runs.py", current_sweep_id=sweep_id)
    assert not [i for i in at.info if "Adaptive search" in i.value]
