"""Creators' distribution policies: which platforms may sell their goods first-hand

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "distribution_policies",
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("platforms", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("creator", name=op.f("pk_distribution_policies")),
    )


def downgrade() -> None:
    op.drop_table("distribution_policies")
