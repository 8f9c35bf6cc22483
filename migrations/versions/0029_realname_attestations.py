"""Real-name attestations (实名制): a platform's seller verified to a level, newest wins

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 09:45:00.000000

Issue 18 item 4. ``realname_attestations``: one row per attestation a platform made of one
of its seller accounts (``registry.attestationstore``), the seller named by its keyed
reference hash (``registry.parties``), the level (0 none, 1 phone, 2 id-card, 3 face), when,
and the ATTESTATION entry (kind 9) that logged it. A seller's current level is its newest
row (index on platform, seller_ref, id). Nothing personal is stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "realname_attestations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("seller_ref", sa.LargeBinary(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("attested_at", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name=op.f("fk_realname_attestations_entry_id_entries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realname_attestations")),
    )
    op.create_index(
        "ix_realname_attestations_seller",
        "realname_attestations",
        ["platform", "seller_ref", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_realname_attestations_seller", table_name="realname_attestations")
    op.drop_table("realname_attestations")
