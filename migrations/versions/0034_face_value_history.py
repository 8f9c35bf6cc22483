"""face_value_history: every face value a creator set, so a sale is judged by the one in force

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05 13:00:00.000000

``products.face_value`` (migration 0028) is the current value only: the ``below-face-value``
rule judged every past sale by it, so a creator setting a huge face value today made every
earlier resale of its cards "below face value". This table keeps each setting (a value and
currency, or a clearing: both NULL) with the registry's time it was set (``set_at``) and the
creator that set it (``registry.facevalue``, in the transaction that updates ``products``);
the rule judges a sale by the setting in force when it was made (``readmodels.launderrules``).

A product that has a face value now gets one row, ``set_at`` = this migration's time and
``set_by`` NULL: its value counts from the migration on, and the sales made before are not
judged (when it was set is not known; judging them by it is what this migration ends).

Append-only, held by triggers on both databases as ``signal_history``'s (migration 0032): no
row is updated or deleted (nor the table truncated, on PostgreSQL; nor a row replaced by
SQLite's INSERT OR REPLACE, which deletes without firing delete triggers).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_REFUSED = "face_value_history is append-only: a face value setting is never changed or deleted"

_SQLITE = (
    f"""CREATE TRIGGER face_value_history_kept BEFORE DELETE ON face_value_history
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
    # NOTE: INSERT OR REPLACE deletes the row it replaces without firing delete triggers
    # (unless recursive_triggers is on): an insert may not meet an existing row at all.
    f"""CREATE TRIGGER face_value_history_not_replaced BEFORE INSERT ON face_value_history
WHEN EXISTS (SELECT 1 FROM face_value_history WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
    f"""CREATE TRIGGER face_value_history_unchanged BEFORE UPDATE ON face_value_history
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
)

_POSTGRES = (
    f"""CREATE FUNCTION face_value_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_REFUSED}' USING ERRCODE = 'restrict_violation';
END $$""",
    """CREATE TRIGGER face_value_history_kept BEFORE UPDATE OR DELETE ON face_value_history
FOR EACH ROW EXECUTE FUNCTION face_value_history_append_only()""",
    """CREATE TRIGGER face_value_history_kept_truncated BEFORE TRUNCATE ON face_value_history
FOR EACH STATEMENT EXECUTE FUNCTION face_value_history_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "face_value_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("face_value", sa.BigInteger(), nullable=True),
        sa.Column("face_currency", sa.String(length=16), nullable=True),
        sa.Column("set_at", sa.BigInteger(), nullable=False),
        sa.Column("set_by", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_face_value_history_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_value_history")),
    )
    op.create_index(
        "ix_face_value_history_product", "face_value_history", ["product_id", "id"], unique=False
    )
    # The face values products have now, each from this migration on (see above).
    op.get_bind().execute(
        sa.text(
            "INSERT INTO face_value_history (product_id, face_value, face_currency, set_at) "
            "SELECT id, face_value, face_currency, :now FROM products "
            "WHERE face_value IS NOT NULL ORDER BY id"
        ),
        {"now": int(time.time())},
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER face_value_history_kept_truncated ON face_value_history")
        op.execute("DROP TRIGGER face_value_history_kept ON face_value_history")
        op.execute("DROP FUNCTION face_value_history_append_only()")
    else:
        op.execute("DROP TRIGGER face_value_history_unchanged")
        op.execute("DROP TRIGGER face_value_history_not_replaced")
        op.execute("DROP TRIGGER face_value_history_kept")
    op.drop_index("ix_face_value_history_product", table_name="face_value_history")
    op.drop_table("face_value_history")
