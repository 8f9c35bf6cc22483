"""Reserved (issue 11 work in progress): replaced by the migration that fills it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
