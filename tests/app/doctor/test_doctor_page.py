"""The µP doctor in the dashboard: the Doctor page runs the real `doctor`
command in a background process and shows the findings, fixes and evidence charts; Setup runs
the static checks of a registered model before launch and shows failures beside the button;
the evidence charts are pure functions of the doctor's JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from app.doctor import doctor_charts
from experiments.service import DoctorResult

ROOT = Path(__file__).resolve().parents[3]
# A user's MLP whose head is a plain nn.Linear (not mucore.Readout).
PLAIN_HEAD = (ROOT / "tests" / "fixtures" / "models" / "plain_head.py").read_text()


MHA_PIXELS = '''
"""A user's model: image rows as tokens, torch's nn.MultiheadAttention, a µP readout."""
import mucore
from torch import nn


class PixelRows(nn.Module):
    def __init__(self, width: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, width)
        self.attn = nn.MultiheadAttention(width, num_heads=2, batch_first=True)
        self.head = mucore.Readout(width, n_out)

    def forward(self, x):  # (B, C, H, W) -> (B, n_out)
        h = self.embed(x.flatten(1, 2))  # (B, C*H, W) -> (B, rows, width)
        h, _ = self.attn(h, h, h)
        return self.head(h.mean(1))


def build(width: int, *, task) -> nn.Module:
    return PixelRows(width, task.input_shape[-1], task.n_outputs)
'''


@pytest.fixture
def plain_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "plain_head.py").write_text(PLAIN_HEAD)
    (folder / "mha_pixels.py").write_text(MHA_PIXELS)
    monkeypatch.setenv("MUTRANSFER_MODEL_DIRS", str(folder))  # the job's process inherits it
    return folder


def _run_doctor(at, timeout_s: float = 100.0):
    """Press Run (widths 64..256) and rerun until the background job's report is drawn."""
    at.button(key="FormSubmitter:doctor_form-Run the doctor").click().run()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        texts = [e.value for e in [*at.success, *at.error]]
        if any(t.startswith(("**Healthy.**", "**Problems.**")) for t in texts):
            return at
        time.sleep(0.5)
        at.run()
    raise AssertionError(f"no report after {timeout_s}s: {[i.value for i in at.info]}")


def test_the_page_offers_zoo_and_registered_models(open_page, plain_head):
    at = open_page("views/doctor.py")
    assert at.selectbox(key="doctor_model").options[:4] == ["MLP", "GPT (small transformer)",
                                                             "LLaMA (RMSNorm, RoPE, SwiGLU)", "CNN"]
    assert any(o.startswith("plain_head") for o in at.selectbox(key="doctor_model").options)
    assert at.selectbox(key="doctor_widths").value == "64 → 256 (3 widths)"
    assert at.info[0].value.startswith("Choose a model")


@pytest.mark.slow  # a real `doctor` process: ~20 s on one CPU
def test_a_healthy_zoo_model_is_reported_healthy(open_page):
    at = _run_doctor(open_page("views/doctor.py"))
    assert not at.exception
    assert any(s.value.startswith("**Healthy.** mlp (mup)") for s in at.success)
    assert not at.error


@pytest.mark.slow  # a real `doctor` process: ~25 s on one CPU
def test_a_plain_linear_head_is_named_with_its_fix_and_evidence(open_page, plain_head):
    at = open_page("views/doctor.py")
    at.selectbox(key="doctor_model").set_value("plain_head").run()
    at = _run_doctor(at)
    errors = [e.value for e in at.error]
    assert any(e.startswith("**Problems.**") for e in errors)
    ablation = next(e for e in errors if e.startswith("**ablation**"))
    assert "`5` is not a readout: logits grow by x" in ablation
    assert "**Fix:** make the head a mucore.Readout" in ablation
    assert len(at.get("plotly_chart")) >= 2  # coordinate slopes and the ablation's bars


def test_setup_shows_static_check_findings_beside_the_launch_button(open_page, plain_head,
                                                                   db_path, no_runner):
    """A model the spec accepts (it has a readout) but whose nn.MultiheadAttention cannot take
    µP's score scale while its head dim grows: the static checks fail it before launch, with
    the fix, and the user may still launch (the sweep then shows what goes wrong)."""
    at = open_page("views/setup.py")
    at.selectbox(key="setup.model.kind").set_value("custom").run()
    at.selectbox(key="setup.model.name").set_value("mha_pixels").run()
    assert not at.exception
    assert any("µP checks fail for this model" in e.value for e in at.error)
    notes = " ".join(m.value for m in at.markdown)
    assert "**attention** (fail)" in notes and "head" in notes
    from experiments.store import Store

    launch = at.button(key="FormSubmitter:setup_launch-Launch sweep")
    assert launch.label == "Launch sweep" and not launch.disabled
    launch.click().run()
    assert not at.exception
    (sweep,) = Store(db_path).list_sweeps()  # launching stays possible
    assert Store(db_path).get_sweep(sweep.id).spec["model"]["name"] == "mha_pixels"
    assert no_runner == [db_path.resolve()]


@pytest.fixture(scope="module")
def plain_head_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The real `doctor --json` of the plain-head MLP, at small widths and steps (~4 s)."""
    folder = tmp_path_factory.mktemp("doctor")
    (folder / "models").mkdir()
    (folder / "models" / "plain_head.py").write_text(PLAIN_HEAD)
    out = folder / "report.json"
    r = subprocess.run(
        [sys.executable, "-m", "experiments", "doctor", "--model", "plain_head",
         "--widths", "32,64,128", "--steps", "10", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MUTRANSFER_MODEL_DIRS": str(folder / "models")},
    )
    assert r.returncode == 1, r.stdout + r.stderr  # problems found: the head is not a readout
    return json.loads(out.read_text())


def test_evidence_charts_draw_the_doctor_json(plain_head_report: dict[str, Any]) -> None:
    report = DoctorResult.from_json(plain_head_report)  # what the Doctor page draws
    assert report.verdict == plain_head_report["verdict"] == "problems" and not report.healthy
    assert [f.check for f in report.findings] == [f["check"] for f in plain_head_report["findings"]]
    evidence = {f.check: f.evidence for f in report.findings}
    raw = {f["check"]: f["evidence"] for f in plain_head_report["findings"]}
    coord = evidence["coord_check"]
    fig = doctor_charts.activation_slopes_figure(coord)
    by_module: dict[str, list[tuple[int, float]]] = {}
    for s in raw["coord_check"]["slopes"]:
        by_module.setdefault(s["module"], []).append((s["step"], s["slope"]))
    assert len(fig.data) == min(len(by_module), 12) > 1
    worst = max(by_module, key=lambda m: max(abs(v) for _, v in by_module[m]))
    assert worst in coord.offenders and coord.roles[worst] == "readout"
    assert fig.data[0].name == worst and fig.data[0].line.width == 3  # worst first, readout bold
    for trace in fig.data:  # every line is its module's slopes, step by step
        assert list(zip(trace.x, trace.y, strict=True)) == sorted(by_module[trace.name])
    judged = raw["update_size"]["judgements"]
    fig = doctor_charts.update_slopes_figure(evidence["update_size"])
    assert list(fig.data[0].x) == [j["param"] for j in judged] and len(judged) >= 3
    assert list(fig.data[0].y) == [j["slope"] for j in judged]
    assert list(fig.data[1].y) == [j["expected"] for j in judged]  # µP's slope per role
    assert [c == "#2e7d32" for c in fig.data[0].marker.color] == [j["ok"] for j in judged]
    tried = raw["ablation"]["tried"]
    fig = doctor_charts.ablation_figure(evidence["ablation"])
    # The model as it is first (its own excess, so a fix that restores everything, a bar of
    # height 0, is seen against it), then one bar per switch.
    before = raw["ablation"]["before"]
    assert before is not None and before > 0
    assert list(fig.data[0].x) == ["as it is", *[t["label"] for t in tried]]
    assert "readout multiplier" in fig.data[0].x  # the switch that restores flat slopes
    assert list(fig.data[0].y) == [before, *[t["excess"] for t in tried]]
    assert doctor_charts.update_slopes_figure(evidence["readout"]).data == ()  # none measured
