"""Records kept beside the sweeps: coordinate checks, exported HP bundles, verifications.

Each is written once (the full result as JSON plus a few columns to list and filter by) and
read back as a typed record, newest first.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import duckdb

from experiments.job_results import VerifyReport
from experiments.store.db import utc_now
from experiments.store.layout import StoreFiles


@dataclass(frozen=True)
class CoordCheckRecord:
    """A stored coordinate check (without its full result).

    Attributes:
        id: its id.
        created: when it was stored (naive UTC).
        model: the model kind it checked (the result's `args.model`), if given.
        param: the parametrization it checked.
        verdict: its verdict text.
    """

    id: int
    created: datetime
    model: str | None
    param: str | None
    verdict: str | None

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict with the same keys (created stays a datetime)."""
        return asdict(self)


@dataclass(frozen=True)
class ExportRecord:
    """An exported HP bundle.

    Attributes:
        id: its id.
        sweep_id: the sweep it came from.
        created: when it was exported (naive UTC).
        path: the file it was written to, if any.
    """

    id: int
    sweep_id: int
    created: datetime
    path: str | None

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict with the same keys (created stays a datetime)."""
        return asdict(self)


@dataclass(frozen=True)
class VerificationRecord:
    """A stored verification of an exported bundle (the `verify --json` report).

    Attributes:
        id: its id.
        sweep_id: the sweep behind the bundle, if known.
        created: when it was stored (naive UTC).
        bundle_hash: the bundle's content hash, if known.
        target_width: the width it trained.
        within_one_step: whether the transferred LR was within one grid step of the best.
        result: the full report.
    """

    id: int
    sweep_id: int | None
    created: datetime
    bundle_hash: str | None
    target_width: int | None
    within_one_step: bool | None
    result: dict[str, Any]

    @property
    def report(self) -> VerifyReport:
        """The stored report, typed (the `verify --json` document it was written from)."""
        return VerifyReport.from_json(self.result)

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict with the same keys (created stays a datetime)."""
        return asdict(self)


def _next_id(con: duckdb.DuckDBPyConnection) -> int:
    """A fresh id from the sequence the record tables share."""
    return int(con.execute("SELECT nextval('aux_ids')").fetchone()[0])  # type: ignore[index]


def _where_sweep(sweep_id: int | None) -> tuple[str, list[int]]:
    """A WHERE clause and its parameters selecting one sweep, or everything for None."""
    return ("WHERE sweep_id = ?", [sweep_id]) if sweep_id is not None else ("", [])


class RecordsTable(StoreFiles):
    """The `coord_checks`, `exports` and `verifications` tables."""

    def record_coord_check(self, result: dict[str, Any]) -> int:
        """Store a coordinate-check result (the coord-check --json dict); returns its id."""
        raw_args = result.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        with self._connect() as con:
            cid = _next_id(con)
            con.execute(
                "INSERT INTO coord_checks VALUES (?, ?, ?, ?, ?, ?)",
                [cid, utc_now(), args.get("model"), result.get("param"), result.get("verdict"),
                 json.dumps(result, default=str)],
            )
        return cid

    def list_coord_checks(self) -> list[CoordCheckRecord]:
        """Stored coordinate checks, newest first (without the full result)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT id, created, model, param, verdict FROM coord_checks ORDER BY id DESC"
            ).fetchall()
        return [CoordCheckRecord(int(i), c, m, p, v) for i, c, m, p, v in rows]

    def record_export(self, sweep_id: int, bundle: dict[str, Any], path: str | None) -> int:
        """Record an exported HP bundle; returns its id."""
        with self._connect() as con:
            eid = _next_id(con)
            con.execute(
                "INSERT INTO exports VALUES (?, ?, ?, ?, ?)",
                [eid, sweep_id, utc_now(), path, json.dumps(bundle, default=str)],
            )
        return eid

    def list_exports(self, sweep_id: int | None = None) -> list[ExportRecord]:
        """Recorded exports (of one sweep, or all), newest first."""
        cond, params = _where_sweep(sweep_id)
        with self._connect() as con:
            rows = con.execute(
                f"SELECT id, sweep_id, created, path FROM exports {cond} ORDER BY id DESC", params
            ).fetchall()
        return [ExportRecord(int(i), int(s), c, p) for i, s, c, p in rows]

    def record_verification(self, sweep_id: int | None, result: dict[str, Any],
                            bundle_hash: str | None = None) -> int:
        """Store a verification report (the `verify --json` dict) beside its sweep; returns its id."""
        with self._connect() as con:
            vid = _next_id(con)
            con.execute(
                "INSERT INTO verifications VALUES (?, ?, ?, ?, ?, ?, ?)",
                [vid, sweep_id, utc_now(), bundle_hash, result.get("target_width"),
                 result.get("within_one_step"), json.dumps(result, default=str)],
            )
        return vid

    def list_verifications(self, sweep_id: int | None = None) -> list[VerificationRecord]:
        """Recorded verifications (of one sweep, or all), newest first, with their reports."""
        cond, params = _where_sweep(sweep_id)
        with self._connect() as con:
            rows = con.execute(
                "SELECT id, sweep_id, created, bundle_hash, target_width, within_one_step, result "
                f"FROM verifications {cond} ORDER BY id DESC", params,
            ).fetchall()
        return [
            VerificationRecord(int(i), None if s is None else int(s), c, h,
                               None if w is None else int(w), ok, dict(json.loads(r)))
            for i, s, c, h, w, ok, r in rows
        ]
