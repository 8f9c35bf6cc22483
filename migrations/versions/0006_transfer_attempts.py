"""Refused transfer attempts (double sale, revoked, consumed), for fraud signals

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transfer_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("seller_platform", sa.String(length=64), nullable=True),
        sa.Column("seller_ref", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_platform", sa.String(length=64), nullable=False),
        sa.Column("buyer_ref", sa.LargeBinary(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("earlier_transfer_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_attempts")),
    )
    with op.batch_alter_table("transfer_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_transfer_attempts_at", ["at"], unique=False)
        batch_op.create_index(
            "ix_transfer_attempts_good_type_fingerprint", ["good_type", "fingerprint"], unique=False
        )
        batch_op.create_index("ix_transfer_attempts_platform_id", ["platform", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transfer_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_transfer_attempts_platform_id")
        batch_op.drop_index("ix_transfer_attempts_good_type_fingerprint")
        batch_op.drop_index("ix_transfer_attempts_at")

    op.drop_table("transfer_attempts")
