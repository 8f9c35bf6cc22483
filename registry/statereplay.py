"""Replaying the log into the state map: the goods' entries of a range of leaves, read in
slices (rows by leaf index, leaf hashes from the level-0 tiles), each commitment met checked.

Used by ``registry.statecommit`` to catch the in-memory map up with the database, and to
rebuild it as of an older head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import Connection

from registry.errors import LogCorrupt
from registry.fingerprints import FINGERPRINT_SIZE, to_good_type
from registry.leaf import NO_GOOD, EntryKind
from registry.log import entries_t
from registry.merkle import HASH_SIZE
from registry.statemap import MAP_KEY_DOMAIN
from registry.statemaptree import MapSnapshot, StateMap
from registry.statemapvalues import collector_paused
from registry.tiles import TILE_WIDTH
from registry.tilestore import tiles_t

REPLAY_LEAVES = 65_536
"""Leaves read from the database per query of a replay: bounds its memory, not its work."""

OnCommitment = Callable[[int, MapSnapshot], None]
"""What a replay does with the snapshot at each commitment it meets (its leaf index)."""

_STATE_COMMITMENT = int(EntryKind.STATE_COMMITMENT)


def check_root(covers: int, computed: bytes, logged: bytes) -> None:
    if computed != logged:
        raise LogCorrupt(
            f"the state commitment at leaf {covers} holds map root 0x{logged.hex()}, but the "
            f"log's entries before it give 0x{computed.hex()}"
        )


def replay(
    conn: Connection,
    tree: StateMap,
    start: int,
    end: int,
    on_commitment: OnCommitment,
) -> None:
    """Append the goods' entries at leaves [start, end) to ``tree`` in log order; at each
    STATE_COMMITMENT met, check its root against the map's and hand over a snapshot."""
    with collector_paused():
        _replay_slices(conn, tree, start, end, on_commitment)


def _replay_slices(
    conn: Connection, tree: StateMap, start: int, end: int, on_commitment: OnCommitment
) -> None:
    for first in range(start, end, REPLAY_LEAVES):
        last = min(end, first + REPLAY_LEAVES)
        rows = _rows(conn, first, last)
        # The leaf index is unique: the right count, first and last mean none is missing.
        if len(rows) != last - first or rows[0][0] != first or rows[-1][0] != last - 1:
            raise LogCorrupt(f"the log's entries do not hold every leaf from {first} to {last - 1}")
        leaf_hashes = _leaf_hashes(conn, first, last)
        # NOTE: comprehensions over the whole slice, not a loop per row: a bulk batch of 10^6
        # goods is replayed here, and the map's budget is half the ingest's time.
        cut = [i for i, row in enumerate(rows) if row[1] == _STATE_COMMITMENT]
        begin = 0
        for at in [*cut, len(rows)]:
            tree.append(_good_entries(rows[begin:at], first, leaf_hashes))
            if at < len(rows):
                leaf_index, _, _, root = rows[at]
                snapshot = tree.snapshot()
                check_root(leaf_index, snapshot.root, bytes(root))
                on_commitment(leaf_index, snapshot)
            begin = at + 1


def _good_entries(
    rows: list[tuple[int, int, int, bytes]], first: int, leaf_hashes: bytes
) -> list[tuple[bytes, int, bytes]]:
    """(map key, leaf index, leaf hash) of the goods' entries among rows (a replay's slice)."""
    prefixes = {
        good_type: MAP_KEY_DOMAIN + bytes([to_good_type(good_type)])
        for good_type in {row[2] for row in rows}
        if good_type != NO_GOOD
    }
    goods = [row for row in rows if row[2] != NO_GOOD]
    if goods and {len(row[3]) for row in goods} != {FINGERPRINT_SIZE}:
        raise LogCorrupt(f"an entry after leaf {first} has no 32-byte fingerprint")
    sha256 = hashlib.sha256
    return [
        (
            sha256(prefixes[good_type] + fingerprint).digest(),
            leaf_index,
            leaf_hashes[(leaf_index - first) * HASH_SIZE : (leaf_index - first + 1) * HASH_SIZE],
        )
        for leaf_index, _, good_type, fingerprint in goods
    ]


def _rows(conn: Connection, first: int, last: int) -> list[tuple[int, int, int, bytes]]:
    """(leaf_index, kind, good_type, fingerprint) of the leaves [first, last), in order."""
    # NOTE: driver-level, as the bulk writer: a million rows through SQLAlchemy's result
    # machinery cost more than the map's work on them. Both drivers give int and bytes.
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"SELECT leaf_index, kind, good_type, fingerprint FROM {entries_t.name} "
            f"WHERE leaf_index >= {marker} AND leaf_index < {marker} ORDER BY leaf_index",
            (first, last),
        )
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _leaf_hashes(conn: Connection, first: int, last: int) -> bytes:
    """The leaf hashes of leaves [first, last) from the level-0 tiles, concatenated."""
    if first == last:
        return b""
    low, high = first // TILE_WIDTH, (last - 1) // TILE_WIDTH
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            f"SELECT tile_index, width, hashes FROM {tiles_t.name} "
            f"WHERE tile_level = 0 AND tile_index >= {marker} AND tile_index <= {marker} "
            "ORDER BY tile_index",
            (low, high),
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    parts = []
    for expected, (tile_index, width, hashes) in enumerate(rows, start=low):
        if tile_index != expected or (tile_index < high and width != TILE_WIDTH):
            raise LogCorrupt(f"the log's level-0 tile {expected} is missing or partial")
        parts.append(bytes(hashes[: width * HASH_SIZE]))
    joined = b"".join(parts)
    start = (first - low * TILE_WIDTH) * HASH_SIZE
    needed = (last - first) * HASH_SIZE
    if len(rows) != high - low + 1 or len(joined) < start + needed:
        raise LogCorrupt(f"the log's tiles do not hold leaves {first} to {last - 1}")
    return joined[start : start + needed]


__all__ = ["REPLAY_LEAVES", "OnCommitment", "check_root", "replay"]
