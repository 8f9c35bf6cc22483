"""Credit scores kept for verify answers: credit_platforms and credit_sellers

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-05 09:40:00.000000

A verify answer carries the current holder's credit (issue 18 item 1) read by primary key
from these tables, which the risk worker rewrites off the hot path
(``registry.creditscores``): no aggregate per request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_platforms",
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("written_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", name=op.f("pk_credit_platforms")),
    )
    op.create_table(
        "credit_sellers",
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("seller_ref", sa.LargeBinary(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("written_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "seller_ref", name=op.f("pk_credit_sellers")),
    )


def downgrade() -> None:
    op.drop_table("credit_sellers")
    op.drop_table("credit_platforms")
