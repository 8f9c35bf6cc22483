"""The one alembic history creates exactly the tables the models declare, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import anchoring.models  # noqa: F401
import api.models  # noqa: F401
import registry.models  # noqa: F401
from registry.db import create_db_engine
from registry.migrate import alembic_config, upgrade

#: Migration 0030: on PostgreSQL the foreign keys of ``entries`` (record_id, product_id) are
#: one statement trigger (tests/registry/test_entries_references.py); SQLite keeps them.
TRIGGER_CHECKED = "entries"


def test_migrations_match_models_and_are_idempotent(engine: Engine) -> None:
    def _declared_here(item: Any, _: str | None, type_: str, *__: Any) -> bool:
        postgres = engine.dialect.name == "postgresql"
        foreign_key = type_ == "foreign_key_constraint"
        return not (postgres and foreign_key and item.table.name == TRIGGER_CHECKED)

    upgrade(engine)  # a second run changes nothing
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _declared_here}
        )
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []
    names = set(inspect(engine).get_table_names())
    assert {"entries", "signed_records", "tree_tiles", "tree_heads", "log_state"} <= names
    assert {"platforms", "api_keys", "api_key_generation", "siwe_nonces"} <= names
    assert {"idempotency_keys", "jobs"} <= names
    assert {"webhook_subscriptions", "webhook_deliveries", "webhook_attempts"} <= names
    assert "transfer_attempts" in names
    assert {"risk_goods", "risk_signals", "risk_state", "probe_flags"} <= names
    indexes = {index["name"] for index in inspect(engine).get_indexes("anchors")}
    assert "ix_anchors_tree_size" in indexes
    if engine.dialect.name == "sqlite":
        # Clustered on its key (migration 0013): a telemetry upsert dirties one page, not two.
        with engine.connect() as conn:
            sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'verification_counts'"
            ).scalar_one()
        assert sql.rstrip().upper().endswith("WITHOUT ROWID")


def test_the_counts_rebuild_keeps_every_row(tmp_path: Path) -> None:
    """Migration 0013 rebuilds ``verification_counts`` on SQLite: down and up again, every
    row is still there."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    rows = [(2, bytes([i]) * 32, f"p-{i % 3}", i + 1, 100 + i, 200 + i) for i in range(50)]
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO verification_counts VALUES (?, ?, ?, ?, ?, ?)", rows)
    command.downgrade(alembic_config(engine), "0012")
    with engine.connect() as conn:
        assert (
            "WITHOUT ROWID"
            not in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'verification_counts'"
            ).scalar_one()
        )
    upgrade(engine)
    with engine.connect() as conn:
        kept = conn.exec_driver_sql(
            "SELECT good_type, fingerprint, platform, count, first_at, last_at"
            " FROM verification_counts ORDER BY first_at"
        ).all()
    assert [tuple(row) for row in kept] == rows
    engine.dispose()
