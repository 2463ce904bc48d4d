"""Metric chunks that cannot be read: found, moved aside, recorded, reported.

Ingest reads every new chunk in one `read_parquet([...])`, so one unreadable file (cut short,
overwritten, not Parquet, a column missing or of the wrong type) would fail every ingest of the
store, and with it every runner's start. When a batch fails, each of its files is read alone
with the insert's own casts (`unreadable`); the ones that fail are recorded in the
`quarantined_chunks` table and moved to `<store>.d/quarantine/S/R/` (`quarantine`), and the
rest is ingested. A file is moved, never deleted: a repaired chunk moved back to its path is
ingested like a new one (and its record dropped). The record is written before the move, and a
chunk that could not be moved is skipped where it lies rather than read again at every ingest.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from experiments.store.db import transaction, utc_now

# Reads every column of one chunk with the casts the metrics INSERT applies, so a file passes
# exactly when its rows would insert (hash() makes DuckDB decode each value).
_PROBE_SQL = """SELECT count(*), max(hash(CAST(run_id AS BIGINT), CAST(attempt AS INTEGER),
    CAST(step AS INTEGER), CAST(name AS VARCHAR), CAST(value AS DOUBLE)))
    FROM read_parquet(?)"""
_CHUNK_NAME = re.compile(r"part-(\d+)-\d+\.parquet$")


@dataclass(frozen=True)
class QuarantinedChunk:
    """A metric chunk that could not be read and was moved aside.

    Attributes:
        path: where the chunk was (`<store>.d/chunks/S/R/part-A-N.parquet`).
        moved_to: where it is now, or None when it could not be moved (it is skipped there).
        sweep_id: the sweep of its run folder, if the path names one.
        run_id: the run of its run folder, if the path names one.
        attempt: the attempt in its file name, if it has one.
        error: why it could not be read (DuckDB's message).
        created: when it was quarantined (naive UTC).
    """

    path: str
    moved_to: str | None
    sweep_id: int | None
    run_id: int | None
    attempt: int | None
    error: str
    created: datetime

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON-ready dict (created as ISO text)."""
        return {**asdict(self), "created": self.created.isoformat()}

    def note(self) -> str:
        """One line for the run's note and `sweep status`."""
        where = f"moved to {self.moved_to}" if self.moved_to else "left in place, skipped"
        return f"metric chunk {Path(self.path).name} unreadable, quarantined ({where}): {self.error}"


def unreadable(con: duckdb.DuckDBPyConnection, files: list[str]) -> dict[str, str]:
    """The chunks among `files` that cannot be read, each with DuckDB's error.

    A file that no longer exists (another runner quarantined it meanwhile) is neither read nor
    reported.
    """
    bad = {}
    for f in files:
        if not os.path.exists(f):
            continue
        try:
            con.execute(_PROBE_SQL, [[f]]).fetchall()
        except duckdb.Error as exc:
            bad[f] = str(exc).strip().splitlines()[0][:500]
    return bad


def _coordinates(chunks_root: Path, path: str) -> tuple[int | None, int | None, int | None]:
    """(sweep, run, attempt) named by a chunk's path under `chunks_root`, None where it names none."""
    try:
        parts = Path(path).relative_to(chunks_root).parts
    except ValueError:
        parts = ()
    sweep = int(parts[0]) if len(parts) == 3 and parts[0].isdigit() else None
    run = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
    match = _CHUNK_NAME.search(path)
    return sweep, run, int(match.group(1)) if match else None


def quarantine(con: duckdb.DuckDBPyConnection, root: Path, bad: dict[str, str]) -> None:
    """Record each unreadable chunk, then move it to `root/quarantine/S/R/` (same name).

    Args:
        con: the store connection (the records are one transaction).
        root: the store's folder (`<store>.d`).
        bad: {chunk path: error}.
    """
    chunks_root = root / "chunks"
    planned = {}
    for path in bad:
        src = Path(path)
        try:
            sub = src.relative_to(chunks_root).parent
        except ValueError:
            sub = Path("other")
        planned[path] = root / "quarantine" / sub / src.name
    now = utc_now()
    with transaction(con):
        for path, error in bad.items():
            sweep, run, attempt = _coordinates(chunks_root, path)
            con.execute("INSERT OR REPLACE INTO quarantined_chunks VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [path, str(planned[path]), sweep, run, attempt, error, now])
    for path, dest in planned.items():
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
        except OSError:
            # Recorded all the same: ingest skips it where it lies.
            con.execute("UPDATE quarantined_chunks SET moved_to = NULL WHERE path = ?", [path])


def skipped_paths(con: duckdb.DuckDBPyConnection, files: list[str]) -> set[str]:
    """The paths among `files` quarantined where they lie (they could not be moved): ingest
    skips them."""
    rows = con.execute(
        """SELECT path FROM quarantined_chunks
           WHERE moved_to IS NULL AND path IN (SELECT unnest(?::VARCHAR[]))""", [files]
    ).fetchall()
    return {str(r[0]) for r in rows}


def list_quarantined(con: duckdb.DuckDBPyConnection,
                     sweep_id: int | None = None) -> list[QuarantinedChunk]:
    """Quarantined chunks (of one sweep, or all), oldest first."""
    cond, params = ("WHERE sweep_id = ?", [sweep_id]) if sweep_id is not None else ("", [])
    rows = con.execute(
        "SELECT path, moved_to, sweep_id, run_id, attempt, error, created "
        f"FROM quarantined_chunks {cond} ORDER BY created, path", params).fetchall()
    return [QuarantinedChunk(str(p), m, None if s is None else int(s), None if r is None else int(r),
                             None if a is None else int(a), str(e), c)
            for p, m, s, r, a, e, c in rows]
