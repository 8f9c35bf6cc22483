"""Upline rebates (issue 17 item 6): platforms' distributor trees and rebate policies

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 06:50:00.000000

``rebate_trees``: one row per platform keeping a tree, locked by every change of it (changes
are serial per platform, so no cycle slips in between two). ``rebate_agents``: each agent's
upline now, both as keyed hashes of the platform's references (never in clear).
``rebate_agent_changes``: every upline change with its time. ``rebate_policies``: per product
and setter (its creator, or a platform for its own tree) the bps of each level above the seller.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rebate_trees",
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("agents", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", name=op.f("pk_rebate_trees")),
    )
    op.create_table(
        "rebate_agents",
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.LargeBinary(), nullable=False),
        sa.Column("upline", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "agent", name=op.f("pk_rebate_agents")),
    )
    op.create_index("ix_rebate_agents_platform_upline", "rebate_agents", ["platform", "upline"])
    op.create_table(
        "rebate_agent_changes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.LargeBinary(), nullable=False),
        sa.Column("previous_upline", sa.LargeBinary(), nullable=True),
        sa.Column("upline", sa.LargeBinary(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebate_agent_changes")),
    )
    op.create_index(
        "ix_rebate_agent_changes_platform_agent_id",
        "rebate_agent_changes",
        ["platform", "agent", "id"],
    )
    op.create_table(
        "rebate_policies",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("setter", sa.String(length=80), nullable=False),
        sa.Column("levels", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_rebate_policies_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rebate_policies")),
    )
    op.create_index(
        "uq_rebate_policies_product_id_setter",
        "rebate_policies",
        ["product_id", "setter"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_rebate_policies_product_id_setter", table_name="rebate_policies")
    op.drop_table("rebate_policies")
    op.drop_index("ix_rebate_agent_changes_platform_agent_id", table_name="rebate_agent_changes")
    op.drop_table("rebate_agent_changes")
    op.drop_index("ix_rebate_agents_platform_upline", table_name="rebate_agents")
    op.drop_table("rebate_agents")
    op.drop_table("rebate_trees")
