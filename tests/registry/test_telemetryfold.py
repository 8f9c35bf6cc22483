"""Telemetry off the hot path (issue 16): the API appends verification events only, the
telemetry role folds them into the counts, on real SQLite and PostgreSQL. Each event is
counted exactly once: across windows, a fold that fails or is SIGKILLed mid-way, and two
folders (the lease lets one fold)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import Engine, func, select, text

from registry.db import create_db_engine, read_transaction, write_transaction
from registry.errors import LeaseLost
from registry.lease import Lease
from registry.migrate import upgrade
from registry.service import Registry
from registry.telemetry import (
    VerificationRecord,
    append_verifications,
    counts_t,
    events_t,
    fold_verifications,
    folded_through,
)
from registry.telemetryfold import TelemetryFolder

PLATFORMS = ("cardhub", "keyshop", "agent-7")


def records(count: int, *, goods: int = 50, at: int = 1_000) -> list[VerificationRecord]:
    """``count`` events over ``goods`` goods and three platforms (repeats fold together)."""
    fingerprints = [bytes([n % 256, n // 256]) * 16 for n in range(goods)]
    return [
        VerificationRecord(
            at + i % 97, PLATFORMS[i % 3], 2, fingerprints[i % goods], "code", "unknown"
        )
        for i in range(count)
    ]


def append(engine: Engine, batch: list[VerificationRecord]) -> None:
    """What the API's flush does (``api.telemetry.TelemetryWriter``): append, nothing more."""
    with write_transaction(engine) as conn:
        append_verifications(conn, batch)


def counts(engine: Engine) -> set[tuple[object, ...]]:
    c = counts_t.c
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(c.good_type, c.fingerprint, c.platform, c.count, c.first_at, c.last_at)
        ).all()
    return {tuple(row) for row in rows}


def expected(engine: Engine) -> set[tuple[object, ...]]:
    """The counts computed from scratch from every event: what folding must arrive at."""
    e = events_t.c
    with read_transaction(engine) as conn:
        rows = conn.execute(
            select(
                e.good_type, e.fingerprint, e.platform, func.count(), func.min(e.at), func.max(e.at)
            ).group_by(e.good_type, e.fingerprint, e.platform)
        ).all()
    return {tuple(row) for row in rows}


def mark(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return folded_through(conn)


def test_appends_are_counted_only_by_the_fold_and_each_once(registry: Registry) -> None:
    engine = registry.engine
    append(engine, records(1_000))
    assert counts(engine) == set() and mark(engine) == 0  # the API's side wrote no count
    folder = TelemetryFolder(engine, limit=64)  # many windows, each its own transaction
    assert folder.fold() == 1_000
    assert counts(engine) == expected(engine) and mark(engine) == 1_000
    assert folder.fold() == 0 and counts(engine) == expected(engine)  # nothing twice
    append(engine, records(10, at=5_000))
    assert folder.fold() == 10 and counts(engine) == expected(engine)
    stats = registry.verification_stats(2, records(1)[0].fingerprint)  # type: ignore[arg-type]
    assert stats.times == 1_010 // 50 + 1 and stats.platforms == 3 and stats.last_at == 5_000
    # Registry.record_verifications (tools, tests) appends and folds at once, behind the mark.
    append(engine, records(5, at=6_000))
    registry.record_verifications(records(3, at=7_000))
    assert counts(engine) == expected(engine) and mark(engine) == 1_018
    folder.close()


def test_a_fold_that_fails_midway_counts_nothing_and_the_next_counts_all(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault injected after the first upsert chunk (the real failure modes, a lost
    connection or a full disk, cannot be had on demand): counts and mark roll back together."""
    import registry.telemetry as telemetry

    engine = registry.engine
    append(engine, records(3_000, goods=1_500))
    real = telemetry._multi_row

    def broken(conn: object, template: str, rows: list[tuple[object, ...]]) -> None:
        real(conn, template, rows[:100])  # type: ignore[arg-type]
        raise ConnectionError("injected: the connection dropped mid-fold")

    monkeypatch.setattr(telemetry, "_multi_row", broken)
    with pytest.raises(ConnectionError):
        TelemetryFolder(engine).fold()
    assert counts(engine) == set() and mark(engine) == 0
    monkeypatch.setattr(telemetry, "_multi_row", real)
    assert TelemetryFolder(engine).fold() == 3_000
    assert counts(engine) == expected(engine)


_FOLD_FOREVER = """
import sys, time
from registry.db import create_db_engine
from registry.telemetryfold import TelemetryFolder
folder = TelemetryFolder(create_db_engine(sys.argv[1]), limit=int(sys.argv[2]))
while True:
    folder.fold()
    time.sleep(0.01)
"""


def test_a_fold_process_killed_midway_loses_and_doubles_nothing(registry: Registry) -> None:
    """A real process folding a backlog in small windows, SIGKILLed once it has committed
    some windows and not all; a new folder finishes: the counts are the events', exactly."""
    engine = registry.engine
    total = 40_000
    for start in range(0, total, 10_000):
        append(engine, records(10_000, goods=3_000, at=start))
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", _FOLD_FOREVER, url, "31"],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        deadline = time.monotonic() + 120
        while mark(engine) == 0 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        killed_at = mark(engine)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    reached = mark(engine)
    assert 0 < killed_at <= reached < total, "the kill must land mid-way through the backlog"
    TelemetryFolder(create_db_engine(url)).fold()
    assert mark(engine) == total
    assert counts(engine) == expected(engine)


def test_counts_follow_the_appends_within_one_fold_cycle(registry: Registry) -> None:
    """The lag bound, by structure rather than by the clock: whatever an append committed
    before a fold cycle began is in the counts when that cycle ends. A verify answer is so at
    most the API's flush interval (0.5 s) + the fold interval (0.5 s) + one fold's time
    behind; the HTTP test (tests/api/test_telemetry.py) polls it through the app."""
    engine = registry.engine
    folder = TelemetryFolder(engine, interval=0.05)
    folder.start()
    try:
        for round_ in range(5):
            append(engine, records(200, at=round_ * 1_000))
            # The cycle under way may have begun before the append: the next one has not.
            assert folder.wait_cycles(2, timeout=60)
            assert counts(engine) == expected(engine)
            assert mark(engine) == 200 * (round_ + 1)
    finally:
        folder.close()


postgres = pytest.mark.postgres


@pytest.fixture
def pg_engine(postgres_url: str) -> Engine:
    engine = create_db_engine(postgres_url)
    upgrade(engine)
    return engine


@postgres
def test_two_folders_one_folds_by_the_lease(pg_engine: Engine) -> None:
    """Two folders (two processes' worth: own leases, own engines) run while the API appends:
    only the holder folds; after a takeover the old holder's fold is refused and the new one
    counts on from the mark; every event is counted once."""
    leases = [Lease(pg_engine, "telemetry", seconds=30) for _ in range(2)]
    assert leases[0].acquire() and not leases[1].acquire()
    folders = [TelemetryFolder(pg_engine, interval=0.02, lease=lease) for lease in leases]
    for folder in folders:
        folder.start()
    try:
        for round_ in range(10):
            append(pg_engine, records(300, at=round_ * 100))
        assert folders[0].wait_cycles(2, timeout=60)
        assert counts(pg_engine) == expected(pg_engine) and mark(pg_engine) == 3_000
        assert folders[1].cycles == 0  # the standby never folded
        # The holder's lease expires (a pause); the other takes it over.
        with pg_engine.begin() as conn:
            conn.execute(text("UPDATE role_leases SET expires_at_ms = 0 WHERE role = 'telemetry'"))
        assert leases[1].acquire()
        append(pg_engine, records(500, at=9_000))
        with pytest.raises(LeaseLost):
            folders[0].fold()  # it still thinks it holds: the fence says otherwise
        assert folders[1].wait_cycles(2, timeout=60)
        assert counts(pg_engine) == expected(pg_engine) and mark(pg_engine) == 3_500
    finally:
        for folder in folders:
            folder.close()
        pg_engine.dispose()


@postgres
def test_folds_racing_without_a_lease_count_once(pg_engine: Engine) -> None:
    """Folds in several threads at once (``Registry.record_verifications`` beside the role,
    or a holder that lost its lease mid-fold): the mark's row lock serialises them."""
    append(pg_engine, records(6_000, goods=2_000))
    results: list[int] = []
    errors: list[BaseException] = []

    def fold() -> None:
        try:
            with write_transaction(pg_engine) as conn:
                results.append(fold_verifications(conn, limit=6_000))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and sorted(results) == [0, 0, 0, 6_000]
    assert counts(pg_engine) == expected(pg_engine)
    pg_engine.dispose()


@postgres
def test_a_fold_waits_for_an_append_still_open_and_skips_none(pg_engine: Engine) -> None:
    """An append that took its id first commits last: the fold waits for it (SHARE on the
    events) instead of moving the mark past its id and never counting it."""
    early = records(1, at=10)
    late = records(2, goods=2, at=20)[1:]
    with pg_engine.connect() as open_conn:
        open_conn.begin()
        append_verifications(open_conn, early)  # id 1 taken, not committed
        append(pg_engine, late)  # id 2 committed
        folder = TelemetryFolder(pg_engine)
        done: list[int] = []
        fold = threading.Thread(target=lambda: done.append(folder.fold()))
        fold.start()
        fold.join(1.0)
        assert fold.is_alive() and done == []  # waiting for the open append
        open_conn.commit()
    fold.join(30)
    assert done == [2] and mark(pg_engine) == 2
    assert counts(pg_engine) == expected(pg_engine)
    folder.close()
    pg_engine.dispose()
