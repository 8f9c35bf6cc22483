"""Keyed party references and one-time hand-over authorizations (issue 12)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-10 10:00:00.000000

``holdings.holder_ref_scheme``: how each holder's reference hash was made. Rows already there
were written with the unkeyed SHA-256 (scheme 1) and stay so: the registry never had the plain
references, so it cannot re-key them; their platform's next sale sends the reference again,
which is compared under scheme 1, and the good's new holder is written keyed (scheme 2). The
TRANSFER entries that hold the old hashes are in signed heads and stay byte for byte.

``transfer_authorizations``: a holding platform's single-use consent that another platform may
move a good it holds (only the token's SHA-256 is kept).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("holdings") as batch:
        batch.add_column(
            sa.Column(
                "holder_ref_scheme", sa.SmallInteger(), nullable=False, server_default=sa.text("1")
            )
        )
    op.create_table(
        "transfer_authorizations",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("good_type", sa.SmallInteger(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("holder_platform", sa.String(length=64), nullable=False),
        sa.Column("holder_ref", sa.LargeBinary(), nullable=False),
        sa.Column("holding_transfer_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_platform", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.Column("transfer_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["holding_transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_authorizations_holding_transfer_id_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["transfers.id"],
            name=op.f("fk_transfer_authorizations_transfer_id_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_authorizations")),
    )
    op.create_index(
        "uq_transfer_authorizations_token_hash",
        "transfer_authorizations",
        ["token_hash"],
        unique=True,
    )
    op.create_index(
        "ix_transfer_authorizations_good_type_fingerprint",
        "transfer_authorizations",
        ["good_type", "fingerprint"],
    )
    op.create_index(
        "ix_transfer_authorizations_holder_platform_id",
        "transfer_authorizations",
        ["holder_platform", "id"],
    )


def downgrade() -> None:
    op.drop_table("transfer_authorizations")
    with op.batch_alter_table("holdings") as batch:
        batch.drop_column("holder_ref_scheme")
