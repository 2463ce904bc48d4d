"""The jobs' results reach the pages' tables and charts as the engine's types, parsed from the
JSON the real commands write (`coord-check`, `describe`): the frames carry exactly what the job
measured, and a document missing a contract field fails in the parser, not in a page."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.widgets import charts, tables
from experiments.service import CoordCheckReport, DescribeTable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def job_json(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """`job_json("describe", ...)` -> the JSON document the real command wrote (~4 s each)."""
    folder = tmp_path_factory.mktemp("jobs")

    def run(*args: str) -> dict[str, Any]:
        out = folder / f"job-{len(list(folder.iterdir()))}.json"
        r = subprocess.run([sys.executable, "-m", "experiments", *args, "--json", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(out.read_text())

    return run


def test_a_width_check_becomes_the_pages_frames(job_json):
    doc = job_json("coord-check", "--model", "mlp", "--widths", "32,64", "--steps", "2")
    report = CoordCheckReport.from_json(doc)
    assert report.axis == "width" and report.ladder == (32, 64) and report.width is None
    activations, slopes = tables.coord_frames(report)
    assert list(activations.columns) == ["step", "module", "width", "value"]
    # Every row of the job's long table, and nothing else.
    assert sorted(activations.itertuples(index=False, name=None)) == sorted(
        (r["step"], r["module"], r["width"], r["value"]) for r in doc["records"])
    assert sorted(slopes.itertuples(index=False, name=None)) == sorted(
        (m["module"], m["step"], m["slope"]) for m in doc["modules"])
    assert list(tables.slope_pivot(slopes).columns) == ["step 1", "step 2"]
    assert report.passed == (doc["verdict"] == "pass")
    assert list(report.violations) == [v["message"] for v in doc["violations"]]


def test_a_depth_check_charts_against_depth(job_json):
    doc = job_json("coord-check", "--model", "gpt", "--param", "completep", "--depths", "2,4",
                   "--width", "32", "--steps", "2")
    report = CoordCheckReport.from_json(doc)
    assert report.axis == "depth" and report.ladder == (2, 4) and report.width == 32
    activations, _ = tables.coord_frames(report)
    assert list(activations.columns) == ["step", "module", "depth", "value"]
    assert len(activations) == len(doc["records"])
    fig = charts.coord_check_figure(activations, axis="depth")
    assert fig.layout.xaxis.title.text == "depth" and fig.layout.xaxis.type == "log"
    assert {tuple(trace.x) for trace in fig.data} <= {(2, 4), (2,), (4,)}


def test_describe_tables_compare_side_by_side_with_depth_only_when_known(job_json):
    common = ("describe", "--model", "gpt", "--param", "completep", "--base-width", "32")
    flat = DescribeTable.from_json(job_json(*common, "--width", "32"))
    deep_doc = job_json(*common, "--width", "128", "--depth", "8", "--base-depth", "2")
    deep = DescribeTable.from_json(deep_doc)
    assert not flat.knows_depth and deep.knows_depth and deep.depth == 8
    assert "depth_mult" not in tables.describe_compare(flat, flat).columns
    frame = tables.describe_compare(flat, deep).set_index("name")
    rows = {r["name"]: r for r in deep_doc["rows"]}
    assert list(frame.index) == list(rows)  # the target's parameters, in model order
    for name, row in rows.items():
        assert frame.loc[name, "shape (target)"] == " x ".join(map(str, row["shape"]))
        assert frame.loc[name, "lr_mult"] == row["lr_mult"]
    block = next(n for n, r in rows.items() if r.get("depth_mult") is not None)
    # m_L = 8 / 2 = 4 inside the blocks; CompleteP's branch multiplier m_L^(-1).
    assert frame.loc[block, "depth_mult"] == 4 and frame.loc[block, "branch_mult"] == 0.25
    assert frame.loc["tok_emb.weight", ["depth_mult", "branch_mult"]].isna().all()
    assert frame.loc["tok_emb.weight", "shape (base)"] == "256 x 32"


def test_a_document_without_a_contract_field_fails_in_the_parser(job_json):
    doc = job_json("coord-check", "--model", "mlp", "--widths", "32,64", "--steps", "1")
    renamed = {**doc, "records": [{("mean_abs" if k == "value" else k): v for k, v in r.items()}
                                  for r in doc["records"]]}
    with pytest.raises(KeyError, match="value"):
        CoordCheckReport.from_json(renamed)
