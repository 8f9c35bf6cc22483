"""PostgreSQL's bulk path for a batch's entries: rows in by binary COPY, lookups by one array.

NOTE: psycopg's ``executemany`` (pipeline mode) still sends a Bind and an Execute per row and
spends ~25 us of Python on each; 10^6 entries cost ~25 s of the API's core that way.
``COPY ... FROM STDIN (FORMAT BINARY)`` streams the same rows as one statement, packed by
psycopg's C layer. COPY changes nothing the table enforces: the partial UNIQUE index (one
accepted REGISTER per good), the foreign keys and every other index are checked row by row
exactly as for an INSERT, and a violation aborts the caller's transaction the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError


def copy_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Append ``rows`` (values of ``columns``, in order) to ``table`` in the caller's
    transaction by one binary COPY.

    A database error comes back as SQLAlchemy's, as an INSERT's would (``IntegrityError``
    for a unique violation), so callers and ``db.retrying`` see one error family.
    """
    sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    # Binary COPY infers no types: each column's is named, as the model declares it.
    types = [table.c[name].type.compile(dialect=conn.dialect).lower() for name in columns]
    dbapi = conn.dialect.dbapi
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(sql) as copy:
            copy.set_types(types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
    except dbapi.Error as exc:  # type: ignore[union-attr]
        raise DBAPIError.instance(sql, None, exc, dbapi.Error) from exc  # type: ignore[union-attr]
    finally:
        cursor.close()


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
