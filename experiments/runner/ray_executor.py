"""Ray backend for the runner: each run is one Ray task, behind the same Executor interface.

    executor = RayExecutor(address="auto", num_cpus=2)    # or "ray://head:10001"
    run_sweep(store_path, sweep_id, executor=executor)

What stays the same as local runs: the job function (located by dotted path), the reporter
(metrics go to Parquet chunk files in the chunk folder, which the driver's ingester batches
into DuckDB; no Ray worker ever opens the DB), the cancel flag the job polls, and the retry
policy (the runner's, applied to the outcomes reported here). What Ray adds: placement by
resources (`num_cpus`, `num_gpus` or a fraction of one), remote nodes, and cancellation that
kills the task's process (`ray.cancel(force=True)`).

Ray is an optional extra: nothing here imports it at module import time.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from experiments.errors import UserError
from experiments.settings import get_settings

RAY_INSTALL_HINT = "pip install -r requirements-ray.txt"
PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Ray errors meaning the run's process or node went away, not the job's own fault. The local
# runner treats a dead worker process the same way, so these follow its crash policy.
LOST_ERROR_NAMES = frozenset(
    {
        "WorkerCrashedError",
        "NodeDiedError",
        "LocalRayletDiedError",
        "ObjectLostError",
        "OwnerDiedError",
        "ObjectReconstructionFailedError",
        "RaySystemError",
        "ActorDiedError",
    }
)


def import_ray() -> ModuleType:
    """Import Ray on first use; Ray is an optional extra, never needed by the default install.

    Raises:
        UserError: Ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError as exc:
        raise UserError(
            "the ray executor needs Ray, which is not installed in this environment: "
            f"run `{RAY_INSTALL_HINT}` (or use --executor local)"
        ) from exc
    return ray


def connect(
    address: str = "auto", *, num_cpus: int | None = None, temp_dir: Path | None = None
) -> bool:
    """Attach this process to Ray, starting a local instance where `address` asks for one.

    Args:
        address: "auto" joins the Ray instance already running on this machine (`ray start`)
            and starts a private local one when there is none; "local" always starts one;
            "ray://host:10001" joins a remote cluster through Ray Client; "host:6379" joins a
            cluster this machine is a node of.
        num_cpus: CPUs a local instance we start may use (None: all of this machine's).
        temp_dir: where a local instance we start keeps its sockets and logs (None: a fresh
            temp folder, so nothing lands in /tmp/ray).

    Returns:
        True when this call started a local instance (its caller shuts it down), else False.

    Raises:
        UserError: Ray is missing, or the address cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    # Ray 2.60 turns on token auth and writes ~/.ray/auth_token unless told otherwise; a
    # cluster that wants auth sets RAY_AUTH_MODE itself, which setdefault leaves alone.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address not in ("auto", "local"):
        try:
            ray.init(address=address, runtime_env=_remote_runtime_env(address), log_to_driver=False)
        except (ConnectionError, TimeoutError, ValueError) as exc:
            raise UserError(
                f"cannot reach the Ray cluster at ray_address {address!r}: {exc}. Check the "
                "head is up (`ray status` there) and the address is ray://HOST:10001 or HOST:6379"
            ) from exc
        return False
    if address == "auto":
        try:
            ray.init(address="auto", log_to_driver=False)
            return False
        except ConnectionError:
            pass  # nothing running here: start our own below
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(temp_dir or tempfile.mkdtemp(prefix="mutransfer-ray-")),
        runtime_env={"env_vars": {"PYTHONPATH": _worker_pythonpath(),
                                  **get_settings().child_env()}},  # registered models
    )
    return True


def _worker_pythonpath() -> str:
    """PYTHONPATH for workers of a local instance: the project first, so dotted job paths
    (experiments.train:run_job, or a test's helper module) import whatever the cwd."""
    parts = [str(PROJECT_ROOT), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(p for p in dict.fromkeys(parts) if p)


def _remote_runtime_env(address: str) -> dict[str, Any]:
    """Through Ray Client the nodes may lack this checkout: ship the engine packages."""
    if not address.startswith("ray://"):
        return {}
    import experiments
    import mucore

    return {"py_modules": [experiments, mucore]}


def run_resources(device: str, gpu_fraction: float, cluster_gpus: float) -> dict[str, float]:
    """The Ray resources one run asks for.

    Args:
        device: the run's device ("auto", "cpu", "cuda", "cuda:N").
        gpu_fraction: share of a GPU a run takes (1.0 = a whole card; 0.25 packs four small
            proxies on one card).
        cluster_gpus: GPUs in the cluster; "auto" runs ask for none when there are none, so a
            CPU-only cluster still runs an "auto" spec.

    Returns:
        Keyword arguments for `remote_fn.options(...)`: num_cpus and num_gpus.
    """
    wants_gpu = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
    return {"num_cpus": 1.0, "num_gpus": gpu_fraction if wants_gpu else 0.0}


def is_lost_error(exc: BaseException) -> bool:
    """True when a Ray error means the task's worker or node went away (crash policy)."""
    return any(cls.__name__ in LOST_ERROR_NAMES for cls in type(exc).__mro__)


@dataclass(frozen=True)
class RayOutcome:
    """How one submitted job ended, as seen from the driver.

    kind: "finished" (the entry returned `value`; job-level failures such as an exception or a
    divergence are inside it, exactly as with local workers), "lost" (the worker process or
    node died: crash policy), "cancelled" (we cancelled it), "error" (Ray refused or lost it
    in another way; `error` says how).
    """

    job_id: str
    kind: str
    value: Any = None
    error: str | None = None


@dataclass
class _InFlight:
    """One submitted run: its Ray reference and when it went out."""

    job: Any
    ref: Any
    submitted_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False


def _ray_task_body(entry_path: str, job: Any) -> Any:
    """What runs inside the Ray worker: the runner's own one-job entry point, unchanged."""
    entry = _locate(entry_path)
    return entry(job)


def _locate(dotted: str) -> Callable[..., Any]:
    module_name, _, attr = dotted.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


class RayExecutor:
    """Runs jobs as Ray tasks; same contract as the runner's LocalExecutor.

    Args:
        entry: dotted path ("module:function") of the runner's one-job entry point, called in
            the Ray worker with the job object exactly as a local worker would call it.
        address: see `connect` ("auto", "local", "ray://host:10001", "host:6379").
        num_cpus: CPUs of a local instance this executor starts (None: all).
        gpu_fraction: share of a GPU each GPU run asks for.
        temp_dir: folder of a local instance this executor starts.
        max_in_flight: tasks handed to Ray at once (None: the cluster's CPU count), so that a
            cancel or retry never waits behind a deep Ray queue.
    """

    def __init__(
        self,
        entry: str,
        address: str = "auto",
        *,
        num_cpus: int | None = None,
        gpu_fraction: float = 1.0,
        temp_dir: Path | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        if not 0.0 < gpu_fraction <= 1.0:
            raise UserError(f"gpu_fraction must be in (0, 1], got {gpu_fraction}")
        self.entry = entry
        self.address = address
        self.num_cpus = num_cpus
        self.gpu_fraction = gpu_fraction
        self.temp_dir = temp_dir
        self.max_in_flight = max_in_flight
        self._ray: ModuleType | None = None
        self._remote: Any = None
        self._owns_instance = False
        self._cluster_gpus = 0.0
        self._in_flight: dict[str, _InFlight] = {}

    def start(self) -> None:
        """Connect to (or start) Ray and register the task function; idempotent."""
        if self._ray is not None:
            return
        self._owns_instance = connect(self.address, num_cpus=self.num_cpus, temp_dir=self.temp_dir)
        ray = import_ray()
        resources = ray.cluster_resources()
        self._cluster_gpus = float(resources.get("GPU", 0.0))
        if self.max_in_flight is None:
            slots = int(resources.get("CPU", 1))
            if self._cluster_gpus:
                slots = max(slots, int(self._cluster_gpus / self.gpu_fraction))
            # One queued task per slot beyond the running ones, so a slot never idles for a
            # driver round trip; still shallow enough that cancel and retry stay prompt.
            self.max_in_flight = max(1, 2 * slots)
        # max_retries=0: Ray never re-runs a task on its own; the runner's policy decides.
        self._remote = ray.remote(max_retries=0)(_ray_task_body)
        self._ray = ray

    def shutdown(self) -> None:
        """Kill what is still running and let go of Ray (stopping it only if we started it)."""
        if self._ray is None:
            return
        for job_id in list(self._in_flight):
            self.cancel(job_id)
        if self._in_flight:  # let the kills land before a shared instance moves on
            self._ray.wait(
                [f.ref for f in self._in_flight.values()],
                num_returns=len(self._in_flight),
                timeout=10,
            )
        self._in_flight.clear()
        if self._owns_instance:
            self._ray.shutdown()
        self._ray = None

    @property
    def free_slots(self) -> int:
        """How many more jobs `submit` accepts now."""
        return max(0, (self.max_in_flight or 1) - len(self._in_flight))

    def submit(self, job_id: str, job: Any, device: str = "auto") -> None:
        """Hand one job to Ray as a task asking for the run's resources."""
        self.start()
        options = run_resources(device, self.gpu_fraction, self._cluster_gpus)
        ref = self._remote.options(name=f"mutransfer:{job_id}", **options).remote(self.entry, job)
        self._in_flight[job_id] = _InFlight(job=job, ref=ref)

    def cancel(self, job_id: str) -> None:
        """Kill the job's task now (force=True: its process exits; Ray never retries it)."""
        flight = self._in_flight.get(job_id)
        if flight is None or self._ray is None:
            return
        flight.cancelled = True
        self._ray.cancel(flight.ref, force=True)

    def poll(self, timeout_s: float = 0.5) -> list[RayOutcome]:
        """Outcomes of the jobs that ended since the last call (waits up to `timeout_s`)."""
        if not self._in_flight or self._ray is None:
            time.sleep(timeout_s)
            return []
        ray = self._ray
        refs = [f.ref for f in self._in_flight.values()]
        # Block for the first one only, then sweep up whatever else is already done: waiting
        # for num_returns=len(refs) would sit out the whole timeout while any job still runs.
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        outcomes = []
        for ref in ready:
            job_id = next(j for j, f in self._in_flight.items() if f.ref == ref)
            flight = self._in_flight.pop(job_id)
            outcomes.append(self._outcome(job_id, flight))
        return outcomes

    def _outcome(self, job_id: str, flight: _InFlight) -> RayOutcome:
        ray = self._ray
        assert ray is not None
        try:
            return RayOutcome(job_id, "finished", value=ray.get(flight.ref))
        except ray.exceptions.TaskCancelledError:
            return RayOutcome(job_id, "cancelled")
        except ray.exceptions.RayError as exc:
            if flight.cancelled:
                return RayOutcome(job_id, "cancelled")
            kind = "lost" if is_lost_error(exc) else "error"
            return RayOutcome(job_id, kind, error=f"{type(exc).__name__}: {exc}"[:2000])
