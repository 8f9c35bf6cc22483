"""The stored shape of the log's Merkle tree: tiles of 256 nodes with all their inner levels.

As C2SP tlog-tiles / Tessera, the tree is cut into tiles 8 levels high so that a root or a
proof needs one query for a handful of rows, and appending a million leaves writes ~4,000
rows. Unlike tlog-tiles a tile also stores its 7 inner levels, so a proof is only slicing.
The append algorithm here is the one the database-backed log runs; MemoryTree runs it in a
dict for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from registry.errors import InvalidInput, ProofOutOfRange
from registry.merkle import (
    HASH_SIZE,
    NodeId,
    ProofPlan,
    consistency_plan,
    fold,
    hash_pairs,
    inclusion_plan,
    root_plan,
)

TILE_HEIGHT = 8
"""Tree levels stored per tile level: tile level L holds tree levels 8L to 8L + 7."""

TILE_WIDTH = 1 << TILE_HEIGHT
"""Nodes in a full tile's bottom row."""

TileId = tuple[int, int]
"""A tile as (tile level, tile index)."""

# _OFFSETS[width][k]: first hash of tile level k in a tile of that width; [width][8]: total.
_OFFSETS: tuple[tuple[int, ...], ...] = tuple(
    tuple(sum(width >> j for j in range(k)) for k in range(TILE_HEIGHT + 1))
    for width in range(TILE_WIDTH + 1)
)


def tile_hash_count(width: int) -> int:
    """Hashes stored in a tile whose bottom row has width nodes (510 when full)."""
    return _OFFSETS[width][TILE_HEIGHT]


@dataclass(frozen=True, slots=True)
class Tile:
    """Tile (level, index): the nodes above bottom-row nodes [index*256, index*256 + width).

    ``hashes`` holds level k of the tile (tree level 8*level + k, width >> k nodes: those
    whose both children are in the row) for k = 0..7, concatenated in that order. The top of a
    full tile is not stored here: it is bottom-row node ``index`` of tile level ``level + 1``.
    Lengths are validated; the hashes themselves are trusted (they come from build_tile).
    """

    level: int
    index: int
    width: int
    hashes: bytes

    def __post_init__(self) -> None:
        if self.level < 0 or self.index < 0:
            raise InvalidInput(f"tile ({self.level}, {self.index}) has a negative coordinate")
        if not 1 <= self.width <= TILE_WIDTH:
            raise InvalidInput(f"tile width {self.width} is outside [1, {TILE_WIDTH}]")
        expected = HASH_SIZE * tile_hash_count(self.width)
        if len(self.hashes) != expected:
            raise InvalidInput(
                f"tile ({self.level}, {self.index}) of width {self.width} has "
                f"{len(self.hashes)} bytes of hashes, expected {expected}"
            )

    @property
    def id(self) -> TileId:
        """(tile level, tile index)."""
        return (self.level, self.index)

    @property
    def is_full(self) -> bool:
        """Whether all 256 bottom-row nodes are present (it will never change again)."""
        return self.width == TILE_WIDTH

    def row(self, level_in_tile: int) -> list[bytes]:
        """The hashes of one level of the tile, left to right."""
        if not 0 <= level_in_tile < TILE_HEIGHT:
            raise InvalidInput(f"level {level_in_tile} is outside a tile")
        offsets = _OFFSETS[self.width]
        start, end = offsets[level_in_tile] * HASH_SIZE, offsets[level_in_tile + 1] * HASH_SIZE
        hashes = self.hashes
        return [hashes[i : i + HASH_SIZE] for i in range(start, end, HASH_SIZE)]

    def bottom_row(self) -> list[bytes]:
        """The width hashes of tree level 8 * level this tile stores."""
        return self.row(0)

    def node(self, level_in_tile: int, index_in_tile: int) -> bytes:
        """One stored hash, by its level and position inside the tile."""
        if not 0 <= level_in_tile < TILE_HEIGHT:
            raise InvalidInput(f"level {level_in_tile} is outside a tile")
        if not 0 <= index_in_tile < self.width >> level_in_tile:
            raise ProofOutOfRange(
                f"tile ({self.level}, {self.index}) of width {self.width} does not hold "
                f"node {index_in_tile} of its level {level_in_tile}"
            )
        start = (_OFFSETS[self.width][level_in_tile] + index_in_tile) * HASH_SIZE
        return self.hashes[start : start + HASH_SIZE]


def _check_hashes(hashes: Sequence[bytes], what: str) -> None:
    if hashes and set(map(len, hashes)) != {HASH_SIZE}:
        bad = next(i for i, h in enumerate(hashes) if len(h) != HASH_SIZE)
        raise InvalidInput(f"{what} {bad} has {len(hashes[bad])} bytes, expected {HASH_SIZE}")


def build_tile(level: int, index: int, bottom_row: Sequence[bytes]) -> Tile:
    """The tile whose bottom row is bottom_row, with its inner levels computed."""
    _check_hashes(bottom_row, "bottom-row hash")
    rows = [list(bottom_row)]
    for _ in range(1, TILE_HEIGHT):
        # hash_pairs drops an odd last node: a tile stores only nodes whose both children exist.
        rows.append(hash_pairs(rows[-1]))
    return Tile(level, index, len(bottom_row), b"".join(h for row in rows for h in row))


def tile_of(node: NodeId) -> TileId:
    """The tile that stores a perfect-subtree node."""
    level, index = node
    if level < 0 or index < 0:
        raise InvalidInput(f"({level}, {index}) is not a node of a tree")
    tile_level, level_in_tile = divmod(level, TILE_HEIGHT)
    return (tile_level, index >> (TILE_HEIGHT - level_in_tile))


def node_hash(tile: Tile, node: NodeId) -> bytes:
    """The hash of node, read from the tile that stores it."""
    level, index = node
    if tile_of(node) != tile.id:
        raise InvalidInput(f"node {node} is not stored in tile {tile.id}")
    level_in_tile = level - tile.level * TILE_HEIGHT
    return tile.node(level_in_tile, index & ((TILE_WIDTH >> level_in_tile) - 1))


def edge_tiles(tree_size: int) -> list[TileId]:
    """The partial right-edge tiles an append to a tree of tree_size extends, bottom up."""
    if tree_size < 0:
        raise InvalidInput(f"tree size {tree_size} is negative")
    result = []
    # count: complete nodes at the bottom tree level of each tile level.
    count, tile_level = tree_size, 0
    while count:
        if count % TILE_WIDTH:
            result.append((tile_level, count // TILE_WIDTH))
        count //= TILE_WIDTH
        tile_level += 1
    return result


def append_leaves(
    tree_size: int, edge: Mapping[TileId, Tile], leaf_hashes: Sequence[bytes]
) -> list[Tile]:
    """Every tile created or changed by appending leaf_hashes to a tree of tree_size.

    edge must hold the tiles named by edge_tiles(tree_size). Each tile level works on one
    row starting at its first touched tile: the old partial tile's levels are reused, only
    the new nodes are hashed, and the tops of the tiles that became full (level 8 of the row)
    are the new bottom-row nodes of the next tile level.
    """
    if tree_size < 0:
        raise InvalidInput(f"tree size {tree_size} is negative")
    _check_hashes(leaf_hashes, "leaf hash")
    changed: list[Tile] = []
    new_nodes = list(leaf_hashes)
    count, tile_level = tree_size, 0
    while new_nodes:
        first, width = divmod(count, TILE_WIDTH)
        if width:
            old = edge.get((tile_level, first))
            if old is None or old.width != width:
                found = "missing" if old is None else f"of width {old.width}"
                raise InvalidInput(
                    f"edge tile ({tile_level}, {first}) of width {width} is needed, got {found}"
                )
            rows = [old.bottom_row() + new_nodes]
            for k in range(1, TILE_HEIGHT + 1):
                kept = old.row(k) if k < TILE_HEIGHT else []
                rows.append(kept + hash_pairs(rows[k - 1], 2 * len(kept)))
        else:
            rows = [new_nodes]
            for k in range(1, TILE_HEIGHT + 1):
                rows.append(hash_pairs(rows[k - 1]))
        # One blob per level, then each tile is the join of 8 slices.
        blobs = [b"".join(row) for row in rows[:TILE_HEIGHT]]
        total = len(rows[0])
        for j, start in enumerate(range(0, total, TILE_WIDTH)):
            tile_width = min(TILE_WIDTH, total - start)
            parts = []
            for k, blob in enumerate(blobs):
                begin = (j * (TILE_WIDTH >> k)) * HASH_SIZE
                parts.append(blob[begin : begin + (tile_width >> k) * HASH_SIZE])
            changed.append(Tile(tile_level, first + j, tile_width, b"".join(parts)))
        new_nodes = rows[TILE_HEIGHT]
        count, tile_level = first, tile_level + 1
    return changed


def tiles_for(plan: ProofPlan) -> set[TileId]:
    """The tiles to load for a plan: one query for all of them."""
    # Inline tile_of: this runs for every proof served (plans hold trusted node ids).
    return {
        (level >> 3, index >> (TILE_HEIGHT - (level & 7)))
        for element in plan.elements
        for level, index in element
    }


class TileSource(Protocol):
    """Anything that hands out tiles by id: a dict, or a cache-backed loader."""

    def get(self, key: TileId, /) -> Tile | None: ...


def assemble_from_tiles(plan: ProofPlan, tiles: TileSource) -> list[bytes]:
    """The proof (or [root]) of plan, read from the tiles named by tiles_for(plan).

    NOTE: this is ``plan.assemble`` over ``node_hash`` with the arithmetic inlined: it runs
    for every proof served, and the generic path spent more time in calls than in reading
    (the property tests compare both with the reference tree).
    """
    offsets = _OFFSETS
    resolved: dict[TileId, Tile | None] = {}
    result: list[bytes] = []
    append = result.append
    for element in plan.elements:
        parts = []
        for level, index in element:
            level_in_tile = level & 7
            shift = TILE_HEIGHT - level_in_tile
            tile_id = (level >> 3, index >> shift)
            tile = resolved.get(tile_id)
            if tile is None:
                # One lookup per tile (a proof's ~20 nodes sit in ~5 tiles): ``tiles`` may
                # be a cache-backed loader whose ``get`` is Python code.
                tile = resolved[tile_id] = tiles.get(tile_id)
            if tile is None:
                raise InvalidInput(f"tile {tile_id} holding node {(level, index)} was not supplied")
            index_in_tile = index & ((1 << shift) - 1)
            width = tile.width
            if index_in_tile >= width >> level_in_tile:
                raise ProofOutOfRange(f"tile of width {width} does not hold node {(level, index)}")
            start = (offsets[width][level_in_tile] + index_in_tile) << 5
            parts.append(tile.hashes[start : start + HASH_SIZE])
        # Nearly every element is one stored node: skip the call for it.
        append(parts[0] if len(parts) == 1 else fold(parts))
    return result


class MemoryTree:
    """An in-memory log tree stored as tiles: the database-backed log's algorithm, in a dict."""

    __slots__ = ("_size", "_tiles")

    def __init__(self) -> None:
        self._tiles: dict[TileId, Tile] = {}
        self._size = 0

    @property
    def size(self) -> int:
        """Number of leaves in the tree."""
        return self._size

    @property
    def tiles(self) -> Mapping[TileId, Tile]:
        """The stored tiles, by id (read-only view for tests)."""
        return self._tiles

    def append(self, leaf_hashes: Sequence[bytes]) -> list[Tile]:
        """Append leaf hashes; returns the tiles written (what the database would upsert)."""
        edge = {tile_id: self._tiles[tile_id] for tile_id in edge_tiles(self._size)}
        changed = append_leaves(self._size, edge, leaf_hashes)
        for tile in changed:
            self._tiles[tile.id] = tile
        self._size += len(leaf_hashes)
        return changed

    def _tree_size(self, tree_size: int | None) -> int:
        if tree_size is None:
            return self._size
        if not 0 <= tree_size <= self._size:
            raise ProofOutOfRange(f"tree size {tree_size} is outside [0, {self._size}]")
        return tree_size

    def _assemble(self, plan: ProofPlan) -> list[bytes]:
        return assemble_from_tiles(plan, {t: self._tiles[t] for t in tiles_for(plan)})

    def root(self, tree_size: int | None = None) -> bytes:
        """The root at tree_size (default: the current size)."""
        [root] = self._assemble(root_plan(self._tree_size(tree_size)))
        return root

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        """The inclusion proof of leaf_index in the tree of tree_size (default: current)."""
        return self._assemble(inclusion_plan(leaf_index, self._tree_size(tree_size)))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The consistency proof from size1 to size2 (default: current)."""
        return self._assemble(consistency_plan(size1, self._tree_size(size2)))
