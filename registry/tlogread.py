"""The C2SP tiles and entry bundles of the log, read from its own storage (``registry.tlogtiles``).

A tile is a slice of a stored tile (``tree_tiles``); an entry bundle is the 224-byte leaf data
of ``entries`` rows, rebuilt from their columns by ``encode_leaf`` as every proof is. The
caller names the tree size (its published checkpoint's) and owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, select

from registry.checkpoints import latest_published_checkpoint
from registry.errors import LogCorrupt, NotFound
from registry.leaf import encode_leaf
from registry.log import entries_t
from registry.tiles import TILE_WIDTH, Tile
from registry.tilestore import TileStore, tiles_t
from registry.tlogtiles import TileRef, encode_bundle, tile_bytes, within

#: Resources a range read fetches per query: 64 full tiles are ~1 MiB of stored tiles, 64
#: bundles 16,384 entries (~3.6 MiB of leaves).
READ_CHUNK = 64


def latest_published(conn: Connection) -> tuple[int, bytes] | None:
    """The latest published checkpoint's tree size and its served bytes (its note: the log's
    signatures and the witnesses' cosignatures), or None before the first."""
    signed = latest_published_checkpoint(conn)
    if signed is None:
        return None
    return signed.checkpoint.size, signed.to_bytes()


def _check_within(ref: TileRef, tree_size: int) -> None:
    if not within(ref, tree_size):
        raise NotFound(f"{ref.path()} is beyond the published checkpoint (size {tree_size:,})")


def read_tile(conn: Connection, ref: TileRef, tree_size: int) -> bytes:
    """The bytes of tile ref (or entry bundle ref) of the tree of tree_size leaves."""
    _check_within(ref, tree_size)
    if ref.level is None:
        [bundle] = read_bundles(conn, [ref])
        return bundle
    stored = TileStore(conn, tiles_t).load([(ref.level, ref.index)]).get((ref.level, ref.index))
    if stored is None:
        raise LogCorrupt(f"the stored tree has no tile ({ref.level}, {ref.index})")
    return tile_bytes(stored, ref)


def read_tiles(conn: Connection, refs: Sequence[TileRef]) -> list[bytes]:
    """The bytes of tiles refs (one level, ascending indices), a range query per chunk."""
    result = []
    for start in range(0, len(refs), READ_CHUNK):
        chunk = refs[start : start + READ_CHUNK]
        level = chunk[0].level
        if level is None or any(ref.level != level for ref in chunk):
            raise ValueError("read_tiles reads tiles of one level")
        c = tiles_t.c
        rows = conn.execute(
            select(c.tile_index, c.width, c.hashes)
            .where(
                c.tile_level == level,
                c.tile_index >= chunk[0].index,
                c.tile_index <= chunk[-1].index,
            )
            .order_by(c.tile_index)
        )
        stored = {int(i): Tile(level, int(i), int(w), bytes(h)) for i, w, h in rows}
        for ref in chunk:
            tile = stored.get(ref.index)
            if tile is None:
                raise LogCorrupt(f"the stored tree has no tile ({level}, {ref.index})")
            result.append(tile_bytes(tile, ref))
    return result


def read_bundles(conn: Connection, refs: Sequence[TileRef]) -> list[bytes]:
    """The entry bundles refs (ascending indices), their entries read a chunk at a time."""
    result = []
    for start in range(0, len(refs), READ_CHUNK):
        chunk = refs[start : start + READ_CHUNK]
        first = chunk[0].index * TILE_WIDTH
        leaves = dict(_leaves(conn, first, chunk[-1].end))
        for ref in chunk:
            begin = ref.index * TILE_WIDTH
            try:
                entries = [leaves[i] for i in range(begin, begin + ref.width)]
            except KeyError as exc:
                raise LogCorrupt(f"the log has no entry at leaf {exc.args[0]}") from None
            result.append(encode_bundle(entries))
    return result


def _leaves(conn: Connection, begin: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(leaf_index, leaf data) of the sequenced entries in [begin, end)."""
    c = entries_t.c
    rows = conn.execute(
        select(c.leaf_index, c.kind, c.good_type, c.fingerprint, c.actor, c.payload_hash)
        .add_columns(c.timestamp)
        .where(c.leaf_index >= begin, c.leaf_index < end)
        .order_by(c.leaf_index)
    )
    for leaf_index, kind, good_type, fingerprint, actor, payload_hash, timestamp in rows:
        leaf = encode_leaf(
            kind, good_type, bytes(fingerprint), bytes(actor), bytes(payload_hash), timestamp
        )
        yield int(leaf_index), leaf
