"""Coordinate checks, exports and verifications kept in the store, read back as typed records."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime

import pytest

from experiments.store import (
    CoordCheckRecord,
    ExportRecord,
    RunRow,
    Store,
    VerificationRecord,
)

Rows = Callable[..., list[RunRow]]


def test_coord_checks_come_back_newest_first(store: Store) -> None:
    first = store.record_coord_check({"args": {"model": "mlp"}, "param": "mup", "verdict": "ok"})
    second = store.record_coord_check({"args": "not a dict", "param": "sp", "verdict": "blows up"})
    newest, oldest = store.list_coord_checks()
    assert isinstance(newest, CoordCheckRecord)
    assert (newest.id, newest.model, newest.param, newest.verdict) == (second, None, "sp",
                                                                       "blows up")
    assert (oldest.id, oldest.model) == (first, "mlp")
    assert isinstance(oldest.created, datetime) and oldest.created <= newest.created
    assert set(oldest.to_dict()) == {"id", "created", "model", "param", "verdict"}


def test_exports_are_listed_per_sweep(store: Store, make_rows: Rows) -> None:
    one = store.create_sweep("one", {}, make_rows(1))
    two = store.create_sweep("two", {}, make_rows(1))
    e1 = store.record_export(one, {"lr": 0.1}, "/tmp/one.json")
    e2 = store.record_export(two, {"lr": 0.2}, None)
    assert store.list_exports(one) == [ExportRecord(e1, one, store.list_exports(one)[0].created,
                                                    "/tmp/one.json")]
    assert [e.id for e in store.list_exports()] == [e2, e1]
    assert store.list_exports(two)[0].path is None
    assert store.list_exports(two + 1) == []


def test_verifications_keep_their_report(store: Store) -> None:
    report = {"target_width": 512, "within_one_step": True, "loss_gap": 0.01, "nested": [1, 2]}
    vid = store.record_verification(7, report, "abc")
    loose = store.record_verification(None, {"within_one_step": False})
    [row] = store.list_verifications(7)
    assert isinstance(row, VerificationRecord)
    assert (row.id, row.sweep_id, row.target_width, row.within_one_step, row.bundle_hash) == (
        vid, 7, 512, True, "abc")
    assert row.result == report
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.bundle_hash = "x"  # type: ignore[misc]
    assert json.loads(json.dumps(row.to_dict(), default=str))["result"] == report
    assert store.list_verifications(8) == []
    newest = store.list_verifications()[0]
    assert (newest.id, newest.sweep_id, newest.target_width, newest.bundle_hash) == (
        loose, None, None, None)
