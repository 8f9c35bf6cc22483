"""The registry's tables: signed records, products, code keys, the log's entries, tiles and heads.

SQLModel declares them (so alembic and typed reads share one definition); the hot paths
(bulk ingest, sequencing, proof reads) go through SQLAlchemy Core on ``Model.__table__``.
Bytes are stored as bytes (fingerprints, hashes, addresses); hex lives only at the edges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

#: Naming convention so alembic produces the same constraint names on SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: 64-bit keys on PostgreSQL; on SQLite "INTEGER PRIMARY KEY" is the rowid, which is free.
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def _id_column() -> Column[int]:
    return Column(ID_TYPE, primary_key=True, autoincrement=True)


def _blob(*, nullable: bool = False) -> Column[bytes]:
    return Column(LargeBinary, nullable=nullable)


class SignedRecord(SQLModel, table=True):
    """One EIP-712 message a creator signed, with the domain it was signed under.

    UNIQUE (signer, nonce) is the replay guard (THREATS 17): nonce consumption and the
    entries it creates commit in one transaction, so of two concurrent submissions of the
    same nonce exactly one wins.
    """

    __tablename__ = "signed_records"
    __table_args__ = (Index("uq_signed_records_signer_nonce", "signer", "nonce", unique=True),)

    id: int | None = Field(default=None, sa_column=_id_column())
    primary_type: str = Field(max_length=32)
    signer: bytes = Field(sa_column=_blob())
    nonce: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    #: The canonical (RFC 8785) JSON document whose SHA-256 is the entries' payload hash:
    #: the signed message, the signature, the domain and the public documents (policy,
    #: metadata) that travel with it.
    payload: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: bytes = Field(sa_column=_blob())
    created_at: datetime


class Product(SQLModel, table=True):
    """A creator's product line (creator, slug), e.g. a game's "30-day card"."""

    __tablename__ = "products"
    __table_args__ = (Index("uq_products_creator_slug", "creator", "slug", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    creator: bytes = Field(sa_column=_blob())
    slug: str = Field(max_length=64)
    use: int = Field(sa_type=SmallInteger)
    first_record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    created_at: datetime


class CodeKey(SQLModel, table=True):
    """A creator's enrolled code key, AES-GCM encrypted under the master key.

    A creator may hold several (rotation, migration 0015): the newest live one is its
    current key, and a code lookup tries every live one. A retired key's row stays (its
    commitment and enrolment record are provenance) but its ``sealed_key`` is emptied.
    """

    __tablename__ = "code_keys"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    key_commitment: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    #: 12-byte nonce || ciphertext || 16-byte tag; associated data binds it to the creator.
    #: Empty once the key is retired.
    sealed_key: bytes = Field(sa_column=_blob())
    record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    created_at: datetime
    retired_at: datetime | None = None


class Entry(SQLModel, table=True):
    """One entry of the log; its leaf is ``registry.leaf.encode_leaf`` of these columns.

    NOTE: the sequencing queue is the set of rows whose ``leaf_index`` is still NULL
    (Trillian's Unsequenced table folded into LeafData). The rule "one accepted REGISTER per
    (good_type, fingerprint)" must hold across queued and sequenced entries at once, and a
    partial UNIQUE index on one table enforces that on SQLite and PostgreSQL alike.
    """

    __tablename__ = "entries"
    __table_args__ = (
        Index("uq_entries_leaf_index", "leaf_index", unique=True),
        Index(
            "uq_entries_registered_good",
            "good_type",
            "fingerprint",
            unique=True,
            sqlite_where=text("kind = 1"),
            postgresql_where=text("kind = 1"),
        ),
        Index(
            "ix_entries_good_events",
            "good_type",
            "fingerprint",
            sqlite_where=text("kind <> 1"),
            postgresql_where=text("kind <> 1"),
        ),
        # A creator's goods, for their own listing (cursor-paginated by id).
        Index(
            "ix_entries_creator_goods",
            "actor",
            "id",
            sqlite_where=text("kind = 1"),
            postgresql_where=text("kind = 1"),
        ),
        Index(
            "ix_entries_queue",
            "id",
            sqlite_where=text("leaf_index IS NULL"),
            postgresql_where=text("leaf_index IS NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=_id_column())
    leaf_index: int | None = Field(default=None, sa_type=BigInteger)
    kind: int = Field(sa_type=SmallInteger)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    actor: bytes = Field(sa_column=_blob())
    payload_hash: bytes = Field(sa_column=_blob())
    #: Set by the sequencer, together with leaf_index. (The leaf hash is not stored here:
    #: it is the bottom row of the tree's tiles.)
    timestamp: int | None = Field(default=None, sa_type=BigInteger)
    record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    #: Position of the good in its bulk batch (None for a single registration).
    position: int | None = Field(default=None)
    product_id: int | None = Field(default=None, foreign_key="products.id")


class TreeTile(SQLModel, table=True):
    """A tile of the log's Merkle tree (``registry.tiles``): 8 levels, up to 256 wide."""

    __tablename__ = "tree_tiles"

    tile_level: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    tile_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    width: int = Field(sa_type=SmallInteger)
    hashes: bytes = Field(sa_column=_blob())


class BatchTile(SQLModel, table=True):
    """A tile of a bulk batch's items tree (fingerprints in upload order), for batch proofs."""

    __tablename__ = "batch_tiles"

    record_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tile_level: int = Field(sa_column=Column(SmallInteger, primary_key=True))
    tile_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    width: int = Field(sa_type=SmallInteger)
    hashes: bytes = Field(sa_column=_blob())


class TreeHeadRecord(SQLModel, table=True):
    """A tree head the registry signed (EIP-712 ``TreeHead``)."""

    __tablename__ = "tree_heads"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=_blob())
    timestamp: int = Field(sa_type=BigInteger)
    signature: bytes = Field(sa_column=_blob())
    signer: bytes = Field(sa_column=_blob())
    domain: str = Field(sa_column=Column(Text, nullable=False))


class RegistryKey(SQLModel, table=True):
    """A key that signs (or signed) the registry's tree heads, with the sizes it covers.

    The first key signs heads from size 1; a hand-over at size N (a KEY_HANDOVER entry, the
    outgoing key's ``KeyHandover(newKey, treeSize=N)`` signature) ends it: heads of size < N
    verify under the old key, heads of size >= N only under the new one. The current key is
    the row whose ``until_size`` is NULL; the trust root the registry serves lists them all.
    """

    __tablename__ = "registry_keys"
    __table_args__ = (Index("uq_registry_keys_address", "address", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    address: bytes = Field(sa_column=_blob())
    from_size: int = Field(sa_type=BigInteger)
    until_size: int | None = Field(default=None, sa_type=BigInteger)
    #: The outgoing key's EIP-712 ``KeyHandover`` signature (None for the first key).
    handover_signature: bytes | None = Field(default=None, sa_column=_blob(nullable=True))
    created_at: datetime


class LogState(SQLModel, table=True):
    """The single row that names the log's current size; writers lock it to append."""

    __tablename__ = "log_state"

    id: int = Field(
        default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False)
    )
    tree_size: int = Field(default=0, sa_type=BigInteger)


class Transfer(SQLModel, table=True):
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
    )

    id: int | None = Field(default=None, sa_column=_id_column())
    entry_id: int = Field(sa_type=BigInteger, foreign_key="entries.id")
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    creator: bytes = Field(sa_column=_blob())
    #: The platform that reported the transfer (an API key's platform id).
    platform: str = Field(max_length=64)
    seller_platform: str | None = Field(default=None, max_length=64)
    seller_ref: bytes | None = Field(default=None, sa_column=_blob(nullable=True))
    buyer_platform: str = Field(max_length=64)
    buyer_ref: bytes = Field(sa_column=_blob())
    #: Integer amounts in the currency's smallest unit, as decimal text: prices go up to
    #: 2**256 - 1 (a uint256 of wei), beyond what either database's integers hold.
    price: str | None = Field(default=None, max_length=80)
    currency: str | None = Field(default=None, max_length=16)
    final: bool = Field(default=False)
    royalty_total: str | None = Field(default=None, max_length=80)
    idempotency_key: str | None = Field(default=None, max_length=128)
    #: SHA-256 of the request as the platform sent it, to tell a retry from a reused key.
    request_hash: bytes = Field(sa_column=_blob())
    #: The registry's EIP-712 ``TransferReceipt`` signature.
    receipt_signature: bytes = Field(sa_column=_blob())
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
    holder_ref: bytes = Field(sa_column=_blob())
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

    id: int | None = Field(default=None, sa_column=_id_column())
    token_hash: bytes = Field(sa_column=_blob())
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    holder_platform: str = Field(max_length=64)
    #: The keyed hash (scheme 2) of the reference the holder gave: the seller in the entry.
    holder_ref: bytes = Field(sa_column=_blob())
    holding_transfer_id: int = Field(sa_type=BigInteger, foreign_key="transfers.id")
    buyer_platform: str = Field(max_length=64)
    created_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int | None = Field(default=None, sa_type=BigInteger)
    #: The transfer that consumed it.
    transfer_id: int | None = Field(default=None, sa_type=BigInteger, foreign_key="transfers.id")


class RoyaltyLine(SQLModel, table=True):
    """One recipient's share of one priced transfer: the rows royalty statements add up."""

    __tablename__ = "royalty_lines"
    __table_args__ = (Index("ix_royalty_lines_creator_created_at", "creator", "created_at"),)

    id: int | None = Field(default=None, sa_column=_id_column())
    transfer_id: int = Field(sa_type=BigInteger, foreign_key="transfers.id")
    creator: bytes = Field(sa_column=_blob())
    recipient: bytes = Field(sa_column=_blob())
    bps: int = Field(sa_type=Integer)
    amount: str = Field(max_length=80)
    currency: str = Field(max_length=16)
    platform: str = Field(max_length=64)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    created_at: int = Field(sa_type=BigInteger)


class VerificationCount(SQLModel, table=True):
    """How often each platform verified a good, and when first and last: what a verify answer
    reports as "verified N times by M platforms, first at T". Telemetry, written in batches
    behind the requests (it may lag by about a second).

    NOTE: WITHOUT ROWID on SQLite (migration 0013): each flush upserts a row per good
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

    id: int | None = Field(default=None, sa_column=_id_column())
    at: int = Field(sa_type=BigInteger)
    platform: str = Field(sa_column=Column(Text, nullable=False))
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    #: How the good was named: "fingerprint", "code" or "file".
    via: str = Field(max_length=16)
    verdict: str = Field(max_length=16)


class TransferAttempt(SQLModel, table=True):
    """A transfer the registry refused (double sale, revoked, consumed), for fraud signals.

    Written in its own short transaction after the refused one rolled back
    (``Registry.transfer``): the refusal itself changes nothing in the log.
    """

    __tablename__ = "transfer_attempts"
    __table_args__ = (
        Index("ix_transfer_attempts_good_type_fingerprint", "good_type", "fingerprint"),
        Index("ix_transfer_attempts_at", "at"),
        Index("ix_transfer_attempts_platform_id", "platform", "id"),
    )

    id: int | None = Field(default=None, sa_column=_id_column())
    at: int = Field(sa_type=BigInteger)
    #: The platform that reported the refused transfer.
    platform: str = Field(max_length=64)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=_blob())
    seller_platform: str | None = Field(default=None, max_length=64)
    seller_ref: bytes | None = Field(default=None, sa_column=_blob(nullable=True))
    buyer_platform: str = Field(max_length=64)
    buyer_ref: bytes = Field(sa_column=_blob())
    price: str | None = Field(default=None, max_length=80)
    currency: str | None = Field(default=None, max_length=16)
    final: bool = Field(default=False)
    #: The refusal's error code: "double-sale", "revoked", "consumed", "not-a-distributor",
    #: "not-the-holder" or "authorization-refused".
    reason: str = Field(max_length=32)
    #: The transfer that made the real holder (or consumed the good), when there is one.
    earlier_transfer_id: int | None = Field(default=None, sa_type=BigInteger)


__all__ = [
    "BatchTile",
    "CodeKey",
    "Entry",
    "Holding",
    "LogState",
    "Product",
    "RoyaltyLine",
    "SignedRecord",
    "Transfer",
    "TransferAttempt",
    "TransferAuthorization",
    "TreeHeadRecord",
    "TreeTile",
    "VerificationCount",
    "VerificationEvent",
]


class RiskGood(SQLModel, table=True):
    """A good's risk as the risk worker last computed it (``verifier.riskworker``): what every
    verify answer adds to its own signals. Only goods with a signal, or an anomaly score worth
    telling, have a row; the worker rewrites the rows that changed at each refresh."""

    __tablename__ = "risk_goods"

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    score: float = Field(sa_type=Float)
    #: JSON list of {"signal_id", "code", "detail"}.
    signals: str = Field(sa_type=Text)


class RiskSignal(SQLModel, table=True):
    """A standing fraud or piracy signal (``verifier.signals``), with its evidence.

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


class CreatorIdentityRow(SQLModel, table=True):
    """A creator's proven web domain and name as last checked (``registry.identity``): the
    fast read behind verify answers. The log holds the evidence (CREATOR_IDENTITY entries);
    this row is the newest of them, ``verified`` or ``lapsed``."""

    __tablename__ = "creator_identities"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    domain: str = Field(max_length=260)
    name: str = Field(max_length=64)
    #: "verified" or "lapsed".
    status: str = Field(max_length=16)
    checked_at: int = Field(sa_type=BigInteger)
    #: Where the statement was fetched (https://<domain>/.well-known/tracemark-creator.json).
    url: str = Field(sa_type=Text)
    #: The CREATOR_IDENTITY entry that recorded this check.
    entry_id: int = Field(sa_type=BigInteger, foreign_key="entries.id")
