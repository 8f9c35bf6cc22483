"""One engine factory for SQLite (WAL) or PostgreSQL, and the transactions use cases own."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

from registry.errors import StorageBusy

T = TypeVar("T")

#: How long a SQLite writer waits for the lock before we answer "busy, retry" (THREATS 47).
SQLITE_BUSY_TIMEOUT_MS = 5_000


def create_db_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine with the pragmas and transaction rules tracemark relies on.

    ``hide_parameters``: a database error never carries the bound values (fingerprints,
    sealed keys, payloads) into a log line or a message.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if url.startswith("postgresql://"):
        # One driver for PostgreSQL: psycopg 3.
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN, so writers can BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NOTE: FULL, not NORMAL: an acknowledged registration must survive power loss
        # too, not only a crash of the process (THREATS 49, 50).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes SQLite's write lock up front. A DEFERRED transaction that reads and
        # then writes can fail with SQLITE_BUSY without waiting, and two such transactions
        # can both read "not consumed yet" (THREATS 46/47); IMMEDIATE serialises them.
        write = conn.get_execution_options().get("tracemark_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


#: KiB of pages the telemetry connection caches. A flush dirties about a page per good it
#: counts, and a write transaction whose dirty pages outgrow the cache spills them to the WAL
#: early, writing some twice.
TELEMETRY_CACHE_KIB = 32_768


def create_telemetry_engine(engine: Engine) -> Engine:
    """An engine on ``engine``'s database for writes a crash may lose: verification
    telemetry (appended by ``api/telemetry.py``, folded into counts by
    ``registry.telemetryfold``), which is documented to lag and may lose its last second.

    Its commits do not wait for the disk (SQLite ``synchronous=NORMAL``, which in WAL mode
    still never corrupts; PostgreSQL ``synchronous_commit=off``), and on SQLite it caches
    more pages. Its own engine, so these settings never reach a connection that writes
    acknowledged records (those stay ``synchronous=FULL``, THREATS 49, 50).
    """
    telemetry = create_db_engine(engine.url.render_as_string(hide_password=False))
    sqlite = telemetry.dialect.name == "sqlite"

    @event.listens_for(telemetry, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if sqlite:
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA cache_size=-{TELEMETRY_CACHE_KIB}")
            cursor.close()
        else:
            cursor.execute("SET synchronous_commit = off")
            cursor.close()
            dbapi_connection.commit()  # a SET in a transaction rolled back would be undone

    return telemetry


def _is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "database is locked" in message or "database is busy" in message


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-write transaction that commits on success and rolls back on any error.

    On SQLite it holds the write lock from its first statement; a lock that cannot be had
    within the busy timeout becomes ``StorageBusy`` (503 + retry), never a 500.
    """
    try:
        with engine.connect() as conn:
            conn.execution_options(tracemark_write=True)
            with conn.begin():
                yield conn
    except OperationalError as exc:
        if _is_busy(exc):
            raise StorageBusy("the database is busy with another writer; retry shortly") from exc
        raise


#: PostgreSQL's "try the whole transaction again" errors: serialization failure, deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
#: How often a write is attempted before its error is let through (THREATS 48).
WRITE_ATTEMPTS = 3


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def retrying(operation: Callable[[], T], *, attempts: int = WRITE_ATTEMPTS) -> T:
    """Run ``operation`` (which owns a whole write transaction) again, with jittered back-off,
    when PostgreSQL aborted it as a serialization failure or a deadlock victim.

    Only whole transactions are retried, so nothing is half applied; any other error, and
    the last attempt's, goes to the caller.
    """
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except DBAPIError as exc:
            if attempt == attempts or _sqlstate(exc) not in RETRYABLE_SQLSTATES:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 (jitter, not a secret)
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction: one consistent snapshot, no write lock.

    NOTE: on PostgreSQL the default READ COMMITTED takes a new snapshot for every statement,
    so a reader that counts rows and then reads them (a trace, a bundle's head and its
    entries) could see a commit land between the two. REPEATABLE READ READ ONLY keeps the
    first statement's snapshot for the whole transaction, as SQLite's read transaction does;
    a read-only transaction at that level never fails with a serialization error.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with conn.begin():
            yield conn
