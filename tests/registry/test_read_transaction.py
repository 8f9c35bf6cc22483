"""``read_transaction`` is one snapshot on both databases: a reader that counts rows and then
reads them never sees a commit land in between (on PostgreSQL's default READ COMMITTED it
would: each statement takes its own snapshot)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from registry.db import create_db_engine, read_transaction, write_transaction


def _make_table(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE snap_probe (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO snap_probe (id) VALUES (1)"))


def test_a_commit_between_two_statements_is_not_seen(engine: Engine) -> None:
    _make_table(engine)
    with read_transaction(engine) as conn:
        before = conn.execute(text("SELECT COUNT(*) FROM snap_probe")).scalar_one()
        # Another connection commits a row while the reader is between its statements.
        with write_transaction(engine) as writer:
            writer.execute(text("INSERT INTO snap_probe (id) VALUES (2)"))
        rows = conn.execute(text("SELECT id FROM snap_probe")).scalars().all()
    assert before == 1
    assert rows == [1]
    with read_transaction(engine) as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM snap_probe")).scalar_one() == 2


@pytest.mark.postgres
def test_a_write_inside_a_read_transaction_is_refused_on_postgresql(postgres_url: str) -> None:
    """SQLite has no read-only transaction (its readers take no write lock): PostgreSQL only."""
    engine = create_db_engine(postgres_url)
    try:
        _make_table(engine)
        with pytest.raises(DBAPIError, match="read-only"), read_transaction(engine) as conn:
            conn.execute(text("INSERT INTO snap_probe (id) VALUES (3)"))
        with read_transaction(engine) as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM snap_probe")).scalar_one() == 1
    finally:
        engine.dispose()


def test_the_pooled_connection_goes_back_to_the_default_level(engine: Engine) -> None:
    """A write transaction after a read one must not inherit REPEATABLE READ or READ ONLY."""
    _make_table(engine)
    for _ in range(3):
        with read_transaction(engine) as conn:
            conn.execute(text("SELECT 1"))
        with write_transaction(engine) as conn:
            conn.execute(
                text("INSERT INTO snap_probe (id) VALUES (10 + (SELECT COUNT(*) FROM snap_probe))")
            )
            if engine.dialect.name == "postgresql":
                level = conn.execute(text("SHOW transaction_isolation")).scalar_one()
                assert level == "read committed"
