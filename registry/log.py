"""The append-only log on the database: integrate leaves, store tiles, sign heads, serve proofs.

Vocabulary as in Trillian/Tessera: entries are *queued* (``leaf_index`` NULL), the sequencer
*integrates* them (assigns contiguous leaf indices, extends the tree's tiles) and *publishes*
a signed tree head, all in the caller's transaction. Proofs are read from the stored tiles
with one query, never by rebuilding the tree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from registry import merkle, tiles
from registry.eip712 import Domain, sign
from registry.errors import ProofOutOfRange
from registry.leaf import encode_leaf
from registry.models import BatchTile, Entry, LogState, TreeHeadRecord, TreeTile
from registry.tiles import Tile

TileKey = tuple[int, int]

entries_t: Table = Entry.__table__  # type: ignore[attr-defined]
tiles_t: Table = TreeTile.__table__  # type: ignore[attr-defined]
batch_tiles_t: Table = BatchTile.__table__  # type: ignore[attr-defined]
heads_t: Table = TreeHeadRecord.__table__  # type: ignore[attr-defined]
log_state_t: Table = LogState.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TreeHead:
    """A signed (size, root, timestamp) of the log: EIP-712 ``TreeHead`` under ``domain``."""

    tree_size: int
    root: bytes
    timestamp: int
    signature: bytes
    signer: bytes
    domain: Domain

    def message(self) -> dict[str, object]:
        return {"size": self.tree_size, "root": self.root, "timestamp": self.timestamp}


# -- the log's size and its lock ---------------------------------------------------------------


def lock_log(conn: Connection) -> int:
    """Take the log's append lock for this transaction and return the current tree size.

    On PostgreSQL the row lock serialises appenders across processes; on SQLite the write
    transaction (BEGIN IMMEDIATE) already holds the database's one write lock.
    """
    query = select(log_state_t.c.tree_size).where(log_state_t.c.id == 1)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    size = conn.execute(query).scalar_one_or_none()
    if size is None:
        conn.execute(log_state_t.insert().values(id=1, tree_size=0))
        return 0
    return int(size)


def tree_size(conn: Connection) -> int:
    """The log's size: a primary-key read on the driver (this runs before every proof)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT tree_size FROM {log_state_t.name} WHERE id = 1")
        row = cursor.fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row else 0


def set_tree_size(conn: Connection, size: int) -> None:
    conn.execute(update(log_state_t).where(log_state_t.c.id == 1).values(tree_size=size))


# -- tiles -------------------------------------------------------------------------------------


class TileStore:
    """Reads and writes the tiles of one tree: the log's, or one bulk batch's items tree."""

    def __init__(self, conn: Connection, table: Table, record_id: int | None = None) -> None:
        self._conn = conn
        self._table = table
        self._record_id = record_id

    def _scope(self) -> list[object]:
        if self._record_id is None:
            return []
        return [self._table.c.record_id == self._record_id]

    def load(self, keys: Iterable[TileKey]) -> dict[TileKey, Tile]:
        """The tiles among ``keys`` that exist (a handful: at most two per tile level)."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        # NOTE: driver-level SQL. SQLAlchemy's statement machinery costs more than these
        # primary-key lookups, and SQLite does not use the key for a row-value
        # ``IN (VALUES ...)`` (it scanned the table: 5 ms per proof at 10^6 leaves).
        scope = "" if self._record_id is None else "record_id = {m} AND "
        cursor = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        rows: list[tuple[int, int, int, bytes]] = []
        try:
            if self._conn.dialect.paramstyle == "qmark":
                # SQLite: in-process point lookups on a cached statement beat one OR query.
                sql = (
                    f"SELECT tile_level, tile_index, width, hashes FROM {self._table.name} "
                    f"WHERE {scope.format(m='?')}tile_level = ? AND tile_index = ?"
                )
                prefix = () if self._record_id is None else (self._record_id,)
                for key in wanted:
                    cursor.execute(sql, (*prefix, *key))
                    rows.extend(cursor.fetchall())
            else:
                # PostgreSQL: one round trip.
                term = "(tile_level = %s AND tile_index = %s)"
                params: list[int] = [] if self._record_id is None else [self._record_id]
                for level, index in wanted:
                    params += (level, index)
                cursor.execute(
                    f"SELECT tile_level, tile_index, width, hashes FROM {self._table.name} "
                    f"WHERE {scope.format(m='%s')}({' OR '.join([term] * len(wanted))})",
                    params,
                )
                rows = cursor.fetchall()
        finally:
            cursor.close()
        return {
            (level, index): Tile(level=level, index=index, width=width, hashes=bytes(hashes))
            for level, index, width, hashes in rows
        }

    def store(self, changed: Sequence[Tile]) -> None:
        if not changed:
            return
        rows = [
            {"tile_level": t.level, "tile_index": t.index, "width": t.width, "hashes": t.hashes}
            for t in changed
        ]
        if self._record_id is not None:
            for row in rows:
                row["record_id"] = self._record_id
        keys = [k for k in ("record_id", "tile_level", "tile_index") if k in rows[0]]
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        stmt = dialect.insert(self._table)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={"width": stmt.excluded.width, "hashes": stmt.excluded.hashes}
        )
        self._conn.execute(stmt, rows)


class TreeAppender:
    """Extends a stored tree by streams of leaf hashes within one transaction.

    Full tiles are written as soon as they are complete (they never change again); the
    partial right-edge tiles stay in memory and are written once by ``finish``, so a 10^6
    leaf batch writes each tile once.
    """

    def __init__(self, store: TileStore, size: int) -> None:
        self._store = store
        self.size = size
        self._edge = store.load(tiles.edge_tiles(size))

    def append(self, leaf_hashes: Sequence[bytes]) -> None:
        if not leaf_hashes:
            return
        changed = tiles.append_leaves(self.size, self._edge, leaf_hashes)
        self.size += len(leaf_hashes)
        full = [t for t in changed if t.width == tiles.TILE_WIDTH]
        for t in changed:
            if t.width == tiles.TILE_WIDTH:
                self._edge.pop((t.level, t.index), None)
            else:
                self._edge[(t.level, t.index)] = t
        self._store.store(full)

    def root(self) -> bytes:
        """The root of the tree so far: edge tiles from memory, full ones from the store."""
        if self.size == 0:
            return merkle.empty_root()
        plan = merkle.root_plan(self.size)
        needed = tiles.tiles_for(plan)
        have = {key: tile for key, tile in self._edge.items() if key in needed}
        have.update(self._store.load(needed - have.keys()))
        return tiles.assemble_from_tiles(plan, have)[0]

    def finish(self) -> bytes:
        """Write the partial edge tiles and return the root of the extended tree."""
        self._store.store(list(self._edge.values()))
        return self.root()


# -- integration -------------------------------------------------------------------------------


def integrate_queue(conn: Connection, *, limit: int, now: int) -> int:
    """Give the oldest queued entries contiguous leaf indices; returns how many.

    The caller owns the transaction and publishes a tree head afterwards.
    """
    size = lock_log(conn)
    c = entries_t.c
    queued = conn.execute(
        select(c.id, c.kind, c.good_type, c.fingerprint, c.actor, c.payload_hash)
        .where(c.leaf_index.is_(None))
        .order_by(c.id)
        .limit(limit)
    ).all()
    if not queued:
        return 0
    updates = []
    leaf_hashes = []
    for offset, (entry_id, kind, good_type, fingerprint, actor, payload_hash) in enumerate(queued):
        leaf = encode_leaf(
            kind, good_type, bytes(fingerprint), bytes(actor), bytes(payload_hash), now
        )
        leaf_hash = merkle.hash_leaf(leaf)
        leaf_hashes.append(leaf_hash)
        updates.append({"eid": entry_id, "li": size + offset, "ts": now})
    conn.execute(
        update(entries_t)
        .where(c.id == bindparam("eid"))
        .values(leaf_index=bindparam("li"), timestamp=bindparam("ts")),
        updates,
    )
    appender = TreeAppender(TileStore(conn, tiles_t), size)
    appender.append(leaf_hashes)
    appender.finish()
    set_tree_size(conn, appender.size)
    return len(queued)


# -- tree heads --------------------------------------------------------------------------------


def publish_tree_head(
    conn: Connection, *, account: LocalAccount, domain: Domain, now: int
) -> TreeHead | None:
    """Sign and store a head for the current size, unless that size already has one."""
    size = tree_size(conn)
    if size == 0:
        return None
    existing = conn.execute(select(heads_t.c.tree_size).where(heads_t.c.tree_size == size)).first()
    if existing is not None:
        return None
    root = root_at(conn, size)
    message = {"size": size, "root": root, "timestamp": now}
    signature = sign("TreeHead", message, domain, account.key)
    signer = bytes.fromhex(account.address[2:])
    conn.execute(
        heads_t.insert().values(
            tree_size=size,
            root=root,
            timestamp=now,
            signature=signature,
            signer=signer,
            domain=json.dumps(domain.as_dict(), sort_keys=True),
        )
    )
    return TreeHead(size, root, now, signature, signer, domain)


def latest_tree_head(conn: Connection) -> TreeHead | None:
    row = conn.execute(select(heads_t).order_by(heads_t.c.tree_size.desc()).limit(1)).first()
    return None if row is None else _head_from_row(row._mapping)


def tree_head_at(conn: Connection, size: int) -> TreeHead | None:
    row = conn.execute(select(heads_t).where(heads_t.c.tree_size == size)).first()
    return None if row is None else _head_from_row(row._mapping)


def _head_from_row(row: Any) -> TreeHead:
    return TreeHead(
        tree_size=int(row["tree_size"]),
        root=bytes(row["root"]),
        timestamp=int(row["timestamp"]),
        signature=bytes(row["signature"]),
        signer=bytes(row["signer"]),
        domain=Domain.from_dict(json.loads(str(row["domain"]))),
    )


# -- proofs ------------------------------------------------------------------------------------


def _check_size(conn: Connection, size: int) -> None:
    current = tree_size(conn)
    if size < 0 or size > current:
        raise ProofOutOfRange(f"tree size {size} is out of range: the log has {current} leaves")


def _read_plan(conn: Connection, plan: merkle.ProofPlan) -> list[bytes]:
    loaded = TileStore(conn, tiles_t).load(tiles.tiles_for(plan))
    return tiles.assemble_from_tiles(plan, loaded)


def root_at(conn: Connection, size: int) -> bytes:
    """The root of the log's first ``size`` leaves, from at most one tile per level."""
    _check_size(conn, size)
    if size == 0:
        return merkle.empty_root()
    return _read_plan(conn, merkle.root_plan(size))[0]


def inclusion_proof(conn: Connection, leaf_index: int, size: int) -> list[bytes]:
    _check_size(conn, size)
    if not 0 <= leaf_index < size:
        raise ProofOutOfRange(f"leaf index {leaf_index} is out of range for tree size {size}")
    return _read_plan(conn, merkle.inclusion_plan(leaf_index, size))


def consistency_proof(conn: Connection, size1: int, size2: int) -> list[bytes]:
    _check_size(conn, size2)
    if not 0 <= size1 <= size2:
        raise ProofOutOfRange(f"tree size {size1} is out of range for a proof to size {size2}")
    return _read_plan(conn, merkle.consistency_plan(size1, size2))


def batch_inclusion_proof(
    conn: Connection, record_id: int, position: int, count: int
) -> list[bytes]:
    """The proof that a batch's fingerprint at ``position`` is under its signed items root."""
    if not 0 <= position < count:
        raise ProofOutOfRange(f"position {position} is out of range for a batch of {count}")
    plan = merkle.inclusion_plan(position, count)
    loaded = TileStore(conn, batch_tiles_t, record_id).load(tiles.tiles_for(plan))
    return tiles.assemble_from_tiles(plan, loaded)


Clock = Callable[[], int]

__all__ = [
    "Clock",
    "TileStore",
    "TreeAppender",
    "TreeHead",
    "batch_inclusion_proof",
    "consistency_proof",
    "inclusion_proof",
    "integrate_queue",
    "latest_tree_head",
    "lock_log",
    "publish_tree_head",
    "root_at",
    "tree_head_at",
    "tree_size",
]
