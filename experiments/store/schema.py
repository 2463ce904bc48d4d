"""Store schema and migrations. Version 1, then one migration per later version (v2:
verifications, v3: quarantined metric chunks, v4: each runner's scope)."""

from __future__ import annotations

import duckdb

from experiments.errors import StoreError
from experiments.states import RunState, sql_states
from experiments.store.db import transaction

# `runs.state` takes only the values of `RunState`. New stores get this CHECK; a store created
# before it keeps its table as it was (CREATE TABLE IF NOT EXISTS never alters a table), and
# the code writes only enum values either way.
STATE_CHECK = f"CHECK (state IN ({sql_states(RunState)}))"

# The version-1 tables as a new store creates them.
SCHEMA_V1 = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE SEQUENCE IF NOT EXISTS sweep_ids START 1;
CREATE SEQUENCE IF NOT EXISTS run_ids START 1;
CREATE SEQUENCE IF NOT EXISTS aux_ids START 1;
CREATE TABLE IF NOT EXISTS sweeps (
    id BIGINT PRIMARY KEY,
    name VARCHAR NOT NULL,
    spec JSON NOT NULL,
    spec_hash VARCHAR NOT NULL,
    created TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id BIGINT PRIMARY KEY,
    sweep_id BIGINT NOT NULL,
    run_key VARCHAR NOT NULL,
    width INTEGER NOT NULL,
    parametrization VARCHAR NOT NULL,
    lr DOUBLE NOT NULL,
    seed INTEGER NOT NULL,
    hparams JSON NOT NULL,
    payload JSON NOT NULL,
    job_fn VARCHAR NOT NULL,
    state VARCHAR NOT NULL {STATE_CHECK},
    attempts INTEGER NOT NULL DEFAULT 0,
    owner VARCHAR,
    steps_done INTEGER NOT NULL DEFAULT 0,
    steps_total INTEGER NOT NULL DEFAULT 0,
    error VARCHAR,
    device VARCHAR,
    queued_at TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    wall_s DOUBLE,
    samples_per_s DOUBLE,
    final_train_loss DOUBLE,
    final_val_loss DOUBLE,
    peak_mem_bytes BIGINT,
    result JSON,
    UNIQUE (sweep_id, run_key)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id BIGINT NOT NULL,
    attempt INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name VARCHAR NOT NULL,
    value DOUBLE
);
CREATE TABLE IF NOT EXISTS ingested_chunks (path VARCHAR PRIMARY KEY, rows BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS coord_checks (id BIGINT PRIMARY KEY, created TIMESTAMP NOT NULL, model VARCHAR, param VARCHAR, verdict VARCHAR, result JSON NOT NULL);
CREATE TABLE IF NOT EXISTS exports (id BIGINT PRIMARY KEY, sweep_id BIGINT NOT NULL, created TIMESTAMP NOT NULL, path VARCHAR, bundle JSON NOT NULL);
CREATE TABLE IF NOT EXISTS runners (token VARCHAR PRIMARY KEY, pid INTEGER NOT NULL, host VARCHAR NOT NULL, started TIMESTAMP NOT NULL, heartbeat TIMESTAMP NOT NULL);
"""

# Each entry upgrades from version i+1 to i+2. Example of a future migration:
#   "ALTER TABLE runs ADD COLUMN tokens_seen BIGINT"
MIGRATIONS: list[str] = [
    # v2: verification jobs of exported bundles, kept beside their sweep.
    """CREATE TABLE IF NOT EXISTS verifications (
        id BIGINT PRIMARY KEY,
        sweep_id BIGINT,
        created TIMESTAMP NOT NULL,
        bundle_hash VARCHAR,
        target_width INTEGER,
        within_one_step BOOLEAN,
        result JSON NOT NULL
    )""",
    # v3: metric chunks that could not be read, moved aside so the rest of the store ingests
    # (experiments.store.metrics). `path` is where the chunk was, `moved_to` where it is now
    # (NULL: it could not be moved and is skipped where it lies); sweep, run and attempt are
    # read from its path.
    """CREATE TABLE IF NOT EXISTS quarantined_chunks (
        path VARCHAR PRIMARY KEY,
        moved_to VARCHAR,
        sweep_id BIGINT,
        run_id BIGINT,
        attempt INTEGER,
        error VARCHAR NOT NULL,
        created TIMESTAMP NOT NULL
    )""",
    # v4: the sweep a runner serves (NULL: every sweep, the background runner), so a submit
    # does not count on a foreground runner that will never claim its runs.
    "ALTER TABLE runners ADD COLUMN sweep_id BIGINT",
]
# The first version with the `quarantined_chunks` table (a read-only store may be older).
QUARANTINE_VERSION = 3
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> int:
    """Create tables on a new store and apply pending migrations; returns the version."""
    with transaction(con):
        con.execute(SCHEMA_V1)
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        version = row[0] if row and row[0] is not None else None
        if version is None:
            con.execute("INSERT INTO schema_version VALUES (?)", [1])
            version = 1
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store schema v{version} is newer than this code (v{SCHEMA_VERSION}): upgrade "
                "mutransfer", "too_new")
        while version < SCHEMA_VERSION:
            con.execute(MIGRATIONS[version - 1])
            version += 1
            con.execute("INSERT INTO schema_version VALUES (?)", [version])
    return int(version)


def read_version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of a store opened read-only (nothing is created or migrated).

    Raises:
        StoreError: the file has no store schema, or a later version's.
    """
    try:
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    except duckdb.CatalogException:
        row = None
    if row is None or row[0] is None:
        raise StoreError("this DuckDB file has no µTransfer store in it (no schema_version "
                         "table): pass the right --db", "corrupt")
    version = int(row[0])
    if version > SCHEMA_VERSION:
        raise StoreError(f"store schema v{version} is newer than this code (v{SCHEMA_VERSION}): "
                         "upgrade mutransfer", "too_new")
    return version
