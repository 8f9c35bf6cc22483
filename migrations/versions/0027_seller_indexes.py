"""Indexes on the seller party of transfers, refused transfers and orders

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-05 08:55:00.000000

A seller's credit score (issue 18, ``GET /v1/credit/platforms/{p}/sellers/{ref}``, a public
route) counts the facts whose seller party is it: without these each lookup scanned every
transfer, refused transfer and order.
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_transfers_seller_platform_seller_ref", "transfers"),
    ("ix_transfer_attempts_seller_platform_seller_ref", "transfer_attempts"),
    ("ix_orders_seller_platform_seller_ref", "orders"),
)


def upgrade() -> None:
    for name, table in _INDEXES:
        op.create_index(name, table, ["seller_platform", "seller_ref"])


def downgrade() -> None:
    for name, table in _INDEXES:
        op.drop_index(name, table_name=table)
