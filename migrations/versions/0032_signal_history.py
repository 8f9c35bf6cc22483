"""signal_history: every signal the risk worker raised, kept after it stops standing

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05 10:10:00.000000

``risk_signals`` holds the standing signals over the risk worker's 30-day look-back: a
compliance report of last quarter found nothing there (issue 18 item 3). This table keeps
each version of each signal (``readmodels.signalhistory``), written by the worker in the
transaction that updates ``risk_signals``. The standing signals are copied in as their first
version, so a report of the days before this migration still finds them.

Append-only, held by triggers on both databases (not only by the code having no such path):
no row is deleted (nor the table truncated, on PostgreSQL; nor replaced by SQLite's INSERT OR
REPLACE, which deletes without firing delete triggers), and the one update a row takes is its
closing, once: ``seen_at``, ``ended_at`` and ``ended_by`` set on a row still open (an upsert's
update on PostgreSQL goes through the same trigger). Every other change is refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The columns a row keeps from its insert on.
_KEPT = (
    "id",
    "signal_id",
    "version",
    "code",
    "subject_kind",
    "subject_id",
    "platforms",
    "document",
    "raised_at",
    "since_at",
)

_REFUSED = "signal_history is append-only: a row is closed once and never changed or deleted"

_SQLITE = (
    f"""CREATE TRIGGER signal_history_kept BEFORE DELETE ON signal_history
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
    # NOTE: INSERT OR REPLACE deletes the row it replaces without firing delete triggers
    # (unless recursive_triggers is on): an insert may not meet an existing row at all.
    f"""CREATE TRIGGER signal_history_not_replaced BEFORE INSERT ON signal_history
WHEN EXISTS (SELECT 1 FROM signal_history
             WHERE id = NEW.id OR (signal_id = NEW.signal_id AND version = NEW.version))
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
    f"""CREATE TRIGGER signal_history_closed_once BEFORE UPDATE ON signal_history
WHEN OLD.ended_at IS NOT NULL OR NEW.ended_at IS NULL
  OR {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _KEPT)}
BEGIN SELECT RAISE(ABORT, '{_REFUSED}'); END""",
)

_POSTGRES = (
    f"""CREATE FUNCTION signal_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR OLD.ended_at IS NOT NULL OR NEW.ended_at IS NULL
       OR ({", ".join(f"NEW.{c}" for c in _KEPT)})
          IS DISTINCT FROM ({", ".join(f"OLD.{c}" for c in _KEPT)}) THEN
        RAISE EXCEPTION '{_REFUSED}' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER signal_history_kept BEFORE UPDATE OR DELETE ON signal_history
FOR EACH ROW EXECUTE FUNCTION signal_history_append_only()""",
    """CREATE TRIGGER signal_history_kept_truncated BEFORE TRUNCATE ON signal_history
FOR EACH STATEMENT EXECUTE FUNCTION signal_history_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "signal_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("signal_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("platforms", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.BigInteger(), nullable=False),
        sa.Column("since_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_history")),
        sa.UniqueConstraint(
            "signal_id", "version", name=op.f("uq_signal_history_signal_id_version")
        ),
    )
    op.create_index(
        op.f("ix_signal_history_ended_at"), "signal_history", ["ended_at"], unique=False
    )
    # The standing signals, each as its first version (written when its document last
    # changed: ``seen_at``).
    op.execute(
        "INSERT INTO signal_history (signal_id, version, code, subject_kind, subject_id, "
        "platforms, document, raised_at, since_at, seen_at) "
        "SELECT signal_id, 1, code, subject_kind, subject_id, platforms, document, raised_at, "
        "seen_at, seen_at FROM risk_signals ORDER BY signal_id"
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER signal_history_kept_truncated ON signal_history")
        op.execute("DROP TRIGGER signal_history_kept ON signal_history")
        op.execute("DROP FUNCTION signal_history_append_only()")
    else:
        op.execute("DROP TRIGGER signal_history_closed_once")
        op.execute("DROP TRIGGER signal_history_not_replaced")
        op.execute("DROP TRIGGER signal_history_kept")
    op.drop_index(op.f("ix_signal_history_ended_at"), table_name="signal_history")
    op.drop_table("signal_history")
