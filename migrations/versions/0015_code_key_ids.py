"""Code-key rotation (issue 11): a creator holds several code keys, each retirable

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 16:00:00.000000

``code_keys`` was keyed by creator (one key each); it is now keyed by (creator,
key_commitment), so a creator can enrol a new key next to the old ones, and gains
``retired_at``: a retired key's sealed copy is overwritten with empty bytes and it is no
longer tried for code lookups. Every existing row is kept (as a live key). The downgrade
keeps each creator's newest key only, since the old schema holds one a creator.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NOTE: batch mode rebuilds the table on SQLite (which cannot alter a primary key) and
    # issues plain ALTER TABLE statements on PostgreSQL.
    with op.batch_alter_table("code_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("pk_code_keys", type_="primary")
        batch_op.create_primary_key("pk_code_keys", ["creator", "key_commitment"])


def downgrade() -> None:
    # One key a creator again: keep the newest (highest record id) of each, retired or not.
    op.execute(
        "DELETE FROM code_keys WHERE record_id < "
        "(SELECT MAX(k.record_id) FROM code_keys k WHERE k.creator = code_keys.creator)"
    )
    with op.batch_alter_table("code_keys", schema=None) as batch_op:
        batch_op.drop_constraint("pk_code_keys", type_="primary")
        batch_op.create_primary_key("pk_code_keys", ["creator"])
        batch_op.drop_column("retired_at")
