"""The log's tables: entries, tiles of the tree and of batches, tree heads, the log's size."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    text,
)
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


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

    id: int | None = Field(default=None, sa_column=id_column())
    leaf_index: int | None = Field(default=None, sa_type=BigInteger)
    kind: int = Field(sa_type=SmallInteger)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    actor: bytes = Field(sa_column=blob_column())
    payload_hash: bytes = Field(sa_column=blob_column())
    #: Set by the sequencer, together with leaf_index. (The leaf hash is not stored here:
    #: it is the bottom row of the tree's tiles.)
    timestamp: int | None = Field(default=None, sa_type=BigInteger)
    #: NOTE: the two references below are foreign keys on SQLite; on PostgreSQL migration 0030
    #: checks them with one trigger a statement instead (a bulk batch's 10^6 rows paid two RI
    #: lookups each), with the same refusals and error class.
    record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    #: Position of the good in its bulk batch (None for a single registration).
    position: int | None = Field(default=None)
    product_id: int | None = Field(default=None, foreign_key="products.id")


class TileColumns(SQLModel):
    """A tile as ``registry.tilestore`` keeps one, of the log's tree or of a batch's items tree:
    its place (level, index; part of the key), its width and its hashes, 32 bytes each.

    NOTE: the columns name their type (``sa_type``) instead of taking a ``Column``: one column
    object cannot serve two tables, and these are declared once for both.
    """

    tile_level: int = Field(primary_key=True, sa_type=SmallInteger)
    tile_index: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    width: int = Field(sa_type=SmallInteger)
    hashes: bytes = Field(sa_type=LargeBinary)


class TreeTile(TileColumns, table=True):
    """A tile of the log's Merkle tree (``registry.tiles``): 8 levels, up to 256 wide."""

    __tablename__ = "tree_tiles"


class BatchTile(TileColumns, table=True):
    """A tile of a bulk batch's items tree (fingerprints in upload order), for batch proofs."""

    __tablename__ = "batch_tiles"
    # The batch first in the key, as the migration made it: a batch's tiles are read together.
    __table_args__ = (PrimaryKeyConstraint("record_id", "tile_level", "tile_index"),)

    record_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )


class TreeHeadRecord(SQLModel, table=True):
    """A tree head the registry signed (EIP-712 ``TreeHead``)."""

    __tablename__ = "tree_heads"

    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=blob_column())
    timestamp: int = Field(sa_type=BigInteger)
    signature: bytes = Field(sa_column=blob_column())
    signer: bytes = Field(sa_column=blob_column())
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
    "Entry",
    "LogState",
    "TreeHeadRecord",
    "TreeTile",
]
