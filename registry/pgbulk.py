"""PostgreSQL's bulk path for a batch's entries: rows in by binary COPY, lookups by one array.

NOTE: psycopg's ``executemany`` (pipeline mode) still sends a Bind and an Execute per row and
spends ~25 us of Python on each; 10^6 entries cost ~25 s of the API's core that way.
``COPY ... FROM STDIN (FORMAT BINARY)`` streams the same rows as one statement, packed by
psycopg's C layer. COPY changes nothing the table enforces: the partial UNIQUE index (one
accepted REGISTER per good) and every other index are checked row by row exactly as for an
INSERT, the references (migration 0030: one trigger a statement, not two foreign keys) once
for the statement's rows, and a violation aborts the caller's transaction the same way.

NOTE: the server checks a COPY's rows against the indexes and references after it received
them, ~8 us a row of ``entries`` (10^6 rows: ~8 s; ~16 s with the row foreign keys before
migration 0030), while the client would wait. So
``copy_rows`` can run the caller's work that needs no connection (``during``) between the
end of the data and the wait for the server's answer: the two overlap on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from psycopg import Cursor, errors, generators, pq
from psycopg.adapt import PyFormat
from psycopg.copy import LibpqWriter
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


def copy_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    during: Callable[[], None] | None = None,
) -> None:
    """Append ``rows`` (values of ``columns``, in order) to ``table`` in the caller's
    transaction by one binary COPY.

    ``during``, if given, runs once every row is sent and before the server's answer is
    read: it must not use the connection (it is busy). Its error, if any, is raised after
    the answer is read, so the connection is left as after any failed statement.

    A database error comes back as SQLAlchemy's, as an INSERT's would (``IntegrityError``
    for a unique violation), so callers and ``db.retrying`` see one error family.
    """
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    # Binary COPY infers no types: each column's is named, as the model declares it.
    types = [table.c[name].type.compile(dialect=conn.dialect).lower() for name in columns]
    dbapi = conn.dialect.dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    # NOTE: binary COPY picks a dumper by the column's type, and for bytea that is the one
    # psycopg's DB-API module registered last (a Python subclass that also unwraps
    # ``Binary``): ~3 us of Python a row for our three bytea columns. The dumper of ``bytes``
    # itself (C in psycopg-binary) writes the same bytes; this cursor alone gets it back.
    cursor.adapters.register_dumper(bytes, cursor.adapters.get_dumper(bytes, PyFormat.BINARY))
    writer = None if during is None else _OverlappingWriter(cursor, during)
    try:
        with cursor.copy(sql, writer=writer) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    except dbapi.Error as exc:  # type: ignore[union-attr]
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc  # type: ignore[union-attr]
    finally:
        cursor.close()


class _OverlappingWriter(LibpqWriter):
    """psycopg's writer, except that at the end of the data it sends the end message, runs
    ``during`` while the server checks the rows, and only then reads the answer."""

    def __init__(self, cursor: Cursor[Any], during: Callable[[], None]) -> None:
        super().__init__(cursor)
        self._during = during

    def finish(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            super().finish(exc)  # the COPY is refused with the client's error, as psycopg does
            return
        self.cursor._results = [self.connection.wait(_end_then(self._pgconn, self._during))]


def _end_then(pgconn: Any, during: Callable[[], None]) -> Generator[Any, Any, Any]:
    """psycopg's ``copy_end`` with ``during`` run between the flush and the fetch."""
    while pgconn.put_copy_end(None) == 0:
        while not (yield generators.WAIT_W):
            continue
    while True:
        while not (yield generators.WAIT_W):
            continue
        if pgconn.flush() == 0:
            break
    failed: BaseException | None = None
    try:
        during()
    except BaseException as exc:  # re-raised once the connection is back to idle
        failed = exc
    # NOTE: the answer is always read, even after ``during`` failed: a COPY left unanswered
    # would leave the connection unusable for the caller's rollback.
    (result,) = yield from generators.fetch_many(pgconn)
    if failed is not None:
        raise failed
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise errors.error_from_result(result, encoding=pgconn._encoding)
    return result


def one_of_packed(column: str, width: int) -> str:
    """``column IN`` the keys of one packed parameter: ``width``-byte keys concatenated,
    cut apart by the server. Bind ``(b"".join(keys), len(keys) - 1)`` in that order.

    NOTE: an ``IN (%s, ..., %s)`` of 4,096 markers is parsed and planned afresh per chunk,
    and psycopg dumps a list as an array in Python (~6 s for 10^6 keys); one bytea is one
    buffer, and the cut is a cheap server loop feeding the same index probes.
    """
    return (
        f"{column} IN (SELECT substring(%s FROM {width} * i + 1 FOR {width}) "
        "FROM generate_series(0, %s) AS i)"
    )
