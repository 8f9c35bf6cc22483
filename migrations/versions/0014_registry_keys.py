"""The registry's signing keys and the tree sizes each signs (key rotation, issue 11)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 16:00:00.000000

Rows are made by the registry on start (its first key, from size 1) and by a key hand-over;
a registry that existed before this table gets its one key on its next start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.LargeBinary(), nullable=False),
        sa.Column("from_size", sa.BigInteger(), nullable=False),
        sa.Column("until_size", sa.BigInteger(), nullable=True),
        sa.Column("handover_signature", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_keys")),
    )
    op.create_index("uq_registry_keys_address", "registry_keys", ["address"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_registry_keys_address", table_name="registry_keys")
    op.drop_table("registry_keys")
