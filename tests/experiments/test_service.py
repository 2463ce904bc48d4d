"""The dashboard's service over a real DuckDB file: launch, run, transfer, export, cancel, retry.

One tiny sweep is launched through the service (without its background runner) and trained by
the runner's foreground API, so `transfer()` reads genuine runs. Export's confirmed/not
confirmed branches use sweeps finished with synthetic losses whose optima are known, so which
branch a test takes never depends on training noise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from experiments.service import (
    HPBundle,
    RunState,
    Service,
    ServiceError,
    TransferReport,
    TransferView,
)
from experiments.spec.sweep import SweepSpec

TINY = {
    "name": "service-tiny",
    "model": {"kind": "mlp", "depth": 2},
    "task": {"name": "digits"},
    "widths": [32, 64],
    "base_width": 32,
    "parametrizations": ["sp", "mup"],
    "optimizer": {"name": "adam"},
    "lr_grid": {"log2_min": -9, "log2_max": -5, "step": 2},
    "hparams": {"init_std": 1.0, "output_mult": 1.0},
    "seeds": [0],
    "steps": 8,
    "batch_size": 16,
    "log_every": 2,
    "device": "cpu",
}
N_TINY_RUNS = 2 * 2 * 3  # parametrizations x widths x learning rates (one seed)

# The synthetic sweeps: µP's optimum sits at MUP_OPT at every width unless it is made to drift.
SYNTHETIC = {**TINY, "name": "service-synthetic", "widths": [32, 64, 128],
             "lr_grid": {"log2_min": -11, "log2_max": -3, "step": 1}, "seeds": [0, 1]}
MUP_OPT = -6.3


@pytest.fixture
def runner_starts(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record `Service.start_runner` calls instead of spawning the background runner."""
    calls: list[Path] = []
    monkeypatch.setattr(Service, "start_runner", lambda self: calls.append(self.db_path))
    return calls


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Service, int]:
    """The tiny sweep, launched through the service and trained in the foreground."""
    from experiments.runner import run_sweep

    service = Service(tmp_path_factory.mktemp("trained") / "store.duckdb")
    sweep_id = service.launch(SweepSpec.model_validate(TINY), start_runner=False)
    run_sweep(service.db_path, sweep_id, workers=1)
    return service, sweep_id


def finish_synthetic(service: Service, sweep_id: int, mup_drift: float) -> None:
    """Finish every run of a sweep with a loss bowl in log2 LR (no training).

    µP's optimum moves by `mup_drift` log2 LR per width doubling; SP's falls by 0.8.
    """
    for claim in service.store.claim(10_000, "test", sweep_id):
        p = claim.payload
        doublings = math.log2(p["width"] / 32)
        opt = MUP_OPT + mup_drift * doublings if p["parametrization"] == "mup" else -5.5 - 0.8 * doublings
        x = math.log2(p["lr"])
        loss = 0.1 + 0.05 * (x - opt) ** 2 + 0.001 * p["seed"]
        assert service.store.finish(claim.run_id, claim.attempt, {
            "state": "done", "final_train_loss": loss, "final_val_loss": loss, "steps_done": 8})


def synthetic(tmp_path: Path, mup_drift: float) -> tuple[Service, int]:
    service = Service(tmp_path / "synthetic.duckdb")
    sweep_id = service.launch(SweepSpec.model_validate(SYNTHETIC), start_runner=False)
    finish_synthetic(service, sweep_id, mup_drift)
    return service, sweep_id


def test_launch_queues_every_run_and_starts_the_runner_only_when_asked(
        tmp_path: Path, runner_starts: list[Path]) -> None:
    service = Service(tmp_path / "sub" / "store.duckdb")  # the folder is created
    spec = SweepSpec.model_validate(TINY)
    assert service.estimate(spec).n_runs == N_TINY_RUNS
    quiet = service.launch(spec, start_runner=False)
    assert runner_starts == []
    loud = service.launch(spec)
    assert runner_starts == [(tmp_path / "sub" / "store.duckdb").resolve()]
    assert [s.id for s in service.sweeps()] == [loud, quiet]  # newest first
    summary = service.sweeps()[1]
    assert summary.name == "service-tiny" and summary.counts == {RunState.QUEUED: N_TINY_RUNS}
    assert service.spec(quiet) == spec  # the stored spec round-trips to an equal model
    assert service.target_widths(quiet) == [32, 64, 128, 256, 512, 1024]


def test_cancel_and_retry_count_runs(tmp_path: Path, runner_starts: list[Path]) -> None:
    service = Service(tmp_path / "store.duckdb")
    sweep_id = service.launch(SweepSpec.model_validate(TINY), start_runner=False)
    first = int(service.runs(sweep_id)["run_id"].min())
    assert service.cancel_run(first) == 1
    assert service.cancel_run(first) == 0  # already cancelled
    assert service.cancel_sweep(sweep_id) == N_TINY_RUNS - 1
    assert service.cancel_sweep(sweep_id) == 0
    assert set(service.runs(sweep_id)["state"]) == {RunState.CANCELLED}
    assert service.retry(sweep_id) == N_TINY_RUNS and len(runner_starts) == 1
    assert service.retry(sweep_id) == 0 and len(runner_starts) == 1  # nothing to retry: no runner
    assert set(service.runs(sweep_id)["state"]) == {RunState.QUEUED}


def test_unknown_sweep_is_refused_or_empty(tmp_path: Path) -> None:
    service = Service(tmp_path / "store.duckdb")
    with pytest.raises(ServiceError, match="no sweep 99"):
        service.spec(99)
    with pytest.raises(ServiceError, match="no sweep 99"):
        service.export(99, target_width=256)
    assert service.runs(99).empty and service.target_widths(99) == []
    view = service.transfer(99)
    assert view.report is None and view.problem is None and view.n_finished == 0


def test_transfer_before_and_after_training(tmp_path: Path, trained: tuple[Service, int]) -> None:
    service, sweep_id = trained
    queued = Service(tmp_path / "store.duckdb")
    waiting = queued.transfer(queued.launch(SweepSpec.model_validate(TINY), start_runner=False))
    assert isinstance(waiting, TransferView)
    assert waiting.report is None and waiting.problem is None and len(waiting.runs) == N_TINY_RUNS

    view = service.transfer(sweep_id)
    assert view.problem is None and view.n_finished == N_TINY_RUNS == len(view.runs)
    report = view.report
    assert report is not None
    assert isinstance(report, TransferReport) and report.verdict in (
        "confirmed", "not_confirmed", "inconclusive")
    assert list(report.lr) == ["sp", "mup"] and report.n_runs == N_TINY_RUNS
    assert [w.width for w in report.lr["mup"].widths] == [32, 64]
    # The task has a validation split: the verdict reads the validation loss unless told.
    assert report.loss == "final_val_loss" and report.tolerance == 0.25
    assert service.transfer(sweep_id, loss="train").report.loss == "final_train_loss"
    assert service.transfer(sweep_id, loss="final_val_loss", tolerance=0.5).report.tolerance == 0.5

    refused = service.transfer(sweep_id, tolerance=-1.0)  # the analysis refuses: no raise
    assert refused.report is None and "tolerance" in (refused.problem or "")


def test_runs_and_metrics_of_the_trained_sweep(trained: tuple[Service, int]) -> None:
    service, sweep_id = trained
    runs = service.runs(sweep_id)
    assert set(runs["state"]) <= {RunState.DONE, RunState.DIVERGED}
    run_id = int(runs.loc[runs["state"] == RunState.DONE, "run_id"].iloc[0])
    metrics = service.metrics(sweep_id, [run_id], ["train_loss"])
    assert set(metrics["run_id"]) == {run_id} and set(metrics["name"]) == {"train_loss"}
    assert len(metrics) >= 4  # logged every 2 of 8 steps
    thinned = service.metrics(sweep_id, [run_id], ["train_loss"], max_points=2)
    assert len(thinned) < len(metrics) and thinned["step"].max() == metrics["step"].max()


def test_export_of_the_trained_sweep_matches_its_verdict(trained: tuple[Service, int]) -> None:
    service, sweep_id = trained
    report = service.transfer(sweep_id).report
    assert report is not None
    confirmed = report.verdict == "confirmed"
    if not confirmed:
        # Inconclusive is refused like not confirmed, naming the verdict it has.
        words = {"not_confirmed": "not confirmed", "inconclusive": "inconclusive"}[report.verdict]
        with pytest.raises(ServiceError, match=f"verdict is {words}"):
            service.export(sweep_id, target_width=256)
    bundle = service.export(sweep_id, target_width=256, force=True)
    assert isinstance(bundle, HPBundle)
    assert bundle.target_width == 256 and bundle.parametrization == "mup"
    assert bundle.evidence.sweep_id == sweep_id and bundle.evidence.verdict == report.verdict
    assert bundle.evidence.forced == (not confirmed)


def test_export_confirmed_sweep_without_force(tmp_path: Path) -> None:
    service, sweep_id = synthetic(tmp_path, mup_drift=0.0)
    assert service.transfer(sweep_id).report.verdict == "confirmed"
    bundle = service.export(sweep_id, target_width=1024)
    assert bundle.target_width == 1024 and bundle.base_width == 32
    assert bundle.log2_lr == pytest.approx(MUP_OPT, abs=0.1)
    assert bundle.evidence.verdict == "confirmed" and not bundle.evidence.forced
    text = service.bundle_json(bundle)
    assert json.loads(text) == bundle.body() == yaml.safe_load(service.bundle_yaml(bundle))
    assert json.loads(text)["content_hash"] == bundle.content_hash != ""
    tampered = bundle.model_copy(update={"lr": bundle.lr * 2})
    with pytest.raises(ServiceError, match="changed after it was hashed"):
        service.bundle_json(tampered)


def test_export_unconfirmed_sweep_needs_force(tmp_path: Path) -> None:
    service, sweep_id = synthetic(tmp_path, mup_drift=1.0)
    assert service.transfer(sweep_id).report.verdict == "not_confirmed"
    with pytest.raises(ServiceError, match="not confirmed"):
        service.export(sweep_id, target_width=512)
    bundle = service.export(sweep_id, target_width=512, force=True)
    assert bundle.target_width == 512
    assert bundle.evidence.verdict == "not_confirmed" and bundle.evidence.forced


def test_verifications_and_the_verify_command(tmp_path: Path) -> None:
    service = Service(tmp_path / "store.duckdb")
    sweep_id = service.launch(SweepSpec.model_validate(TINY), start_runner=False)
    assert service.verifications(sweep_id) == []
    service.store.record_verification(sweep_id, {"target_width": 256, "within_one_step": True}, "h1")
    service.store.record_verification(sweep_id, {"target_width": 512, "within_one_step": False}, "h2")
    assert [v.bundle_hash for v in service.verifications(sweep_id)] == ["h2", "h1"]  # newest first
    [only] = service.verifications(sweep_id, target_width=256)
    assert only.within_one_step is True and only.result["target_width"] == 256
    assert service.verify_command(tmp_path / "b.json") == [
        "verify", str(tmp_path / "b.json"), "--db", str(service.db_path)]
