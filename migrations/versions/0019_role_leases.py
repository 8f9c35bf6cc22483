"""The singleton roles' leases (issue 16)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 01:10:00.000000

``role_leases``: one row per singleton role (sequencer, anchoring, witnessing, risk,
webhooks): who holds it, its fencing token (one more at each taking), and until when, in
the database's clock (``registry.lease``). Only PostgreSQL deployments use it; the embedded
SQLite default holds every lease trivially.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "role_leases",
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("renewed_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_role_leases")),
    )


def downgrade() -> None:
    op.drop_table("role_leases")
