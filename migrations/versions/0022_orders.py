"""Guaranteed-trade orders, their reservations and signed state changes (issue 17)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 03:20:00.000000

``orders``: a platform's order for a good (the buyer as a keyed hash and a salted commitment,
never in clear). ``order_reservations``: one row per reserved good, keyed by the good, so two
orders racing for one good cannot both reserve it. ``order_changes``: every state change,
hash-chained and signed by the registry (``registry.orders``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("seller_platform", sa.String(length=64), nullable=True),
        sa.Column("seller_ref", sa.LargeBinary(), nullable=True),
        sa.Column("buyer_platform", sa.String(length=64), nullable=False),
        sa.Column("buyer_ref", sa.LargeBinary(), nullable=False),
        sa.Column("buyer_commitment", sa.LargeBinary(), nullable=False),
        sa.Column("buyer_salt", sa.LargeBinary(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("confirm_window", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("reserved_until", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("confirm_deadline", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(
        "uq_orders_platform_idempotency_key",
        "orders",
        ["platform", "idempotency_key"],
        unique=True,
    )
    op.create_index("ix_orders_platform_id", "orders", ["platform", "id"])
    op.create_index("ix_orders_good_type_fingerprint", "orders", ["good_type", "fingerprint"])

    op.create_table(
        "order_reservations",
        sa.Column("good_type", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_reservations_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("good_type", "fingerprint", name=op.f("pk_order_reservations")),
    )
    op.create_index(
        "uq_order_reservations_order_id", "order_reservations", ["order_id"], unique=True
    )
    op.create_index("ix_order_reservations_expires_at", "order_reservations", ["expires_at"])

    op.create_table(
        "order_changes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("change_hash", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signer", sa.LargeBinary(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_changes_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_changes")),
    )
    op.create_index(
        "uq_order_changes_order_id_sequence",
        "order_changes",
        ["order_id", "sequence"],
        unique=True,
    )
    op.create_index(
        "uq_order_changes_order_id_idempotency_key",
        "order_changes",
        ["order_id", "idempotency_key"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("order_changes")
    op.drop_table("order_reservations")
    op.drop_table("orders")
