"""Transfers and what they leave: holdings, authorizations, royalty lines, refusals, policies."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, Text, text
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class TransferTerms(SQLModel):
    """What a platform reported of a hand-over, stored alike for a transfer the registry
    accepted (``Transfer``) and one it refused (``TransferAttempt``): the parties and the price.

    A seller with no platform is the good's creator; a party's reference is kept only as its
    keyed hash (``registry.parties``).

    NOTE: the byte columns name their type (``sa_type``) instead of taking ``blob_column()``:
    one column object cannot serve two tables, and these are declared once for both. A table
    lists them before its own columns; the migrations keep each table's column order.
    """

    seller_platform: str | None = Field(default=None, max_length=64)
    seller_ref: bytes | None = Field(default=None, sa_type=LargeBinary)
    buyer_platform: str = Field(max_length=64)
    buyer_ref: bytes = Field(sa_type=LargeBinary)
    #: Integer amounts in the currency's smallest unit, as decimal text: prices go up to
    #: 2**256 - 1 (a uint256 of wei), beyond what either database's integers hold.
    price: str | None = Field(default=None, max_length=80)
    currency: str | None = Field(default=None, max_length=16)
    final: bool = Field(default=False)


class Transfer(TransferTerms, table=True):
    """A hand-over or sale a platform reported, as the registry recorded it (a TRANSFER entry).

    Parties are ``(platform, keyed hash of the platform's reference)`` (``registry.parties``;
    rows before migration 0017 hold the older unkeyed SHA-256); a seller with no platform
    is the good's creator. UNIQUE (platform, idempotency_key): a retried report records once.
    """

    __tablename__ = "transfers"
    __table_args__ = (
        Index("uq_transfers_entry_id", "entry_id", unique=True),
        Index("uq_transfers_platform_idempotency_key", "platform", "idempotency_key", unique=True),
        Index("ix_transfers_good_type_fingerprint", "good_type", "fingerprint"),
        Index("ix_transfers_creator_created_at", "creator", "created_at"),
        Index("ix_transfers_platform_id", "platform", "id"),
        Index("ix_transfers_seller_platform_seller_ref", "seller_platform", "seller_ref"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    entry_id: int = Field(sa_type=BigInteger, foreign_key="entries.id")
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    creator: bytes = Field(sa_column=blob_column())
    #: The platform that reported the transfer (an API key's platform id).
    platform: str = Field(max_length=64)
    royalty_total: str | None = Field(default=None, max_length=80)
    idempotency_key: str | None = Field(default=None, max_length=128)
    #: SHA-256 of the request as the platform sent it, to tell a retry from a reused key.
    request_hash: bytes = Field(sa_column=blob_column())
    #: The registry's EIP-712 ``TransferReceipt`` signature.
    receipt_signature: bytes = Field(sa_column=blob_column())
    leaf_index: int = Field(sa_type=BigInteger)
    created_at: int = Field(sa_type=BigInteger)


class Holding(SQLModel, table=True):
    """Who holds a good once it has left its creator (no row: the creator still holds it).

    Moving a good is a conditional UPDATE on ``last_transfer_id`` (or an INSERT under the
    primary key for its first move), so of two platforms racing for one good exactly one
    wins even without the log's lock (THREATS 46, 47).
    """

    __tablename__ = "holdings"

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    holder_platform: str = Field(max_length=64)
    holder_ref: bytes = Field(sa_column=blob_column())
    #: How ``holder_ref`` was hashed (``registry.parties.ReferenceScheme``): 2, keyed per
    #: platform, for every row written since migration 0017; 1, the older unkeyed SHA-256,
    #: for rows written before it (kept: the registry never had the references to re-key).
    holder_ref_scheme: int = Field(
        default=2, sa_column=Column(SmallInteger, nullable=False, server_default=text("1"))
    )
    consumed: bool = Field(default=False)
    last_transfer_id: int = Field(sa_type=BigInteger, foreign_key="transfers.id")


class TransferAuthorization(SQLModel, table=True):
    """A holding platform's one-time consent that another platform may move a good it holds.

    Only the SHA-256 of the token is kept. It names the good, the holder as it was when issued
    (platform, reference hash and the holding's ``last_transfer_id``) and the one platform that
    may present it, until ``expires_at``. It is consumed by a conditional UPDATE (``used_at IS
    NULL``) in the transfer's own transaction, so of racing buyers exactly one moves the good.
    """

    __tablename__ = "transfer_authorizations"
    __table_args__ = (
        Index("uq_transfer_authorizations_token_hash", "token_hash", unique=True),
        Index("ix_transfer_authorizations_good_type_fingerprint", "good_type", "fingerprint"),
        Index("ix_transfer_authorizations_holder_platform_id", "holder_platform", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    token_hash: bytes = Field(sa_column=blob_column())
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    holder_platform: str = Field(max_length=64)
    #: The keyed hash (scheme 2) of the reference the holder gave: the seller in the entry.
    holder_ref: bytes = Field(sa_column=blob_column())
    holding_transfer_id: int = Field(sa_type=BigInteger, foreign_key="transfers.id")
    buyer_platform: str = Field(max_length=64)
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int | None = Field(default=None, sa_type=BigInteger)
    #: The transfer that consumed it.
    transfer_id: int | None = Field(default=None, sa_type=BigInteger, foreign_key="transfers.id")


class RoyaltyLine(SQLModel, table=True):
    """One payee's share of one sale: the ledger statements and payouts read (migration 0023).

    A plain transfer's lines are ``due`` at once. An order's lines (issue 17) are written
    ``held`` at delivery with no transfer yet, become ``due`` when the sale stands (the
    transfer recorded, ``transfer_id`` set) and ``reversed`` by a refund. A ``royalty`` line
    pays ``recipient`` (an address) under the creator's policy; a ``rebate`` line pays
    ``payee`` (an agent of a platform) at ``level`` above the final seller.
    """

    __tablename__ = "royalty_lines"
    __table_args__ = (
        Index("ix_royalty_lines_creator_created_at", "creator", "created_at"),
        Index("ix_royalty_lines_order_id", "order_id"),
        Index("ix_royalty_lines_payee_created_at", "payee", "created_at"),
        Index("ix_royalty_lines_platform_status_created_at", "platform", "status", "created_at"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    transfer_id: int | None = Field(default=None, sa_type=BigInteger, foreign_key="transfers.id")
    creator: bytes = Field(sa_column=blob_column())
    recipient: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    bps: int = Field(sa_type=Integer)
    amount: str = Field(max_length=80)
    currency: str = Field(max_length=16)
    platform: str = Field(max_length=64)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    created_at: int = Field(sa_type=BigInteger)
    #: ``held`` | ``due`` | ``reversed`` (``registry.models.transfers.LINE_STATUSES``).
    status: str = Field(
        default="due", max_length=16, sa_column_kwargs={"server_default": text("'due'")}
    )
    #: ``royalty`` | ``rebate``.
    kind: str = Field(
        default="royalty", max_length=16, sa_column_kwargs={"server_default": text("'royalty'")}
    )
    order_id: int | None = Field(default=None, sa_type=BigInteger, foreign_key="orders.id")
    payee: str | None = Field(default=None, max_length=160)
    level: int | None = Field(default=None, sa_type=SmallInteger)
    settled_at: int | None = Field(default=None, sa_type=BigInteger)


#: A line's statuses: held in escrow, owed, or never owed (a refund).
LINE_STATUSES = ("held", "due", "reversed")


class TransferAttempt(TransferTerms, table=True):
    """A transfer the registry refused (double sale, revoked, consumed), for fraud signals.

    Written in its own short transaction after the refused one rolled back
    (``Registry.transfer``): the refusal itself changes nothing in the log.
    """

    __tablename__ = "transfer_attempts"
    __table_args__ = (
        Index("ix_transfer_attempts_good_type_fingerprint", "good_type", "fingerprint"),
        Index("ix_transfer_attempts_at", "at"),
        Index("ix_transfer_attempts_platform_id", "platform", "id"),
        Index("ix_transfer_attempts_seller_platform_seller_ref", "seller_platform", "seller_ref"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    at: int = Field(sa_type=BigInteger)
    #: The platform that reported the refused transfer.
    platform: str = Field(max_length=64)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    #: The refusal's error code: "double-sale", "revoked", "consumed", "not-a-distributor",
    #: "not-the-holder" or "authorization-refused".
    reason: str = Field(max_length=32)
    #: The transfer that made the real holder (or consumed the good), when there is one.
    earlier_transfer_id: int | None = Field(default=None, sa_type=BigInteger)


class DistributionPolicy(SQLModel, table=True):
    """Who may sell a creator's goods first-hand (a transfer whose seller is the creator).

    No row, or ``restricted`` false: any platform (the default, open distribution). Restricted:
    only the listed platforms; any other is refused (403) and the attempt kept for the signals.
    """

    __tablename__ = "distribution_policies"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    restricted: bool
    #: Platform ids, sorted, space-separated.
    platforms: str = Field(sa_type=Text)
    updated_at: int = Field(sa_type=BigInteger)


__all__ = [
    "DistributionPolicy",
    "Holding",
    "RoyaltyLine",
    "Transfer",
    "TransferAttempt",
    "TransferAuthorization",
    "TransferTerms",
]
