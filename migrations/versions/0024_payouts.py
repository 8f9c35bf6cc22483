"""Payouts: what a platform paid against the royalty and rebate lines it owes

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 06:45:00.000000

Issue 17 item 7. ``payouts``: one payment a platform reports (to whom, amount, currency, its
own payment reference, when paid), idempotent per (platform, Idempotency-Key).
``payout_lines``: the ``royalty_lines`` a payout paid, keyed by the line, so a line is paid at
most once, in full, even by two payouts racing for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payouts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.LargeBinary(), nullable=True),
        sa.Column("payee", sa.String(length=160), nullable=True),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("paid_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
    )
    op.create_index(
        "uq_payouts_platform_idempotency_key",
        "payouts",
        ["platform", "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_payouts_platform_id", "payouts", ["platform", "id"])

    op.create_table(
        "payout_lines",
        sa.Column("line_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payout_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["royalty_lines.id"], name=op.f("fk_payout_lines_line_id_royalty_lines")
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_payout_lines_payout_id_payouts")
        ),
        sa.PrimaryKeyConstraint("line_id", name=op.f("pk_payout_lines")),
    )
    op.create_index("ix_payout_lines_payout_id", "payout_lines", ["payout_id"])


def downgrade() -> None:
    op.drop_table("payout_lines")
    op.drop_table("payouts")
