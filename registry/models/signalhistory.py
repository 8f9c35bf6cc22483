"""Every signal the risk worker has raised, kept after it stops standing (``risk_signals``
holds only the standing ones): what a compliance report of any period reads
(``readmodels.signalhistory``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from registry.models.columns import id_column


class SignalHistoryRow(SQLModel, table=True):
    """One version of a signal: its document as the worker wrote it, and when it stood.

    Append-only: a changed document is a new version (the open one is closed, never
    rewritten); the only update a row takes is its closing (``seen_at``, ``ended_at``,
    ``ended_by``, once), and no row is deleted (triggers refuse both, migration 0032)."""

    __tablename__ = "signal_history"
    __table_args__ = (
        UniqueConstraint("signal_id", "version"),
        Index("ix_signal_history_ended_at", "ended_at"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    signal_id: str = Field(sa_type=Text)
    #: 1, 2, ...: the signal's versions in order (across its standing spells).
    version: int = Field(sa_type=Integer)
    code: str = Field(sa_type=Text)
    subject_kind: str = Field(sa_type=Text)
    subject_id: str = Field(sa_type=Text)
    #: The platforms it concerns, `` a b `` as in ``risk_signals``.
    platforms: str = Field(sa_type=Text)
    #: JSON: ``Signal.document()`` as written (detail, weight, goods, evidence).
    document: str = Field(sa_type=Text)
    #: When the spell this version belongs to began (the raise its webhooks announced).
    raised_at: int = Field(sa_type=BigInteger)
    #: When this version was written (its document first stood).
    since_at: int = Field(sa_type=BigInteger)
    #: The last refresh at which this version stood (``since_at`` until it is closed).
    seen_at: int = Field(sa_type=BigInteger)
    #: When it stopped standing (None: it stands), and why: ``changed`` (a newer version
    #: follows) or ``stopped`` (the signal no longer stands).
    ended_at: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    ended_by: str | None = Field(default=None, sa_type=Text, nullable=True)


__all__ = ["SignalHistoryRow"]
