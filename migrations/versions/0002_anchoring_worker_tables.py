"""anchoring worker tables: anchors, their signed attempts, the audit trail, the nonce

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 23:41:35.225009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "anchorer_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=True),
        sa.Column("heartbeat", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchorer_state")),
    )
    op.create_table(
        "anchors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("previous_size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.LargeBinary(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchors")),
    )
    with op.batch_alter_table("anchors", schema=None) as batch_op:
        batch_op.create_index("ix_anchors_state", ["state"], unique=False)

    op.create_table(
        "anchor_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("anchor_id", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.LargeBinary(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_gas", sa.BigInteger(), nullable=False),
        sa.Column("max_priority_fee_per_gas", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("sent_block", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["anchor_id"], ["anchors.id"], name=op.f("fk_anchor_attempts_anchor_id_anchors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_attempts")),
    )
    with op.batch_alter_table("anchor_attempts", schema=None) as batch_op:
        batch_op.create_index("uq_anchor_attempts_anchor_tx", ["anchor_id", "tx_hash"], unique=True)

    op.create_table(
        "anchor_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("anchor_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["anchor_id"], ["anchors.id"], name=op.f("fk_anchor_events_anchor_id_anchors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anchor_events")),
    )


def downgrade() -> None:
    op.drop_table("anchor_events")
    with op.batch_alter_table("anchor_attempts", schema=None) as batch_op:
        batch_op.drop_index("uq_anchor_attempts_anchor_tx")

    op.drop_table("anchor_attempts")
    with op.batch_alter_table("anchors", schema=None) as batch_op:
        batch_op.drop_index("ix_anchors_state")

    op.drop_table("anchors")
    op.drop_table("anchorer_state")
