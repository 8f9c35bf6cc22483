"""API keys' revocation generation: the API caches key rows while it stays the same

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 08:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "api_key_generation",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key_generation")),
    )
    # Keys revoked before this table existed count too: the number only has to change.
    op.execute(
        sa.insert(table).from_select(
            ["id", "generation"],
            sa.select(
                sa.literal(1),
                sa.select(sa.func.count())
                .select_from(sa.table("api_keys", sa.column("revoked_at")))
                .where(sa.column("revoked_at").is_not(None))
                .scalar_subquery(),
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("api_key_generation")
