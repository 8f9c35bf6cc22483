"""The buyer's delivery receipts: one signed receipt per delivered order, and its short id

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 06:50:00.000000

Issue 17 item 3. ``delivery_receipts``: the receipt the registry signs when an order is
delivered (``registry.deliveryreceipt``): the order (one receipt each), ``receipt_id`` (the
short, unguessable id of its public link ``/r/<id>``: 128 random bits, UNIQUE), the DELIVERY
entry's leaf index, the signed document as RFC 8785 JSON, its hash, the registry's EIP-712
signature and signer, and when it was issued. Nothing secret: never the code, the buyer's
reference or salt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("order_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("receipt_id", sa.String(length=32), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("receipt_hash", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.LargeBinary(), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_delivery_receipts_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_delivery_receipts")),
    )
    op.create_index(
        "uq_delivery_receipts_receipt_id", "delivery_receipts", ["receipt_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_delivery_receipts_receipt_id", table_name="delivery_receipts")
    op.drop_table("delivery_receipts")
