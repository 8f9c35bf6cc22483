"""Verification telemetry: who verified which good, how often, and since when.

These rows are telemetry, not acknowledged writes: the API buffers verification events and
appends them here in batches behind the requests (``append_verifications``: one multi-row
INSERT, no index), and the telemetry role folds the appended events into per-(good, platform)
counts (``fold_verifications``, ``registry.telemetryfold``), so a verify answer's counts lag
by about a second. NOTE: the fold is not in the API process because each upsert dirties a
page of its own at production sizes (~4 KiB of WAL per verification, issue 16).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, func, select, text

from registry.models import (
    EventIndexState,
    VerificationCount,
    VerificationEvent,
    VerificationEventByGood,
    VerificationFoldState,
)

counts_t: Table = VerificationCount.__table__  # type: ignore[attr-defined]
events_t: Table = VerificationEvent.__table__  # type: ignore[attr-defined]
by_good_t: Table = VerificationEventByGood.__table__  # type: ignore[attr-defined]
index_state_t: Table = EventIndexState.__table__  # type: ignore[attr-defined]
fold_state_t: Table = VerificationFoldState.__table__  # type: ignore[attr-defined]

#: Events the risk worker indexes per statement.
INDEX_BATCH = 50_000
#: Events the telemetry role folds per transaction (a backlog takes several, back to back):
#: bounds one fold's time, and so how long the API's appends wait behind its lock.
FOLD_BATCH = 20_000

_INSERT_EVENTS = (
    "INSERT INTO verification_events (at, platform, good_type, fingerprint, via, verdict)"
    " VALUES {rows}"
)
#: The same statement on SQLite (>= 3.24) and PostgreSQL, but for MIN/MAX of two values.
_UPSERT = (
    "INSERT INTO verification_counts (good_type, fingerprint, platform, count, first_at, last_at)"
    " VALUES {rows}"
    " ON CONFLICT (good_type, fingerprint, platform) DO UPDATE SET"
    " count = verification_counts.count + excluded.count,"
    " first_at = {min}(verification_counts.first_at, excluded.first_at),"
    " last_at = {max}(verification_counts.last_at, excluded.last_at)"
)
_FUNCTIONS = {"sqlite": ("MIN", "MAX"), "postgresql": ("LEAST", "GREATEST")}
#: Rows per statement, largest first: a batch is cut into chunks of these sizes only, so the
#: same few statement texts come back every flush and the driver's statement cache (and
#: PostgreSQL's prepared statements) hold them. NOTE: compiling a fresh 2,000-row statement
#: cost 1-2 us a row, ten times what inserting the row costs. 6 parameters x 1024 rows stay
#: under SQLite's 32,766 and PostgreSQL's 65,535.
CHUNK_SIZES = (1024, 256, 64, 16, 4, 1)


def _chunks(count: int) -> list[tuple[int, int]]:
    """(start, size) of each chunk of ``count`` rows, sizes from ``CHUNK_SIZES``."""
    out = []
    start = 0
    for size in CHUNK_SIZES:
        while count - start >= size:
            out.append((start, size))
            start += size
    return out


def _multi_row(conn: Connection, template: str, rows: list[tuple[object, ...]]) -> None:
    """Run ``template`` with many rows in its one VALUES list, in chunks.

    NOTE: one statement per chunk, not ``executemany``: the driver releases and retakes the
    GIL around every row it steps, and next to the API's event loop each retake waits for
    the loop to let go (the "convoy"); a flush of a thousand rows then stalled the verify
    requests for hundreds of milliseconds. One statement steps once.
    """
    dialect = conn.dialect.name
    width = len(rows[0])
    for start, size in _chunks(len(rows)):
        sql = _statement(template, dialect, width, size)
        params = tuple(value for row in rows[start : start + size] for value in row)
        if dialect == "postgresql":
            # NOTE: PostgreSQL's own $n placeholders through psycopg's raw cursor, in the
            # connection's transaction: psycopg caches its parse of a ``%s`` statement only
            # up to 50 parameters, so every chunk of 16 rows or more was parsed again at each
            # flush (8% of an API replica's CPU in a profile of the cluster bench, issue 16).
            from psycopg import RawCursor  # PostgreSQL's driver, loaded only there

            raw = cast(Any, conn.connection.dbapi_connection)
            with RawCursor(raw) as cursor:
                cursor.execute(sql, params)
        else:
            conn.exec_driver_sql(sql, params)


@lru_cache(maxsize=64)
def _statement(template: str, dialect: str, width: int, size: int) -> str:
    """``template`` for ``size`` rows of ``width`` values (PostgreSQL: ``$1``, ``$2``...)."""
    low, high = _FUNCTIONS[dialect]
    if dialect == "postgresql":
        numbers = iter(range(1, width * size + 1))
        rows = ", ".join(
            "(" + ", ".join(f"${next(numbers)}" for _ in range(width)) + ")" for _ in range(size)
        )
    else:
        rows = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * size)
    return template.format(rows=rows, min=low, max=high)


class VerificationRecord(NamedTuple):
    """One answered verification, as the API buffers it.

    A named tuple: one is made per verify request, and its fields are already the events
    table's row, in its order.
    """

    at: int
    platform: str
    good_type: int
    fingerprint: bytes
    via: str
    verdict: str


@dataclass(frozen=True, slots=True)
class VerificationStats:
    """ "Verified N times, by M platforms, first at T" (None while never verified)."""

    times: int
    platforms: int
    first_at: int | None
    last_at: int | None


def append_verifications(conn: Connection, records: Sequence[VerificationRecord]) -> None:
    """Append the events (the API's flush: the only telemetry write on its side).

    Raw multi-row statements (``_multi_row``): this runs in the API process, next to the
    verify requests, every half second.
    """
    if records:
        _multi_row(conn, _INSERT_EVENTS, list(records))


def folded_through(conn: Connection) -> int:
    """The last event id ``verification_counts`` covers (0: none)."""
    found = conn.execute(
        select(fold_state_t.c.folded_through).where(fold_state_t.c.id == 1)
    ).scalar()
    return int(found or 0)


def fold_verifications(conn: Connection, *, limit: int = FOLD_BATCH) -> int:
    """Fold the next events past the mark into the per-(good, platform) counts, and move the
    mark, in the caller's write transaction (so a fold that fails counts nothing, and one that
    commits is never counted again). Returns how many events were folded; 0 when none is left.
    """
    if conn.dialect.name == "postgresql":
        # 1. Appends that took ids may not have committed yet, and a mark past their ids
        #    would skip them for good: SHARE waits for every open append and holds new ones
        #    (the API's flush thread, never a request) until this transaction ends (as
        #    ``index_verifications`` does). Taken first: a fold that also appended
        #    (``record_verifications``) then never waits on the mark's row while holding
        #    back another fold's SHARE (a deadlock).
        conn.execute(text("LOCK TABLE verification_events IN SHARE MODE"))
        # 2. One fold at a time: the mark's row is locked (FOR UPDATE waits for another fold
        #    to end, and the mark is read after). The lease already keeps the role to one
        #    process; this covers ``record_verifications`` beside it, and a holder that lost
        #    its lease mid-fold. On SQLite the write transaction does both.
        conn.execute(
            text(
                "INSERT INTO verification_fold_state (id, folded_through) VALUES (1, 0)"
                " ON CONFLICT (id) DO NOTHING"
            )
        )
        conn.execute(
            text("SELECT folded_through FROM verification_fold_state WHERE id = 1 FOR UPDATE")
        )
    mark = folded_through(conn)
    e = events_t.c
    newest = conn.execute(select(func.max(e.id))).scalar()
    if newest is None or int(newest) <= mark:
        return 0
    # 3. A window of ids, not of rows: ids may skip (a rolled-back append, a sequence's gaps).
    last = min(int(newest), mark + limit)
    window = (e.id > mark, e.id <= last)
    rows = conn.execute(
        select(e.good_type, e.fingerprint, e.platform, func.count(), func.min(e.at), func.max(e.at))
        .where(*window)
        .group_by(e.good_type, e.fingerprint, e.platform)
    ).all()
    # 4. Grouped first (PostgreSQL refuses an upsert that touches one row twice), in key
    #    order (neighbouring keys share pages).
    folded = sorted(
        (int(g), bytes(f), str(p), int(n), int(lo), int(hi)) for g, f, p, n, lo, hi in rows
    )
    if folded:
        _multi_row(conn, _UPSERT, list(folded))
    # 5. The mark moves in the same transaction as the counts.
    updated = conn.execute(
        fold_state_t.update().where(fold_state_t.c.id == 1).values(folded_through=last)
    ).rowcount
    if not updated:
        conn.execute(fold_state_t.insert().values(id=1, folded_through=last))
    return sum(row[3] for row in folded)


def record_verifications(conn: Connection, records: Sequence[VerificationRecord]) -> None:
    """Append the events and fold everything not folded yet, at once (tools, benchmarks and
    tests that need the counts now; the API appends only and the telemetry role folds)."""
    append_verifications(conn, records)
    fold_all(conn)


def fold_all(conn: Connection) -> int:
    """Fold until the mark reaches the newest event (windows of ``FOLD_BATCH`` ids, in the
    caller's transaction); returns how many events were folded."""
    total = 0
    while True:
        total += fold_verifications(conn)
        newest = conn.execute(select(func.max(events_t.c.id))).scalar()
        if newest is None or folded_through(conn) >= int(newest):
            return total


def indexed_through(conn: Connection) -> int:
    """The last event id ``verification_events_by_good`` covers (0: none)."""
    found = conn.execute(
        select(index_state_t.c.indexed_through).where(index_state_t.c.id == 1)
    ).scalar()
    return int(found or 0)


def index_verifications(conn: Connection, *, limit: int = INDEX_BATCH) -> int:
    """Index the next events by good (the risk worker's chore; in the caller's write
    transaction). Returns how many were indexed; 0 when there is nothing left."""
    if conn.dialect.name == "postgresql":
        # Writers that took ids may not have committed yet, and a high-water mark past their
        # ids would skip them for good. SHARE waits for every open insert and holds new ones
        # (the API's telemetry flushes, which only wait) until this transaction ends. On
        # SQLite the write transaction already excludes every other writer.
        conn.execute(text("LOCK TABLE verification_events IN SHARE MODE"))
    mark = indexed_through(conn)
    e = events_t.c
    newest = conn.execute(select(func.max(e.id))).scalar()
    if newest is None or int(newest) <= mark:
        return 0
    # Ids may skip (a rolled-back flush, a sequence's gaps): a window of ids, not of rows.
    last = min(int(newest), mark + limit)
    window = (e.id > mark, e.id <= last)
    # (Counted apart: an INSERT ... SELECT's rowcount is not reliable across drivers.)
    indexed = conn.execute(select(func.count()).where(*window)).scalar_one()
    chosen = select(e.good_type, e.fingerprint, e.id).where(*window)
    conn.execute(by_good_t.insert().from_select(["good_type", "fingerprint", "event_id"], chosen))
    updated = conn.execute(
        index_state_t.update().where(index_state_t.c.id == 1).values(indexed_through=last)
    ).rowcount
    if not updated:
        conn.execute(index_state_t.insert().values(id=1, indexed_through=last))
    return int(indexed)


def event_ids_of(conn: Connection, good_type: int, fingerprint: bytes) -> Any:
    """A subquery of the ids of one good's verification events: those indexed by good, and
    the tail past the index found by a scan of the newest ids only."""
    g, e = by_good_t.c, events_t.c
    indexed = select(g.event_id).where(g.good_type == good_type, g.fingerprint == fingerprint)
    tail = select(e.id).where(
        e.id
        > select(func.coalesce(func.max(index_state_t.c.indexed_through), 0)).scalar_subquery(),
        e.good_type == good_type,
        e.fingerprint == fingerprint,
    )
    return indexed.union_all(tail)


def verification_stats(conn: Connection, good_type: int, fingerprint: bytes) -> VerificationStats:
    c = counts_t.c
    row = conn.execute(
        select(func.sum(c.count), func.count(), func.min(c.first_at), func.max(c.last_at)).where(
            c.good_type == good_type, c.fingerprint == fingerprint
        )
    ).one()
    return VerificationStats(
        times=int(row[0] or 0),
        platforms=int(row[1] or 0),
        first_at=None if row[2] is None else int(row[2]),
        last_at=None if row[3] is None else int(row[3]),
    )


__all__ = [
    "FOLD_BATCH",
    "INDEX_BATCH",
    "VerificationRecord",
    "VerificationStats",
    "append_verifications",
    "event_ids_of",
    "fold_all",
    "fold_verifications",
    "folded_through",
    "index_verifications",
    "indexed_through",
    "record_verifications",
    "verification_stats",
]
