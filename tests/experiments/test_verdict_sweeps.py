"""A real stored sweep of a healthy model too small to decide: 3 widths, 2 seeds, 100 steps.

Trained through the CLI (`sweep run`, real worker processes, a real DuckDB store): µP's optimum
barely moves (slope about +0.06 per doubling) but three widths leave the drift's interval about
±3 wide, so the verdict is inconclusive, not "not confirmed", and names the step that decides it
(a fourth width). Setup's prediction for the same spec says the same before launch, and export
refuses the inconclusive verdict like a not-confirmed one, unless forced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from experiments.analysis import analyze
from experiments.bundle.build import read_bundle
from experiments.cli import main
from experiments.spec.reach import verdict_reach
from experiments.spec.sweep import parse_spec
from experiments.store import Store

SPEC = {
    "name": "healthy-3-widths-2-seeds", "model": {"kind": "mlp", "depth": 2},
    "task": {"name": "digits"}, "widths": [64, 128, 256], "base_width": 64,
    "parametrizations": ["sp", "mup"], "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -10, "log2_max": -4, "step": 1}, "seeds": [0, 1],
    "steps": 100, "batch_size": 64, "log_every": 10, "device": "cpu",
}


@pytest.mark.slow
def test_a_small_healthy_sweep_is_inconclusive_with_a_next_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec, db = tmp_path / "spec.yaml", tmp_path / "store.duckdb"
    spec.write_text(yaml.safe_dump(SPEC))
    assert main(["sweep", "run", str(spec), "--db", str(db), "--workers", "2"]) == 0
    sid = capsys.readouterr().out.strip().splitlines()[-1]

    out = tmp_path / "a.json"
    assert main(["analyze", sid, "--db", str(db), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    mup = doc["parametrizations"]["mup"]
    print(doc["reason"], mup["drift_slope"], mup["drift_ci"])
    assert doc["verdict"] == "inconclusive", doc["reason"]
    low, high = mup["drift_ci"]
    assert low < -0.25 and high > 0.25 and low < 0 < high  # contains 0 and far more
    assert doc["next_step"].startswith("add width(s) 512 to the ladder")
    assert "verdict: inconclusive" in text and f"next step: {doc['next_step']}" in text

    # Setup said so before launch, asking for the same width.
    reach = verdict_reach(parse_spec(SPEC))
    assert reach.level == "unlikely" and reach.next_step.startswith("add width(s) 512")

    # Judged on its own, the same sweep's SP table (drift about -0.7) does not confirm either.
    runs = Store(db).runs_frame(int(sid))
    sp = runs[runs["parametrization"] == "sp"].assign(parametrization="mup")
    assert analyze(sp).verdict != "confirmed"

    # Export treats inconclusive like not confirmed: exit 2 with the reason and --force.
    bundle = tmp_path / "bundle.json"
    args = ["export", sid, "--target-width", "512", "--out", str(bundle), "--db", str(db)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "verdict is inconclusive" in err and "next step: add width(s) 512" in err
    assert "--force" in err and "Traceback" not in err and not bundle.exists()
    assert main([*args, "--force"]) == 0
    evidence = read_bundle(bundle).evidence
    assert evidence.verdict == "inconclusive" and evidence.forced
