"""An entry names its signed record and its product, on both databases (migration 0030).

SQLite keeps the two foreign keys; PostgreSQL checks them once a statement (a trigger reading
the statement's rows) because 10^6 rows of one batch paid two RI lookups each. These tests
hold the guarantee whichever mechanism gives it: an INSERT, a COPY (PostgreSQL's bulk path)
and an UPDATE naming a missing parent are refused, the rows of a refused statement are not
written, and a parent an entry names cannot be deleted, re-keyed or truncated.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from registry import pgbulk
from registry.log import entries_t
from registry.migrate import alembic_config, upgrade
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

COLUMNS = ("kind", "good_type", "fingerprint", "actor", "payload_hash", "record_id", "product_id")
MISSING = 987_654_321


@pytest.fixture
def parents(registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock) -> Any:
    """The record and product of one registered good: real parents to name."""
    registry.register(registration(make_creator(), clock(), product="card"))
    with engine.connect() as conn:
        return conn.execute(text("SELECT record_id, product_id FROM entries")).one()


def _row(n: int, record_id: int, product_id: int | None) -> tuple[Any, ...]:
    return (1, 2, n.to_bytes(32, "big"), bytes(20), bytes(32), record_id, product_id)


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    names = ", ".join(COLUMNS)
    markers = ", ".join(f":{c}" for c in COLUMNS)
    conn.execute(
        text(f"INSERT INTO entries ({names}) VALUES ({markers})"),
        [dict(zip(COLUMNS, row, strict=True)) for row in rows],
    )


def _entries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM entries")).scalar_one())


@pytest.fixture
def writers(engine: Engine) -> list[str]:
    """INSERT on both databases; COPY too on PostgreSQL (SQLite has no COPY)."""
    return ["insert", "copy"] if engine.dialect.name == "postgresql" else ["insert"]


def _write(conn: Connection, how: str, rows: list[tuple[Any, ...]]) -> None:
    if how == "insert":
        _insert(conn, rows)
    else:
        pgbulk.copy_rows(conn, entries_t, COLUMNS, rows)


def test_a_missing_record_or_product_is_refused(
    engine: Engine, parents: Any, writers: list[str]
) -> None:
    """One row among many naming a record or a product that does not exist refuses the
    whole statement, with an integrity error naming the foreign key; good rows go in."""
    record_id, product_id = parents
    before = _entries(engine)
    good = [_row(n, record_id, product_id) for n in range(1, 200)]
    for how in writers:
        for bad, constraint in (
            (_row(500, MISSING, product_id), "fk_entries_record_id_signed_records"),
            (_row(501, record_id, MISSING), "fk_entries_product_id_products"),
        ):
            with engine.connect() as conn:
                with pytest.raises(IntegrityError) as refused:
                    _write(conn, how, [*good[:100], bad, *good[100:]])
                conn.rollback()
            assert constraint in str(refused.value) or engine.dialect.name == "sqlite", how
            assert _entries(engine) == before, how
    with engine.begin() as conn:
        _write(conn, writers[-1], [*good, _row(600, record_id, None)])
    assert _entries(engine) == before + 200


def test_an_entry_cannot_be_pointed_at_a_missing_parent(engine: Engine, parents: Any) -> None:
    """An UPDATE of an entry's record or product is checked like an insert; other updates
    (the sequencer's) are not refused."""
    record_id, _ = parents
    for column in ("record_id", "product_id"):
        with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                conn.execute(text(f"UPDATE entries SET {column} = :m"), {"m": MISSING})
            conn.rollback()
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE entries SET timestamp = 5, record_id = :r, product_id = NULL"),
            {"r": record_id},
        )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT record_id, product_id FROM entries")).one() == (
            record_id,
            None,
        )


def test_a_named_parent_cannot_be_deleted_or_rekeyed(engine: Engine, parents: Any) -> None:
    """A signed record or a product an entry names cannot be deleted or get another id; on
    PostgreSQL not truncated either. Nothing is refused once no entry names it."""
    record_id, product_id = parents
    statements = [
        ("DELETE FROM products WHERE id = :p", {"p": product_id}),
        ("UPDATE products SET id = :m WHERE id = :p", {"p": product_id, "m": MISSING}),
        ("UPDATE signed_records SET id = :m WHERE id = :r", {"r": record_id, "m": MISSING}),
    ]
    if engine.dialect.name == "postgresql":
        statements.append(("TRUNCATE products CASCADE", {}))
    for sql, values in statements:
        with engine.connect() as conn:
            with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
                conn.execute(text(sql), values)
            conn.rollback()
    with engine.begin() as conn:
        conn.execute(text("UPDATE entries SET product_id = NULL"))
        conn.execute(text("DELETE FROM rebate_policies"))
        conn.execute(text("DELETE FROM products WHERE id = :p"), {"p": product_id})


def test_the_migration_goes_down_to_foreign_keys_and_up_again(engine: Engine, parents: Any) -> None:
    """Down: entries' two foreign keys are back (and hold); up: the triggers again."""

    def foreign_keys() -> set[str]:
        return {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("entries")}

    postgres = engine.dialect.name == "postgresql"
    assert foreign_keys() == (set() if postgres else {"signed_records", "products"})
    command.downgrade(alembic_config(engine), "0030-1")
    assert foreign_keys() == {"signed_records", "products"}
    upgrade(engine)
    assert foreign_keys() == (set() if postgres else {"signed_records", "products"})
    with engine.connect() as conn:
        with pytest.raises(IntegrityError):
            _insert(conn, [_row(9, MISSING, parents[1])])
        conn.rollback()
