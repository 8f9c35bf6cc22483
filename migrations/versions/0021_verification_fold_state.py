"""Verification counts folded off the API's hot path (issue 16)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 02:05:00.000000

The API's telemetry flush now only appends ``verification_events``; the telemetry role folds
the events past ``verification_fold_state.folded_through`` into ``verification_counts`` and
moves the mark in the same transaction (``registry.telemetry.fold_verifications``). Every
existing event was already folded by the flush that wrote it: the mark starts at the newest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verification_fold_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("folded_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_fold_state")),
    )
    op.execute(
        "INSERT INTO verification_fold_state (id, folded_through)"
        " SELECT 1, COALESCE(MAX(id), 0) FROM verification_events"
    )


def downgrade() -> None:
    # NOTE: events past the mark stay out of the counts (the old flush folded as it wrote).
    op.drop_table("verification_fold_state")
