"""The one alembic history creates exactly the tables the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import anchoring.models  # noqa: F401
import api.models  # noqa: F401
import registry.models  # noqa: F401
from registry.migrate import upgrade


def test_migrations_match_models_and_are_idempotent(engine: Engine) -> None:
    upgrade(engine)  # a second run changes nothing
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
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
