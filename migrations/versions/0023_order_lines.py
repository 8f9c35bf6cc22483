"""Royalty lines become the one ledger of what is owed: order lines, rebates, their status

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 06:40:00.000000

Issue 17: a guaranteed-trade order's lines are written at delivery and held in escrow, become
due when the sale stands (confirm, auto-confirm, release) and are reversed by a refund; upline
rebates (返点) are lines too, paid to an agent of a platform rather than to an address. One
table keeps every line so statements and payouts read one ledger:

- ``status``: ``held`` (an order's line before the sale stands), ``due`` (owed; every line a
  plain transfer wrote, so existing rows default to it), ``reversed`` (a refund: never owed);
- ``kind``: ``royalty`` (a creator's policy, ``recipient`` an address) or ``rebate`` (a level
  of the distributor chain, ``payee`` the agent, ``recipient`` NULL);
- ``order_id``: the order a line came from; ``transfer_id`` is NULL until its sale stands;
- ``level``: a rebate's level above the final seller (1 = the seller's direct upline);
- ``settled_at``: when the line became due or was reversed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("royalty_lines", schema=None) as batch_op:
        batch_op.alter_column("transfer_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("recipient", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="due")
        )
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="royalty")
        )
        batch_op.add_column(sa.Column("order_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("payee", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("level", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("settled_at", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_royalty_lines_order_id_orders"), "orders", ["order_id"], ["id"]
        )
        batch_op.create_index("ix_royalty_lines_order_id", ["order_id"], unique=False)
        batch_op.create_index(
            "ix_royalty_lines_payee_created_at", ["payee", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_royalty_lines_platform_status_created_at",
            ["platform", "status", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("royalty_lines", schema=None) as batch_op:
        batch_op.drop_index("ix_royalty_lines_platform_status_created_at")
        batch_op.drop_index("ix_royalty_lines_payee_created_at")
        batch_op.drop_index("ix_royalty_lines_order_id")
        batch_op.drop_constraint(op.f("fk_royalty_lines_order_id_orders"), type_="foreignkey")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("level")
        batch_op.drop_column("payee")
        batch_op.drop_column("order_id")
        batch_op.drop_column("kind")
        batch_op.drop_column("status")
        batch_op.alter_column("recipient", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("transfer_id", existing_type=sa.BigInteger(), nullable=False)
