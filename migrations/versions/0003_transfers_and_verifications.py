"""transfers, holdings, royalty lines, verification telemetry

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 01:01:19.795214
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_entries_creator_goods",
            ["actor", "id"],
            unique=False,
            sqlite_where=sa.text("kind = 1"),
            postgresql_where=sa.text("kind = 1"),
        )

    op.create_table(
        "verification_counts",
        sa.Column("good_type", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_at", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "good_type", "fingerprint", "platform", name=op.f("pk_verification_counts")
        ),
    )
    op.create_table(
        "verification_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_events")),
    )
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_verification_events_good_type_fingerprint",
            ["good_type", "fingerprint"],
            unique=False,
        )
        batch_op.create_index(
            "ix_verification_events_platform_at", ["platform", "at"], unique=False
        )

    op.create_table(
        "transfers",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("seller_platform", sa.String(length=64), nullable=True),
        sa.Column("seller_ref", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_platform", sa.String(length=64), nullable=False),
        sa.Column("buyer_ref", sa.LargeBinary(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=True),
        sa.Column("currency", sa.String(length=16), nullable=True),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("royalty_total", sa.String(length=80), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("receipt_signature", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_transfers_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
    )
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transfers_creator_created_at", ["creator", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_transfers_good_type_fingerprint", ["good_type", "fingerprint"], unique=False
        )
        batch_op.create_index("ix_transfers_platform_id", ["platform", "id"], unique=False)
        batch_op.create_index("uq_transfers_entry_id", ["entry_id"], unique=True)
        batch_op.create_index(
            "uq_transfers_platform_idempotency_key", ["platform", "idempotency_key"], unique=True
        )

    op.create_table(
        "holdings",
        sa.Column("good_type", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("holder_platform", sa.String(length=64), nullable=False),
        sa.Column("holder_ref", sa.LargeBinary(), nullable=False),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("last_transfer_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["last_transfer_id"],
            ["transfers.id"],
            name=op.f("fk_holdings_last_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("good_type", "fingerprint", name=op.f("pk_holdings")),
    )
    op.create_table(
        "royalty_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("creator", sa.LargeBinary(), nullable=False),
        sa.Column("recipient", sa.LargeBinary(), nullable=False),
        sa.Column("bps", sa.Integer(), nullable=False),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transfer_id"], ["transfers.id"], name=op.f("fk_royalty_lines_transfer_id_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_royalty_lines")),
    )
    with op.batch_alter_table("royalty_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_royalty_lines_creator_created_at", ["creator", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_creator_goods")

    with op.batch_alter_table("royalty_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_royalty_lines_creator_created_at")

    op.drop_table("royalty_lines")
    op.drop_table("holdings")
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("uq_transfers_platform_idempotency_key")
        batch_op.drop_index("uq_transfers_entry_id")
        batch_op.drop_index("ix_transfers_platform_id")
        batch_op.drop_index("ix_transfers_good_type_fingerprint")
        batch_op.drop_index("ix_transfers_creator_created_at")

    op.drop_table("transfers")
    with op.batch_alter_table("verification_events", schema=None) as batch_op:
        batch_op.drop_index("ix_verification_events_platform_at")
        batch_op.drop_index("ix_verification_events_good_type_fingerprint")

    op.drop_table("verification_events")
    op.drop_table("verification_counts")
