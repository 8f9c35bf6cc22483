"""Creators' proven web domains and names, as last checked (issue 11, creator identity)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:00:00.000000

The evidence is in the log (CREATOR_IDENTITY entries, kind 6); this table is the newest check
of each creator, read by verify answers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "creator_identities",
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("domain", sa.String(length=260), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_creator_identities_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("creator", name=op.f("pk_creator_identities")),
    )


def downgrade() -> None:
    op.drop_table("creator_identities")
