"""The singleton roles' lease (``registry.lease``) on real PostgreSQL: one holder, takeover
after expiry, a fencing token the holder's transactions check, and a takeover that waits for
a fenced transaction to end; on SQLite, trivially held."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from registry.db import create_db_engine, write_transaction
from registry.errors import LeaseLost
from registry.lease import Lease
from registry.migrate import upgrade


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _expire(engine: Engine, role: str) -> None:
    """The row expires now, as after a holder's silence of the lease's length (a fault
    injected: waiting for it would only make the test slower)."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE role_leases SET expires_at_ms = 0 WHERE role = :r"), {"r": role})


postgres = pytest.mark.postgres


@postgres
def test_one_holder_and_takeover_only_after_expiry(pg_engine: Engine) -> None:
    first, second = Lease(pg_engine, "sequencer"), Lease(pg_engine, "sequencer")
    assert first.acquire() and first.held and first.token == 1
    assert not second.acquire() and not second.held
    assert first.renew() and first.acquire()  # renewing keeps the token
    assert first.token == 1
    # Other roles are other rows.
    assert Lease(pg_engine, "anchoring").acquire()
    _expire(pg_engine, "sequencer")
    assert second.acquire() and second.token == 2
    assert not first.renew() and not first.held  # its heartbeat finds the token changed
    with pytest.raises(LeaseLost), write_transaction(pg_engine) as conn:
        first.fence(conn)
    second.release()
    assert first.acquire() and first.token == 3  # a clean release frees it at once


@postgres
def test_the_fence_refuses_a_holder_that_lost_the_lease(pg_engine: Engine) -> None:
    """The holder still believes it holds (its local clock says so: paused between its own
    check and its transaction); the database's token says another took over."""
    old, new = Lease(pg_engine, "sequencer", seconds=60), Lease(pg_engine, "sequencer")
    assert old.acquire()
    _expire(pg_engine, "sequencer")
    assert new.acquire()
    assert old.held  # locally: not yet expired
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE TABLE work (n int)"))
    with (
        pytest.raises(LeaseLost, match="took the lease over"),
        write_transaction(pg_engine) as conn,
    ):
        old.fence(conn)
        conn.execute(text("INSERT INTO work VALUES (1)"))
    with write_transaction(pg_engine) as conn:
        new.fence(conn)
        conn.execute(text("INSERT INTO work VALUES (2)"))
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM work")).scalars().all() == [2]
    assert not old.held


@postgres
def test_a_takeover_waits_for_the_fenced_transaction_and_the_heartbeat_does_not(
    pg_engine: Engine,
) -> None:
    holder, standby = Lease(pg_engine, "anchoring", seconds=60), Lease(pg_engine, "anchoring")
    assert holder.acquire()
    took: list[bool] = []
    with write_transaction(pg_engine) as conn:
        holder.fence(conn)  # the row's share lock, until this transaction ends
        assert holder.renew()  # the heartbeat is not blocked by its own work
        _expire(pg_engine, "anchoring")
        waiting = threading.Thread(target=lambda: took.append(standby.acquire()))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and not took  # blocked behind the fenced transaction
        conn.execute(text("SELECT 1"))  # the work, done under the lease
    waiting.join(10)
    assert took == [True] and standby.token == 2
    with pytest.raises(LeaseLost), write_transaction(pg_engine) as conn:
        holder.fence(conn)


@postgres
def test_a_long_fenced_transaction_keeps_the_role_while_a_standby_polls(
    pg_engine: Engine,
) -> None:
    """A batch longer than the lease, a standby trying every third of it: the holder's
    heartbeat goes on beside its own share lock, so the role stays. (The heartbeat's UPDATE
    does not conflict with the holder's KEY SHARE, nor does it queue behind a standby's
    FOR UPDATE waiting on it: without the standby's first plain read this still passes.)"""
    stop = threading.Event()
    holder, standby = Lease(pg_engine, "sequencer", seconds=1.0), Lease(pg_engine, "sequencer")
    assert holder.acquire()
    keepers = [holder.keep(stop)]
    try:
        with write_transaction(pg_engine) as conn:
            holder.fence(conn)
            keepers.append(standby.keep(stop))
            for _ in range(5):  # 2.5 s of work, statements 0.5 s apart
                time.sleep(0.5)
                conn.execute(text("SELECT 1"))
        assert holder.held and holder.token == 1 and not standby.held
        with write_transaction(pg_engine) as conn:
            holder.fence(conn)
    finally:
        stop.set()
        for keeper in keepers:
            keeper.join(10)


@postgres
def test_a_holder_frozen_inside_its_transaction_loses_the_role_within_the_bound(
    pg_engine: Engine,
) -> None:
    """A holder stops between two statements of a fenced transaction (as under SIGSTOP): its
    share lock would block every takeover; PostgreSQL ends its session after the lease's
    length, the standby takes over, and the frozen transaction commits nothing."""
    holder, standby = Lease(pg_engine, "webhooks", seconds=1.0), Lease(pg_engine, "webhooks")
    assert holder.acquire()
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE TABLE work (n int)"))
    frozen = pg_engine.connect()
    try:
        frozen.begin()
        holder.fence(frozen)
        frozen.execute(text("INSERT INTO work VALUES (1)"))
        _expire(pg_engine, "webhooks")
        started = time.monotonic()
        assert standby.acquire()  # waits for the session to be ended
        assert time.monotonic() - started < 10
        with pytest.raises(DBAPIError):
            frozen.execute(text("INSERT INTO work VALUES (2)"))
    finally:
        frozen.invalidate()
        frozen.close()
    with pg_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM work")).scalar_one() == 0


@postgres
def test_the_heartbeat_thread_keeps_it_and_gives_it_up(pg_engine: Engine) -> None:
    stop = threading.Event()
    lease = Lease(pg_engine, "risk", seconds=0.6)
    keeper = lease.keep(stop)
    other = Lease(pg_engine, "risk", seconds=0.6)
    try:
        deadline = time.monotonic() + 10
        while not lease.held and time.monotonic() < deadline:
            time.sleep(0.02)
        assert lease.held
        time.sleep(1.5)  # more than twice the lease: renewed meanwhile
        assert lease.held and not other.acquire()
    finally:
        stop.set()
        keeper.join(10)
    assert not lease.held
    assert other.acquire()  # released on stop: no wait for the expiry


def test_on_sqlite_it_is_held_at_once(tmp_path: Path) -> None:
    # The embedded default: one process, so the lease is held at once and fences nothing.
    engine = create_db_engine(f"sqlite:///{(tmp_path / 'registry.db').as_posix()}")
    upgrade(engine)
    try:
        lease = Lease(engine, "sequencer")
        assert lease.held and lease.acquire() and lease.renew()
        with write_transaction(engine) as conn:
            lease.fence(conn)  # nothing to check: one process
    finally:
        engine.dispose()


def test_a_role_that_is_not_a_singleton_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="not a singleton role"):
        Lease(engine, "api")
