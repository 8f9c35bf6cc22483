"""Jobs name the replica that runs them, and until when it is alive (issue 16)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 02:00:00.000000

``jobs.runner``: the API process (``registry.lease.holder_name``) that took the upload and
runs it; ``jobs.runner_expires_at_ms``: until when, in the database's clock, that process is
known alive (its heartbeat pushes it forward). A starting or sweeping replica fails only the
queued or running jobs whose runner's time has passed (``api.jobs``). Rows from before have
no runner: they are failed at the next start, as every unfinished job was before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("runner", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("runner_expires_at_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("runner_expires_at_ms")
        batch_op.drop_column("runner")
