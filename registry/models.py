"""The registry's tables: signed records, products, code keys, the log's entries, tiles and heads.

SQLModel declares them (so alembic and typed reads share one definition); the hot paths
(bulk ingest, sequencing, proof reads) go through SQLAlchemy Core on ``Model.__table__``.
Bytes are stored as bytes (fingerprints, hashes, addresses); hex lives only at the edges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, Text, text
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
    """A creator's enrolled code key, AES-GCM encrypted under the master key."""

    __tablename__ = "code_keys"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    key_commitment: bytes = Field(sa_column=_blob())
    #: 12-byte nonce || ciphertext || 16-byte tag; associated data binds it to the creator.
    sealed_key: bytes = Field(sa_column=_blob())
    record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    created_at: datetime


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


class LogState(SQLModel, table=True):
    """The single row that names the log's current size; writers lock it to append."""

    __tablename__ = "log_state"

    id: int = Field(
        default=1, sa_column=Column(SmallInteger, primary_key=True, autoincrement=False)
    )
    tree_size: int = Field(default=0, sa_type=BigInteger)


__all__ = [
    "BatchTile",
    "CodeKey",
    "Entry",
    "LogState",
    "Product",
    "SignedRecord",
    "TreeHeadRecord",
    "TreeTile",
]
