"""The append-only log on the database: integrate leaves, store tiles, sign heads, serve proofs.

Vocabulary as in Trillian/Tessera: entries are *queued* (``leaf_index`` NULL), the sequencer
*integrates* them (assigns contiguous leaf indices, extends the tree's tiles) and *publishes*
a signed tree head, all in the caller's transaction. Proofs are read from the stored tiles
with one query, never by rebuilding the tree.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, bindparam, func, select, update

from registry import merkle, tiles
from registry.checkpoints import CheckpointSigner, store_checkpoint
from registry.eip712 import Domain
from registry.errors import ProofOutOfRange
from registry.leaf import EntryKind, encode_leaf
from registry.models import Entry, LogState, TreeHeadRecord
from registry.signatures import sign
from registry.tilestore import TileCache, TileStore, TreeAppender, batch_tiles_t, tiles_t
from registry.treehead import PRIMARY_TYPE, TreeHead, tree_head_message

if TYPE_CHECKING:
    from registry.statecommit import StateMapCache

entries_t: Table = Entry.__table__  # type: ignore[attr-defined]
heads_t: Table = TreeHeadRecord.__table__  # type: ignore[attr-defined]
log_state_t: Table = LogState.__table__  # type: ignore[attr-defined]


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


# -- integration -------------------------------------------------------------------------------


def queue_entry(
    conn: Connection,
    *,
    kind: EntryKind,
    good_type: int,
    fingerprint: bytes,
    actor: bytes,
    payload_hash: bytes,
    record_id: int,
    product_id: int | None = None,
) -> int:
    """Queue one entry (its leaf fields and the signed record it came from) for the
    sequencer; returns its id. ``good_type`` is ``leaf.NO_GOOD`` for a subject's entry."""
    entry_id = conn.execute(
        entries_t.insert()
        .values(
            kind=int(kind),
            good_type=good_type,
            fingerprint=fingerprint,
            actor=actor,
            payload_hash=payload_hash,
            record_id=record_id,
            product_id=product_id,
        )
        .returning(entries_t.c.id)
    ).scalar_one()
    return int(entry_id)


# An entry's id and the fields its leaf is encoded from, in ``encode_leaf``'s order.
_LEAF_FIELDS = (
    entries_t.c.id,
    entries_t.c.kind,
    entries_t.c.good_type,
    entries_t.c.fingerprint,
    entries_t.c.actor,
    entries_t.c.payload_hash,
)


def integrate_queue(conn: Connection, *, limit: int, now: int) -> int:
    """Give the oldest queued entries contiguous leaf indices; returns how many.

    The caller owns the transaction and publishes a tree head afterwards.
    """
    size = lock_log(conn)
    c = entries_t.c
    queued = conn.execute(
        select(*_LEAF_FIELDS).where(c.leaf_index.is_(None)).order_by(c.id).limit(limit)
    ).all()
    return _integrate(conn, size, queued, now)


def integrate_entry(conn: Connection, entry_id: int, *, now: int) -> int:
    """Integrate one queued entry at the next leaf index, ahead of the queue's older entries
    (the next ``integrate_queue`` takes those); returns its leaf index. The caller owns the
    transaction; the log's lock is taken here."""
    size = lock_log(conn)
    c = entries_t.c
    entry = conn.execute(
        select(*_LEAF_FIELDS).where(c.id == entry_id, c.leaf_index.is_(None))
    ).one()
    _integrate(conn, size, [entry], now)
    return size


def _integrate(conn: Connection, size: int, entries: Sequence[Sequence[Any]], now: int) -> int:
    """Give ``entries`` (rows of ``_LEAF_FIELDS``) the leaf indices from ``size`` on, stamped
    ``now``, and extend the tree's tiles with their leaves; returns how many."""
    if not entries:
        return 0
    updates = []
    leaf_hashes = []
    for offset, (entry_id, kind, good_type, fingerprint, actor, payload_hash) in enumerate(entries):
        leaf = encode_leaf(
            kind, good_type, bytes(fingerprint), bytes(actor), bytes(payload_hash), now
        )
        leaf_hash = merkle.hash_leaf(leaf)
        leaf_hashes.append(leaf_hash)
        updates.append({"eid": entry_id, "li": size + offset, "ts": now})
    conn.execute(
        update(entries_t)
        .where(entries_t.c.id == bindparam("eid"))
        .values(leaf_index=bindparam("li"), timestamp=bindparam("ts")),
        updates,
    )
    appender = TreeAppender(TileStore(conn, tiles_t), size)
    appender.append(leaf_hashes)
    appender.finish()
    set_tree_size(conn, appender.size)
    return len(entries)


# -- tree heads --------------------------------------------------------------------------------


def sequencer_time(conn: Connection, now: int) -> int:
    """The time to stamp new leaves and heads with: never before the last signed head's.

    A server clock stepped backwards must not produce a head that looks older than the one
    before it (auditors compare consecutive heads); the log's time only moves forward.
    """
    last = conn.execute(select(func.max(heads_t.c.timestamp))).scalar()
    return max(now, int(last)) if last is not None else now


def publish_tree_head(
    conn: Connection,
    *,
    account: LocalAccount,
    domain: Domain,
    now: int,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
) -> TreeHead | None:
    """Sign and store a head for the current size, unless that size already has one.

    The head's C2SP checkpoint (same size and root) is signed with ``checkpoint_signer`` and
    stored in the same transaction (``registry.checkpoints``): no head without its checkpoint.

    With ``state_map`` (issue 14) the head first gets its last leaf: the STATE_COMMITMENT of
    the state map over every leaf before it, unless the log's last leaf already is one (so
    head N ends with the commitment at leaf N - 1 covering leaves [0, N - 1)). Heads signed
    before issue 14 do not end in one; the first head after it covers the whole log.
    ``state_map=None`` signs the bare log, for the benchmark's peer only
    (``Registry(state_map=False)``).
    """
    size = tree_size(conn)
    if size == 0:
        return None
    signer = bytes.fromhex(account.address[2:])
    if state_map is not None:
        size = state_map.append_commitment(conn, actor=signer, now=now)
    existing = conn.execute(select(heads_t.c.tree_size).where(heads_t.c.tree_size == size)).first()
    if existing is not None:
        return None
    root = root_at(conn, size)
    signature = sign(PRIMARY_TYPE, tree_head_message(size, root, now), domain, account.key)
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
    store_checkpoint(conn, checkpoint_signer, size=size, root=root, now=now)
    return TreeHead(
        tree_size=size, root=root, timestamp=now, signature=signature, signer=signer, domain=domain
    )


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


def _check_size(conn: Connection, size: int) -> int:
    """Refuse a size the log does not have (THREATS 9); returns the log's current size."""
    current = tree_size(conn)
    if size < 0 or size > current:
        raise ProofOutOfRange(f"tree size {size} is out of range: the log has {current} leaves")
    return current


def _read_plan(
    conn: Connection, plan: merkle.ProofPlan, current: int, cache: TileCache | None
) -> list[bytes]:
    store = TileStore(conn, tiles_t)
    if cache is None:
        return tiles.assemble_from_tiles(plan, store.load(tiles.tiles_for(plan)))
    return tiles.assemble_from_tiles(plan, store.for_plan(plan, current, cache))


# NOTE: pass a ``cache`` only from read transactions (see TileCache).


def root_at(conn: Connection, size: int, cache: TileCache | None = None) -> bytes:
    """The root of the log's first ``size`` leaves, from at most one tile per level."""
    current = _check_size(conn, size)
    if size == 0:
        return merkle.empty_root()
    return _read_plan(conn, merkle.root_plan(size), current, cache)[0]


def inclusion_proof(
    conn: Connection, leaf_index: int, size: int, cache: TileCache | None = None
) -> list[bytes]:
    current = _check_size(conn, size)
    if not 0 <= leaf_index < size:
        raise ProofOutOfRange(f"leaf index {leaf_index} is out of range for tree size {size}")
    return _read_plan(conn, merkle.inclusion_plan(leaf_index, size), current, cache)


def consistency_proof(
    conn: Connection, size1: int, size2: int, cache: TileCache | None = None
) -> list[bytes]:
    current = _check_size(conn, size2)
    if not 0 <= size1 <= size2:
        raise ProofOutOfRange(f"tree size {size1} is out of range for a proof to size {size2}")
    return _read_plan(conn, merkle.consistency_plan(size1, size2), current, cache)


def batch_inclusion_proof(
    conn: Connection, record_id: int, position: int, count: int
) -> list[bytes]:
    """The proof that a batch's fingerprint at ``position`` is under its signed items root."""
    if not 0 <= position < count:
        raise ProofOutOfRange(f"position {position} is out of range for a batch of {count}")
    plan = merkle.inclusion_plan(position, count)
    loaded = TileStore(conn, batch_tiles_t, record_id).load(tiles.tiles_for(plan))
    return tiles.assemble_from_tiles(plan, loaded)


__all__ = [
    "TreeHead",
    "batch_inclusion_proof",
    "consistency_proof",
    "inclusion_proof",
    "integrate_entry",
    "integrate_queue",
    "latest_tree_head",
    "lock_log",
    "publish_tree_head",
    "root_at",
    "tree_head_at",
    "tree_size",
]
