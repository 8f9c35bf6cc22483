"""The log's checkpoints and the witnesses that cosign them (issue 15)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 01:00:00.000000

``checkpoints``: the C2SP checkpoint of each signed tree head, signed in the head's own
transaction with the log's note keys; ``published_at`` stays NULL until the witness quorum
cosigned it (``anchoring.witnessing``), and only published checkpoints are served and
anchored. Heads signed before this revision have no row; the registry signs one for its
latest head when it opens (``registry.checkpoints.sign_missing_latest``), which is the only
one served or anchored from then on.

``checkpoint_witnesses``: per witness key, the size it last cosigned (the next request's
``old`` line) and its failures (the alarm).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("tree_size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("cosignatures", sa.LargeBinary(), nullable=True),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tree_size"],
            ["tree_heads.tree_size"],
            name=op.f("fk_checkpoints_tree_size_tree_heads"),
        ),
        sa.PrimaryKeyConstraint("tree_size", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "checkpoint_witnesses",
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("total_failures", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_name", "key_id", name=op.f("pk_checkpoint_witnesses")),
    )


def downgrade() -> None:
    op.drop_table("checkpoint_witnesses")
    op.drop_table("checkpoints")
