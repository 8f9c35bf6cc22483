"""The anchoring worker's tables: anchors and their states, signed attempts, the audit trail.

Every step of the state machine is committed before its side effect (the signed raw
transaction before it is broadcast), so a crash at any point resumes without losing a head
and without anchoring twice.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, Table, Text
from sqlmodel import Field, SQLModel

from registry.models import ID_TYPE


class AnchorRecord(SQLModel, table=True):
    """One tree head on its way to the chain."""

    __tablename__ = "anchors"
    __table_args__ = (
        Index("ix_anchors_state", "state"),
        # A verify answer's anchor: the first mined/final one whose tree covers the entry.
        Index("ix_anchors_tree_size", "tree_size"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    tree_size: int = Field(sa_type=BigInteger)
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: The anchored size this head extends (its consistency proof starts there).
    previous_size: int = Field(sa_type=BigInteger)
    #: An ``anchoring.states.AnchorState`` value.
    state: str = Field(max_length=16)
    nonce: int | None = Field(default=None, sa_type=BigInteger)
    tx_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    block_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AnchorAttempt(SQLModel, table=True):
    """A signed transaction for an anchor: the first, or a fee-bumped replacement at the same
    nonce. Old hashes are kept: any of them may be the one that gets mined."""

    __tablename__ = "anchor_attempts"
    # NOTE: unique per anchor, not globally: after a chain lost its state, re-anchoring the
    # same head at the same nonce and fees signs byte-identical bytes, hence the same hash.
    __table_args__ = (Index("uq_anchor_attempts_anchor_tx", "anchor_id", "tx_hash", unique=True),)

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    anchor_id: int = Field(sa_type=BigInteger, foreign_key="anchors.id")
    tx_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    nonce: int = Field(sa_type=BigInteger)
    max_fee_per_gas: int = Field(sa_type=BigInteger)
    max_priority_fee_per_gas: int = Field(sa_type=BigInteger)
    created_at: int = Field(sa_type=BigInteger)
    #: The chain's block number when it was (last) sent: "stuck" is counted in blocks.
    sent_block: int | None = Field(default=None, sa_type=BigInteger)


class AnchorEvent(SQLModel, table=True):
    """The audit trail: every state change with its reason (a reorg is a recorded event)."""

    __tablename__ = "anchor_events"

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    anchor_id: int = Field(sa_type=BigInteger, foreign_key="anchors.id")
    at: int = Field(sa_type=BigInteger)
    from_state: str = Field(max_length=16)
    to_state: str = Field(max_length=16)
    detail: str = Field(sa_column=Column(Text, nullable=False))


class AnchorerState(SQLModel, table=True):
    """The anchoring key's next nonce, kept gapless in the database, and the heartbeat."""

    __tablename__ = "anchorer_state"

    id: int = Field(
        default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False)
    )
    next_nonce: int | None = Field(default=None, sa_type=BigInteger)
    heartbeat: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: Count of consecutive failures, for the back-off.
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))


#: The anchors table, for the readers outside the worker (traces, bundles, exports, webhooks,
#: the chain command): from here, not ``anchoring.store``, which loads web3 with the chain.
anchors_t: Table = AnchorRecord.__table__  # type: ignore[attr-defined]


__all__ = ["AnchorAttempt", "AnchorEvent", "AnchorRecord", "AnchorerState", "anchors_t"]
