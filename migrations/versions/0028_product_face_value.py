"""A product's optional face value and its currency

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 09:50:00.000000

Issue 18 item 2: the ``below-face-value`` laundering rule (``readmodels.launderrules``)
compares a resale's price with the face value printed on the card, in the same currency.
Both columns are NULL for a product whose creator never gave one (the rule stays quiet).
The face value is in minor units, as transfer prices are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("face_value", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("face_currency", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("face_currency")
        batch_op.drop_column("face_value")
