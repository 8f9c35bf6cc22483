"""Platforms' attestation keys: real-name attestations signed by the platform itself

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 10:50:00.000000

Issue 18 item 4. ``platform_keys``: every attestation signing key (an Ethereum address)
enrolled for a platform, the newest in force (``registry.platformkeys``). Two nullable
columns on ``realname_attestations``, the key that signed one and its nonce, with a unique
index on the pair: the replay guard (rows logged before have neither, and NULLs never
collide on SQLite or PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "platform_keys",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("address", sa.LargeBinary(), nullable=False),
        sa.Column("enrolled_at", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_by", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_keys")),
    )
    op.create_index("ix_platform_keys_platform", "platform_keys", ["platform", "id"])
    with op.batch_alter_table("realname_attestations") as batch:
        batch.add_column(sa.Column("signer", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("nonce", sa.BigInteger(), nullable=True))
    op.create_index(
        "uq_realname_attestations_signer_nonce",
        "realname_attestations",
        ["signer", "nonce"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_realname_attestations_signer_nonce", table_name="realname_attestations")
    with op.batch_alter_table("realname_attestations") as batch:
        batch.drop_column("nonce")
        batch.drop_column("signer")
    op.drop_index("ix_platform_keys_platform", table_name="platform_keys")
    op.drop_table("platform_keys")
