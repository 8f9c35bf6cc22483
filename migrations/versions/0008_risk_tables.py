"""The risk worker's tables: goods' risk, standing signals, its state, and probe flags

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_goods",
        sa.Column("good_type", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("signals", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("good_type", "fingerprint", name=op.f("pk_risk_goods")),
    )
    op.create_table(
        "risk_signals",
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("platforms", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name=op.f("pk_risk_signals")),
    )
    with op.batch_alter_table("risk_signals", schema=None) as batch_op:
        batch_op.create_index("ix_risk_signals_code", ["code"], unique=False)
    op.create_table(
        "risk_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("built_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_state")),
    )
    op.create_table(
        "probe_flags",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("first_at", sa.Float(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.Column("failed_probes", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_probe_flags")),
    )


def downgrade() -> None:
    op.drop_table("probe_flags")
    op.drop_table("risk_state")
    with op.batch_alter_table("risk_signals", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_signals_code")
    op.drop_table("risk_signals")
    op.drop_table("risk_goods")
