"""The stored shape of a tree: tiles in the database, a cache of immutable ones, an appender.

A tile of width w is immutable: the log only appends, so the tile (level, index) with w
bottom-row hashes has the same bytes forever. That makes every read cacheable by
(level, index, width), partial right-edge tiles included, as C2SP tlog-tiles relies on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from registry import merkle, tiles
from registry.models import BatchTile, TreeTile
from registry.tiles import Tile

TileKey = tuple[int, int]

tiles_t: Table = TreeTile.__table__  # type: ignore[attr-defined]
batch_tiles_t: Table = BatchTile.__table__  # type: ignore[attr-defined]

#: Tiles a read cache keeps (a full tile is 16 KiB: 64 MiB at most). Enough for every
#: level-0 tile of a 10^6-leaf log, and for the hot upper levels of a much larger one.
TILE_CACHE_SIZE = 4_096


def tile_width(tile: TileKey, tree_size: int) -> int:
    """The width tile (level, index) has in a tree of ``tree_size`` leaves (0: absent)."""
    level, index = tile
    row = tree_size >> (tiles.TILE_HEIGHT * level)
    return max(0, min(tiles.TILE_WIDTH, row - index * tiles.TILE_WIDTH))


class TileCache:
    """A bounded LRU of tiles keyed by (level, index, width), shared by read transactions.

    NOTE: fill it only from committed reads. A write transaction sees its own uncommitted
    tiles; caching one of those and then rolling back would serve hashes that never existed.
    """

    def __init__(self, capacity: int = TILE_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._tiles: OrderedDict[tuple[int, int, int], Tile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: TileKey, width: int) -> Tile | None:
        # No lock on the hit path: dict reads are atomic, and a tile evicted between the
        # read and the move is simply not refreshed.
        cache_key = (key[0], key[1], width)
        tile = self._tiles.get(cache_key)
        if tile is not None:
            try:  # noqa: SIM105 - suppress() costs ~1 us, and this runs per tile per proof
                self._tiles.move_to_end(cache_key)
            except KeyError:
                pass
        return tile

    def put(self, tile: Tile) -> None:
        with self._lock:
            self._tiles[(tile.level, tile.index, tile.width)] = tile
            self._tiles.move_to_end((tile.level, tile.index, tile.width))
            while len(self._tiles) > self._capacity:
                self._tiles.popitem(last=False)


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

    def load_cached(
        self, keys: Iterable[TileKey], tree_size: int, cache: TileCache
    ) -> dict[TileKey, Tile]:
        """``load`` through ``cache``, for a tree known to hold ``tree_size`` leaves."""
        found: dict[TileKey, Tile] = {}
        missing = []
        for key in keys:
            tile = cache.get(key, tile_width(key, tree_size))
            if tile is None:
                missing.append(key)
            else:
                found[key] = tile
        for key, tile in self.load(missing).items():
            cache.put(tile)
            found[key] = tile
        return found

    def for_plan(self, plan: merkle.ProofPlan, tree_size: int, cache: TileCache) -> PlanTiles:
        """The tiles of ``plan``, from ``cache`` first, the rest in one query when needed."""
        return PlanTiles(self, plan, tree_size, cache)

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


class PlanTiles:
    """Tiles for one proof plan: cache hits are served as asked, and the first miss loads
    every uncached tile of the plan in one query (so a warm cache costs no set-up pass)."""

    def __init__(
        self, store: TileStore, plan: merkle.ProofPlan, tree_size: int, cache: TileCache
    ) -> None:
        self._store = store
        self._plan = plan
        self._tree_size = tree_size
        self._cache = cache
        self._seen: dict[TileKey, Tile] = {}
        self._loaded = False

    def get(self, key: TileKey, /) -> Tile | None:
        tile = self._seen.get(key)
        if tile is None and not self._loaded:
            tile = self._cache.get(key, tile_width(key, self._tree_size))
            if tile is None:
                self._loaded = True
                self._seen.update(
                    self._store.load_cached(
                        tiles.tiles_for(self._plan), self._tree_size, self._cache
                    )
                )
                tile = self._seen.get(key)
            else:
                self._seen[key] = tile
        return tile
