"""The risk worker's tables: goods' computed risk, their signals, probe flags, its state."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel


class RiskGood(SQLModel, table=True):
    """A good's risk as the risk worker last computed it (``readmodels.riskworker``): what every
    verify answer adds to its own signals. Only goods with a signal, or an anomaly score worth
    telling, have a row; the worker rewrites the rows that changed at each refresh."""

    __tablename__ = "risk_goods"

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    score: float = Field(sa_type=Float)
    #: JSON list of {"signal_id", "code", "detail"}.
    signals: str = Field(sa_type=Text)


class RiskSignal(SQLModel, table=True):
    """A standing fraud or piracy signal (``readmodels.signals``), with its evidence.

    A row appears when the worker first raises the signal (its webhooks are queued in the same
    transaction), is rewritten when its evidence changes, and goes when the look-back no longer
    supports it."""

    __tablename__ = "risk_signals"
    __table_args__ = (Index("ix_risk_signals_code", "code"),)

    signal_id: str = Field(sa_column=Column(Text, primary_key=True))
    code: str = Field(sa_type=Text)
    subject_kind: str = Field(sa_type=Text)
    subject_id: str = Field(sa_type=Text)
    #: The platforms it concerns, space-separated with a space at each end (`` a b ``).
    platforms: str = Field(sa_type=Text)
    #: JSON: the signal's document (``Signal.document``), what ``GET /v1/signals`` lists.
    document: str = Field(sa_type=Text)
    raised_at: int = Field(sa_type=BigInteger)
    #: When its document (its evidence) last changed.
    seen_at: int = Field(sa_type=BigInteger)


class RiskState(SQLModel, table=True):
    """The risk worker's progress (one row): when its index was built, its heartbeat."""

    __tablename__ = "risk_state"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    built_at: int = Field(sa_type=BigInteger)
    heartbeat: int = Field(sa_type=BigInteger)


class ProbeFlagRow(SQLModel, table=True):
    """A key or address that exhausted its failed-code-lookup budget (``api.ratelimit``),
    persisted by the API with its telemetry so that the risk worker, another process, sees it
    and a restart does not forget it."""

    __tablename__ = "probe_flags"

    key: str = Field(sa_column=Column(Text, primary_key=True))
    first_at: float = Field(sa_type=Float)
    last_at: float = Field(sa_type=Float)
    failed_probes: int = Field(sa_type=BigInteger)
    refused: int = Field(sa_type=BigInteger)


__all__ = [
    "ProbeFlagRow",
    "RiskGood",
    "RiskSignal",
    "RiskState",
]
