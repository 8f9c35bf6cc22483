"""Verification telemetry: per-good counts and the event stream platforms report."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class VerificationCount(SQLModel, table=True):
    """How often each platform verified a good, and when first and last: what a verify answer
    reports as "verified N times by M platforms, first at T". Telemetry, folded from the
    events by the telemetry role (``registry.telemetryfold``; it may lag by about a second).

    NOTE: WITHOUT ROWID on SQLite (migration 0013): each fold upserts a row per good
    verified, and clustered on the key that dirties one page, not an index page and a table
    page.
    """

    __tablename__ = "verification_counts"
    __table_args__ = {"sqlite_with_rowid": False}

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    platform: str = Field(sa_column=Column(Text, primary_key=True))
    count: int = Field(sa_type=BigInteger)
    first_at: int = Field(sa_type=BigInteger)
    last_at: int = Field(sa_type=BigInteger)


class VerificationEvent(SQLModel, table=True):
    """One verification, for traces and fraud signals (who asked about what, and the answer).

    NOTE: no secondary index. The API appends these behind every verify request, and an index
    on the (random) fingerprint cost five times the append itself at 10^6 goods; the risk
    worker indexes them by good afterwards (``VerificationEventByGood``).
    """

    __tablename__ = "verification_events"

    id: int | None = Field(default=None, sa_column=id_column())
    at: int = Field(sa_type=BigInteger)
    platform: str = Field(sa_column=Column(Text, nullable=False))
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    #: How the good was named: "fingerprint", "code" or "file".
    via: str = Field(max_length=16)
    verdict: str = Field(max_length=16)


class VerificationEventByGood(SQLModel, table=True):
    """The verification events of each good: the index the API does not write on its hot path.

    The risk worker adds the events past ``EventIndexState.indexed_through``; a trace reads
    the good's indexed events and scans the short tail not indexed yet.
    """

    __tablename__ = "verification_events_by_good"

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    event_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class EventIndexState(SQLModel, table=True):
    """How far ``verification_events_by_good`` reaches (one row)."""

    __tablename__ = "event_index_state"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    indexed_through: int = Field(sa_type=BigInteger)


class VerificationFoldState(SQLModel, table=True):
    """How far ``verification_counts`` reaches (one row): the last event id folded into them.

    The telemetry role moves it in the same transaction as the counts it upserts
    (``registry.telemetry.fold_verifications``), so a fold is counted whole or not at all.
    """

    __tablename__ = "verification_fold_state"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    folded_through: int = Field(sa_type=BigInteger)


__all__ = [
    "EventIndexState",
    "VerificationCount",
    "VerificationEvent",
    "VerificationEventByGood",
    "VerificationFoldState",
]
