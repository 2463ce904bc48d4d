"""The engine's one door for the dashboard: launch, list, runs, transfer report, export, verify,
cancel, retry.

    service = Service(db_path)
    sweep_id = service.launch(spec)                    # queue + start the background runner
    report = service.transfer(sweep_id).report         # a TransferReport, not the CLI's JSON
    bundle = service.export(sweep_id, target_width=1024)
    text = service.bundle_json(bundle)                 # the bytes the CLI's export writes

The app's pages call this class and nothing below it (`tests/test_architecture.py` checks the
imports): the store, the runner, the analysis and the bundle code can change shape without a
page noticing, and every page gets typed objects. The types a page names (`TransferReport`,
`HPBundle`, `SweepSummary`, `RunState`, ...) are re-exported here for the same reason, and so
are the typed results of the jobs a page runs as a subprocess (`DoctorResult`,
`CoordCheckReport`, `DescribeTable`, `VerifyReport`: `experiments.job_results`), which parse the
JSON the job writes: a page reads their fields, never the JSON's keys. The CLI
keeps its own thin commands over the same engine functions, so the browser and the terminal
compute the same numbers.

Importing this module never imports torch: the bundle and verification code (which do) load on
first use, and so do the re-exported types that live beside them (PEP 562), so listing sweeps
or drawing the runs table never pays for them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from experiments.analysis import DEFAULT_REGRET_TOLERANCE, DEFAULT_TOLERANCE
from experiments.analysis.loss_choice import LOSS_CHOICES, loss_words, resolve_loss
from experiments.bundle.progress import VerifyProgress, read_progress
from experiments.coordcheck.request import CoordCheckRequest
from experiments.doctor.launch import doctor_args, launch_findings
from experiments.errors import UserError
from experiments.files import read_structured
from experiments.job_results import (
    CoordCheckReport,
    CoordPoint,
    DescribedParam,
    DescribeTable,
    DoctorEvidence,
    DoctorFinding,
    DoctorResult,
    ModuleSlope,
    VerifyPoint,
    VerifyReport,
)
from experiments.lazy import lazy_exports, type_checking_exports
from experiments.models.catalog import ModelInfo, list_models
from experiments.models.registry import ModelOption
from experiments.spec.sweep import SweepSpec
from experiments.store import (
    CoordCheckRecord,
    QuarantinedChunk,
    RunState,
    Store,
    SweepRecord,
    SweepSummary,
    VerificationRecord,
)
from experiments.tasks.datadirs import DataEntry, allowed_data_dirs, list_data

# Re-exported types whose modules are heavy (the bundle's imports torch) or not needed until a
# page asks: the imports below are the list, each loaded on first access (`experiments.lazy`).
if TYPE_CHECKING:  # pragma: no cover - typing only
    # The ladder axes (width, depth, ...) and their sections, for the Transfer page's charts.
    from experiments.analysis.axes import (  # noqa: F401 - re-exported
        Axis,
        at_bases,
        get_axis,
        ladder_bases,
    )
    from experiments.analysis.forecast_schema import Forecast  # noqa: F401 - re-exported
    from experiments.analysis.ladder_schema import LadderReport  # noqa: F401 - re-exported
    from experiments.analysis.schema import TransferReport
    from experiments.bundle.build import HPBundle
    from experiments.bundle.verify_cost import VerifyEstimate
    from experiments.doctor.critical_batch import (  # noqa: F401 - re-exported
        noise_scale_warning,
    )
    from experiments.spec.estimate import SweepEstimate
    from experiments.spec.reach import VerdictReach  # noqa: F401 - re-exported (lazy)
    from experiments.spec.scaling import PowerRule  # noqa: F401 - re-exported
    from experiments.sweep.planning import SearchProgress

    # The scaling rules' names, for the forms that pick one (no aliases: the lazy loader
    # reads each name from its module).
    from mucore.scaling import POWER, rule_names  # noqa: F401 - re-exported

_LAZY_TYPES = type_checking_exports(__name__, globals())
__getattr__ = lazy_exports(__name__, _LAZY_TYPES, globals())

__all__ = [
    "DEFAULT_LOSS",
    "LOSS_CHOICES",
    "loss_words",
    "TARGET_DOUBLINGS",
    "CoordCheckRecord",
    "CoordCheckReport",
    "CoordCheckRequest",
    "CoordPoint",
    "DataEntry",
    "DescribeTable",
    "DescribedParam",
    "DoctorEvidence",
    "DoctorFinding",
    "DoctorResult",
    "ModelInfo",
    "ModelOption",
    "ModuleSlope",
    "QuarantinedChunk",
    "RunState",
    "Service",
    "ServiceError",
    "SweepRecord",
    "SweepSummary",
    "TransferView",
    "VerificationRecord",
    "VerifyPoint",
    "VerifyProgress",
    "VerifyReport",
    "read_uploaded_spec",
    *_LAZY_TYPES,
]

# The loss the dashboard ranks learning rates by unless the user picks one: "auto" reads the
# validation loss where the task has a validation split (`experiments.analysis.loss_choice`).
DEFAULT_LOSS = "auto"
# Beyond the sweep's widest model, the export page offers this many doublings as targets.
TARGET_DOUBLINGS = 4


class ServiceError(UserError):
    """A request the engine refused; the message says why and what to change."""


class RunnerNotStarted(ServiceError):
    """The sweep is stored and queued, but the background runner could not start.

    Attributes:
        sweep_id: the queued sweep (nothing is lost: `sweep resume` or a later launch runs it).
    """

    def __init__(self, message: str, sweep_id: int | None = None) -> None:
        super().__init__(message)
        self.sweep_id = sweep_id


@dataclass(frozen=True)
class TransferView:
    """What the Transfer page draws: the runs and, once runs finished, their analysis.

    Attributes:
        runs: the sweep's runs frame (one row per run, knob columns included).
        report: the transfer analysis, or None while no run has finished.
        problem: why there is no report although runs finished (the analysis refused), or None.
    """

    runs: pd.DataFrame
    report: TransferReport | None
    problem: str | None

    @property
    def finished(self) -> pd.DataFrame:
        """The runs whose loss is final (done or diverged): the ones the analysis reads."""
        from experiments.analysis import finished

        return finished(self.runs)

    @property
    def n_finished(self) -> int:
        """How many runs are finished (done or diverged)."""
        return len(self.finished)

    def loss_column(self, choice: str) -> str:
        """The loss column the page draws: the report's, else what `choice` resolves to
        ("auto": validation where the runs have it; `experiments.analysis.loss_choice`)."""
        if self.report is not None:
            return self.report.loss
        return resolve_loss(self.runs, choice)[0] if len(self.runs) else "final_train_loss"


def read_uploaded_spec(raw: bytes, filename: str) -> Any:
    """Parse an uploaded spec file exactly as the CLI reads a spec file
    (`experiments.files.read_structured`: JSON for a .json name, else YAML; safe tags only,
    with whatever size and alias-expansion bounds that reader applies), so an upload can never
    be read more permissively than a file on disk.

    Args:
        raw: the uploaded bytes (the caller caps their size first).
        filename: the name the browser gave, for the suffix and for messages.

    Returns:
        The parsed data (the caller checks its shape).

    Raises:
        ServiceError: the reader refused it (a syntax error with its line, or a bound).
    """
    suffix = ".json" if filename.lower().endswith(".json") else ".yaml"
    with tempfile.TemporaryDirectory(prefix="mutransfer-upload-") as tmp:
        path = Path(tmp) / f"uploaded{suffix}"
        path.write_bytes(raw)
        try:
            return read_structured(path, "uploaded spec")
        except UserError as exc:  # name the upload, not the temporary copy
            raise ServiceError(str(exc).replace(str(path), filename)) from None


class Service:
    """The dashboard's typed facade over one store file (one instance per file per process).

    Args:
        db_path: the DuckDB store file (created, with its folder, on first use).
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path).expanduser().resolve()
        self.store = Store(self.db_path)

    # --- Data ----------------------------------------------------------------------------

    def data_dirs(self) -> list[Path]:
        """The folders task data may come from (setting `MUTRANSFER_DATA_DIRS`; by default the
        `datasets` folder beside the store named by `MUTRANSFER_DB_PATH`)."""
        return allowed_data_dirs()

    def data_files(self, task_name: str | None = None) -> list[DataEntry]:
        """What the allowed folders hold: .txt and .npz files ("file" tasks) and folders with
        train.bin and val.bin ("tokens" tasks).

        Args:
            task_name: only the entries this `task.name` reads ("file" or "tokens"); None: all.
        """
        return [e for e in list_data() if task_name is None or e.task_name == task_name]

    # --- Sweeps ---------------------------------------------------------------------------

    def estimate(self, spec: SweepSpec) -> SweepEstimate:
        """Runs, parameters, compute and memory of a spec before it is launched."""
        from experiments.spec.estimate import estimate

        return estimate(spec)

    def launch(self, spec: SweepSpec, start_runner: bool = True) -> int:
        """Queue every run of a validated spec; start the background runner; return the id.

        Args:
            spec: a validated spec (validation already ran: it is not repeated here).
            start_runner: start the runner process unless one is alive (tests turn it off).

        Raises:
            ServiceError: the store refused the sweep (nothing is stored).
            RunnerNotStarted: the sweep is queued but the runner could not start (its
                `sweep_id` names the stored sweep).
        """
        from experiments.sweep.submit import create_sweep

        try:
            sweep_id = create_sweep(self.store, spec)
        except UserError as exc:
            raise ServiceError(str(exc)) from exc
        if start_runner:
            try:
                self.start_runner()
            except RunnerNotStarted as exc:
                raise RunnerNotStarted(str(exc), int(sweep_id)) from exc
        return int(sweep_id)

    def start_runner(self) -> None:
        """Start the engine's background runner for this store unless a live one is registered.

        The runner is a detached process: it outlives the browser session that started it.

        Raises:
            RunnerNotStarted: the runner exited before it registered (the message gives its
                reason).
        """
        from experiments.runner import ensure_background_runner

        try:
            ensure_background_runner(self.db_path)
        except UserError as exc:  # the runner could not start: its reason, not a traceback
            raise RunnerNotStarted(str(exc)) from exc

    def sweeps(self) -> list[SweepSummary]:
        """Every sweep with its run counts by state, newest first."""
        return self.store.list_sweeps()

    # --- Adaptive LR search (experiments.sweep.adaptive, experiments.sweep.planning) --------------------

    def run_bounds(self, spec: SweepSpec) -> tuple[int, int]:
        """(fewest, most) runs the spec can make: equal for a grid, a range for adaptive."""
        from experiments.sweep.adaptive import run_bounds

        return run_bounds(spec)

    def search_progress(self, sweep_id: int) -> SearchProgress | None:
        """An adaptive sweep's runs so far, planned next and full-grid bound; None for a grid."""
        from experiments.sweep.planning import search_progress

        return search_progress(self.store, sweep_id)

    def adaptive_widths(self, sweep_id: int) -> list[int]:
        """The widths whose LRs an adaptive search chose ([] for a grid sweep)."""
        from experiments.sweep.adaptive import adaptive_widths
        from experiments.sweep.planning import is_adaptive

        record = self.store.get_sweep(sweep_id)
        if record is None or not is_adaptive(record.spec):
            return []
        return adaptive_widths(self.spec(sweep_id))

    def spec(self, sweep_id: int) -> SweepSpec:
        """The spec a sweep was launched with.

        Raises:
            ServiceError: no such sweep, or its stored spec no longer validates here.
        """
        record = self.store.get_sweep(sweep_id)
        if record is None:
            raise ServiceError(f"no sweep {sweep_id} in the store {self.db_path}: pick one of "
                               "the ids the Runs page lists")
        try:
            return SweepSpec.model_validate(record.spec)
        except ValueError as exc:
            raise ServiceError(f"sweep {sweep_id}'s stored spec does not validate on this "
                               f"machine: {exc}") from None

    def cancel_sweep(self, sweep_id: int) -> int:
        """Cancel a sweep's queued and running runs; returns how many were cancelled."""
        return self.store.cancel_sweep(sweep_id)

    def cancel_run(self, run_id: int) -> int:
        """Cancel one queued or running run; returns 1 if it was, else 0."""
        return self.store.cancel_run(run_id)

    def retry(self, sweep_id: int, start_runner: bool = True) -> int:
        """Queue a sweep's failed and cancelled runs again (and start the runner); how many."""
        n = self.store.retry_failed(sweep_id)
        if n and start_runner:
            self.start_runner()
        return n

    # --- Runs and metrics -----------------------------------------------------------------

    def runs(self, sweep_id: int) -> pd.DataFrame:
        """One row per run: coordinates, every global knob, state, final losses, timings."""
        return self.store.runs_frame(sweep_id)

    def quarantined(self, sweep_id: int) -> list[QuarantinedChunk]:
        """The sweep's metric chunks that could not be read and were moved aside (their runs'
        curves have gaps; each run's `note` in `runs` says the same)."""
        return self.store.quarantined(sweep_id)

    def metrics(self, sweep_id: int, run_ids: list[int], names: list[str],
                max_points: int | None = None) -> pd.DataFrame:
        """Logged metrics of some runs (run_id, name, step, value), thinned to `max_points`."""
        return self.store.metrics_frame(sweep_id, run_ids=run_ids, names=names,
                                        max_points=max_points)

    # --- Transfer -------------------------------------------------------------------------

    def transfer(self, sweep_id: int, tolerance: float = DEFAULT_TOLERANCE,
                 loss: str = DEFAULT_LOSS, strict_interval: bool = False,
                 regret_tolerance: float = DEFAULT_REGRET_TOLERANCE,
                 depth_width: int | None = None,
                 target_width: int | None = None) -> TransferView:
        """The runs of a sweep and their transfer analysis (None until a run has finished).

        A sweep the analysis refuses (e.g. too few finished runs) gives `problem` instead of
        raising: the page shows the runs and says why there is no verdict yet.

        Args:
            sweep_id: the sweep.
            tolerance: the verdict's drift tolerance (log2 LR per width doubling).
            loss: the final loss that ranks the learning rates ("auto", "train", "val" or a
                column name; the report's `loss` is the column used).
            strict_interval: require the drift's whole 95% interval within the tolerance.
            regret_tolerance: the µP LR regret allowed at the widest width (fraction of its
                best loss; the seed noise there applies when larger).
            depth_width: the width every ladder section (depth, ...) reads (default: smallest).
            target_width: forecast each parametrization's best loss at this width (and
                predict the optima there), as `analyze --target-width` does.
        """
        from experiments.analysis import analyze

        view = TransferView(self.runs(sweep_id), None, None)
        if view.finished.empty:
            return view
        try:
            report = analyze(view.runs, tolerance=tolerance, loss=loss,
                             strict_interval=strict_interval, regret_tolerance=regret_tolerance,
                             depth_width=depth_width, target_width=target_width)
        except ValueError as exc:
            return TransferView(view.runs, None, str(exc))
        return TransferView(view.runs, report, None)

    # --- Export and verification ----------------------------------------------------------

    def target_widths(self, sweep_id: int) -> list[int]:
        """The sweep's widths and a few doublings beyond the widest (the usual targets)."""
        runs = self.runs(sweep_id)
        if runs.empty:
            return []
        widths = sorted(int(w) for w in runs["width"].unique())
        return [*widths, *(widths[-1] * 2**k for k in range(1, TARGET_DOUBLINGS + 1))]

    def export(self, sweep_id: int, target_width: int, force: bool = False, *,
               target_batch: int | None = None, target_steps: int | None = None,
               rules: dict[str, str] | None = None) -> HPBundle:
        """The HP bundle for `target_width` (what `python -m experiments export` writes).

        Args:
            sweep_id: the sweep whose runs are analysed.
            target_width: the width of the model the bundle is for.
            force: export although transfer is not confirmed (the bundle records it), like the
                CLI's `--force`.
            target_batch, target_steps: a batch / horizon ladder's target (`--target-batch`,
                `--target-steps`; default: the bases).
            rules: batch / horizon rules applied instead of the sweep's (`--batch-rule`,
                `--horizon-rule`: a rule name, "power:X" or "fitted").

        Raises:
            ServiceError: no such sweep, transfer not confirmed (unless `force`), or the
                analysis has nothing to export yet.
        """
        from experiments.bundle.build import export_bundle

        try:
            return export_bundle(self.store, sweep_id, target_width, force=force,
                                 target_batch=target_batch, target_steps=target_steps,
                                 rules=rules)
        except (UserError, ValueError) as exc:  # the analysis refuses partial data likewise
            raise ServiceError(str(exc)) from exc

    def bundle_json(self, bundle: HPBundle) -> str:
        """The bundle's JSON text, byte for byte what the CLI's `export --out b.json` writes.

        Raises:
            ServiceError: the bundle was changed after it was hashed.
        """
        from experiments.bundle.build import bundle_json

        try:
            return bundle_json(bundle)
        except UserError as exc:
            raise ServiceError(str(exc)) from exc

    def bundle_yaml(self, bundle: HPBundle) -> str:
        """The bundle's YAML text, what the CLI writes to a .yaml/.yml bundle file.

        Raises:
            ServiceError: the bundle was changed after it was hashed.
        """
        from experiments.bundle.build import bundle_yaml

        try:
            return bundle_yaml(bundle)
        except UserError as exc:
            raise ServiceError(str(exc)) from exc

    def verify_command(self, bundle_path: Path, progress_path: Path | None = None) -> list[str]:
        """`python -m experiments` arguments that verify a bundle file and record the result.

        Verification trains models for minutes, so the dashboard runs it as a subprocess job
        (`app.jobs`) rather than in the server process; with `progress_path`, the job rewrites
        that file with its progress (`read_verify_progress`).
        """
        extra = ["--progress", str(progress_path)] if progress_path is not None else []
        return ["verify", str(bundle_path), "--db", str(self.db_path), *extra]

    def verify_estimate(self, sweep_id: int, bundle: HPBundle, bracket: int = 2) -> VerifyEstimate:
        """What verifying `bundle` will cost (runs, time, memory), before it is launched; the
        time scaled by how long the sweep's widest runs really took.

        Raises:
            ServiceError: the bundle's task cannot be loaded.
        """
        from experiments.bundle.verify_cost import estimate_verify

        try:
            return estimate_verify(bundle, bracket, runs=self.runs(sweep_id))
        except UserError as exc:
            raise ServiceError(str(exc)) from exc

    @staticmethod
    def read_verify_progress(path: Path | None) -> VerifyProgress | None:
        """The latest progress a running verification wrote (None: none yet)."""
        return read_progress(path)

    def live_losses(self, sweep_id: int) -> pd.DataFrame:
        """The latest logged train loss of each running run (run_id, step, loss): the Runs
        table shows it while the run trains (its final loss comes only at the end)."""
        return self.store.latest_losses(sweep_id)

    def verifications(self, sweep_id: int, target_width: int | None = None
                      ) -> list[VerificationRecord]:
        """Stored verification results of a sweep (at one target width, or all), newest first."""
        return [v for v in self.store.list_verifications(sweep_id)
                if target_width is None or v.target_width == target_width]

    def coord_checks(self) -> list[CoordCheckRecord]:
        """Stored coordinate checks (without their full results), newest first."""
        return list(self.store.list_coord_checks())

    def coord_check_command(self, request: CoordCheckRequest) -> list[str]:
        """The `coord-check` arguments (without `--json`) of a width or depth check, checked
        before any process starts (`experiments.coordcheck.request`).

        Raises:
            ServiceError: an unknown parametrization, a depth ladder that is not strictly
                increasing or has fewer than two depths, a model without residual blocks, or a
                depth table with SGD; the message names the field.
        """
        try:
            return request.cli_args()
        except UserError as exc:
            raise ServiceError(str(exc)) from exc

    # --- Doctor: static and dynamic µP checks ------------------------------------------------

    def doctor_command(self, model_args: list[str], param: str, widths: list[int],
                       optimizer: str = "adam") -> list[str]:
        """The `doctor` arguments (without `--json`): static checks, then 30-step dynamic
        checks and, when one fails, the ablation (`experiments.doctor.diagnose`).

        Raises:
            ServiceError: an unknown parametrization or optimizer, or widths not increasing.
        """
        try:
            return doctor_args(model_args, param, widths, optimizer)
        except UserError as exc:
            raise ServiceError(str(exc)) from exc

    def doctor_static(self, spec: SweepSpec) -> list[DoctorFinding]:
        """The static µP checks of the spec's model, per parametrization, that did not pass
        (meta device, well under a second; `experiments.doctor.launch`)."""
        return launch_findings(spec)

    # --- Models ---------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        """The zoo's models, then the registered ones (`MUTRANSFER_MODEL_DIRS`, entry points),
        each with its source and options (name, type, default, choices).

        The browser picks from this list only: it never names a file, a module or a folder.

        A registered model that fails to import or breaks the contract is an entry with its
        `error` (file, line and fix) and no options: list it by name, do not offer it.

        Raises:
            ServiceError: the registry cannot be read (a model folder is missing, or two
                sources claim one name; the message names them and the fix).
        """
        try:
            return list_models()
        except UserError as exc:
            raise ServiceError(str(exc)) from exc
