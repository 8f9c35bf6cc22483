"""Verification events indexed by good off the hot path

The API appends a verification event behind every verify request; the index on the event's
(random) fingerprint cost five times the append at 10^6 goods, and the one on (platform, at)
served no query. Both go: the risk worker keeps ``verification_events_by_good`` instead,
and ``event_index_state`` says how far it reaches. Existing events are indexed here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_events_by_good",
        sa.Column("good_type", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "good_type", "fingerprint", "event_id", name=op.f("pk_verification_events_by_good")
        ),
    )
    op.create_table(
        "event_index_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("indexed_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_index_state")),
    )
    op.execute(
        "INSERT INTO verification_events_by_good (good_type, fingerprint, event_id)"
        " SELECT good_type, fingerprint, id FROM verification_events"
    )
    op.execute(
        "INSERT INTO event_index_state (id, indexed_through)"
        " SELECT 1, COALESCE(MAX(id), 0) FROM verification_events"
    )
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_events_platform_at")
        batch_op.drop_index("ix_verification_events_good_type_fingerprint")


def downgrade() -> None:
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verification_events_good_type_fingerprint",
            ["good_type", "fingerprint"],
            unique=False,
        )
        batch_op.create_index(
            "ix_verification_events_platform_at", ["platform", "at"], unique=False
        )
    op.drop_table("event_index_state")
    op.drop_table("verification_events_by_good")
