"""Tile layout, right-edge bookkeeping and the tiled MemoryTree against the reference."""

from __future__ import annotations

import hashlib
import random

import pytest

from registry.errors import InvalidInput, ProofOutOfRange
from registry.merkle import (
    HASH_SIZE,
    consistency_plan,
    hash_children,
    inclusion_plan,
    root_from_leaf_hashes,
    root_plan,
    verify_inclusion,
)
from registry.tiles import (
    TILE_WIDTH,
    MemoryTree,
    Tile,
    append_leaves,
    assemble_from_tiles,
    build_tile,
    edge_tiles,
    node_hash,
    tile_hash_count,
    tile_of,
    tiles_for,
)
from tests.registry import merkle_reference as ref


def _leaves(count: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(count)]


def _built(leaf_hashes: list[bytes], chunk: int) -> MemoryTree:
    tree = MemoryTree()
    for start in range(0, len(leaf_hashes), chunk):
        tree.append(leaf_hashes[start : start + chunk])
    return tree


# -- layout -------------------------------------------------------------------------------------


def test_full_tile_layout() -> None:
    # Levels 0..7 of a full tile: 256 + 128 + ... + 2 hashes; its top (level 8) lives in the
    # tile level above.
    assert tile_hash_count(TILE_WIDTH) == 510
    tile = build_tile(0, 0, _leaves(TILE_WIDTH))
    assert len(tile.hashes) == 16_320
    offsets = [sum(TILE_WIDTH >> j for j in range(k)) for k in range(8)]
    assert offsets == [0, 256, 384, 448, 480, 496, 504, 508]
    for k, offset in enumerate(offsets):
        assert tile.row(k)[0] == tile.hashes[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
        assert len(tile.row(k)) == TILE_WIDTH >> k


@pytest.mark.parametrize(("width", "count"), [(1, 1), (2, 3), (3, 4), (5, 8), (255, 502)])
def test_partial_tile_sizes(width: int, count: int) -> None:
    assert tile_hash_count(width) == count
    assert len(build_tile(3, 7, _leaves(width)).hashes) == count * HASH_SIZE


def test_tile_inner_levels_are_perfect_subtrees() -> None:
    row = _leaves(200)
    tile = build_tile(0, 0, row)
    assert tile.bottom_row() == row
    assert tile.node(1, 0) == hash_children(row[0], row[1])
    for k in range(8):
        for i in range(200 >> k):
            assert tile.node(k, i) == ref.mth(row[i << k : (i + 1) << k])


@pytest.mark.parametrize(
    ("level", "index", "width", "size"),
    [(0, 0, 0, 0), (0, 0, 257, 257 * 32), (0, 0, 4, 4 * 32), (-1, 0, 1, 32), (0, -1, 1, 32)],
)
def test_tile_rejects_inconsistent_shapes(level: int, index: int, width: int, size: int) -> None:
    with pytest.raises(InvalidInput):
        Tile(level, index, width, b"\x00" * size)


def test_tile_refuses_nodes_it_does_not_hold() -> None:
    tile = build_tile(0, 0, _leaves(5))
    with pytest.raises(ProofOutOfRange):
        tile.node(0, 5)
    with pytest.raises(ProofOutOfRange):
        tile.node(1, 2)  # leaves 4..5: leaf 5 is missing
    with pytest.raises(InvalidInput):
        tile.node(8, 0)
    with pytest.raises(InvalidInput):
        node_hash(tile, (0, 256))


@pytest.mark.parametrize(
    ("node", "tile_id"),
    [
        ((0, 0), (0, 0)),
        ((0, 255), (0, 0)),
        ((0, 256), (0, 1)),
        ((7, 1), (0, 0)),
        ((7, 2), (0, 1)),
        ((8, 0), (1, 0)),
        ((8, 300), (1, 1)),
        ((15, 1), (1, 0)),
        ((16, 0), (2, 0)),
    ],
)
def test_tile_of(node: tuple[int, int], tile_id: tuple[int, int]) -> None:
    assert tile_of(node) == tile_id


@pytest.mark.parametrize(
    ("tree_size", "expected"),
    [
        (0, []),
        (1, [(0, 0)]),
        (255, [(0, 0)]),
        (256, [(1, 0)]),
        (257, [(0, 1), (1, 0)]),
        (65_535, [(0, 255), (1, 0)]),
        (65_536, [(2, 0)]),
        (65_537, [(0, 256), (2, 0)]),
        (1_000_000, [(0, 3906), (1, 15), (2, 0)]),
    ],
)
def test_edge_tiles(tree_size: int, expected: list[tuple[int, int]]) -> None:
    assert edge_tiles(tree_size) == expected


# -- appending ----------------------------------------------------------------------------------


def test_append_needs_the_edge_tiles() -> None:
    tree = _built(_leaves(300), 300)
    with pytest.raises(InvalidInput, match=r"edge tile \(0, 1\) of width 44 is needed"):
        append_leaves(300, {}, _leaves(1, seed=1))
    wrong = {(0, 1): build_tile(0, 1, _leaves(43)), (1, 0): tree.tiles[(1, 0)]}
    with pytest.raises(InvalidInput, match="got of width 43"):
        append_leaves(300, wrong, _leaves(1, seed=1))
    with pytest.raises(InvalidInput, match="leaf hash 0 has 31 bytes"):
        append_leaves(0, {}, [b"\x00" * 31])


@pytest.mark.parametrize("tree_size", [65_535, 65_536, 70_000])
def test_appending_one_leaf_touches_one_tile_per_level(tree_size: int) -> None:
    tree = _built(_leaves(tree_size), 4096)
    changed = tree.append(_leaves(1, seed=1))
    levels = len({tile_level for tile_level, _ in tree.tiles})
    assert 1 <= len(changed) <= levels
    assert len({tile.level for tile in changed}) == len(changed)
    assert tree.root() == root_from_leaf_hashes([*_leaves(tree_size), *_leaves(1, seed=1)])


def test_tiles_do_not_depend_on_batching() -> None:
    leaf_hashes = _leaves(3 * TILE_WIDTH * 2 + 77)
    rng = random.Random(7)
    tree = MemoryTree()
    start = 0
    while start < len(leaf_hashes):
        chunk = rng.choice([1, 2, 3, 255, 256, 257, 600])
        tree.append(leaf_hashes[start : start + chunk])
        start += chunk
    assert dict(tree.tiles) == dict(_built(leaf_hashes, len(leaf_hashes)).tiles)
    for tile in tree.tiles.values():
        assert build_tile(tile.level, tile.index, tile.bottom_row()) == tile


def test_full_tiles_feed_the_level_above() -> None:
    tree = _built(_leaves(2 * TILE_WIDTH), TILE_WIDTH * 2)
    for index in range(2):
        tile = tree.tiles[(0, index)]
        top = hash_children(tile.node(7, 0), tile.node(7, 1))
        assert tree.tiles[(1, 0)].node(0, index) == top


# -- MemoryTree ---------------------------------------------------------------------------------


def test_memory_tree_matches_the_reference_at_every_size() -> None:
    leaf_hashes = _leaves(600)
    tree = _built(leaf_hashes, 97)
    for size in range(601):
        assert tree.root(size) == ref.mth(leaf_hashes[:size])


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 512, 513, 600])
def test_memory_tree_proofs_match_the_reference(size: int) -> None:
    leaf_hashes = _leaves(600)
    tree = _built(leaf_hashes, 600)
    for index in sorted(i for i in {0, 1, size // 2, size - 2, size - 1} if 0 <= i < size):
        assert tree.inclusion_proof(index, size) == ref.path(index, leaf_hashes[:size])
    for size1 in sorted(s for s in {1, 2, size // 3, size - 1, size} if 0 < s <= size):
        assert tree.consistency_proof(size1, size) == ref.proof(size1, leaf_hashes[:size])


def test_memory_tree_out_of_range() -> None:
    tree = _built(_leaves(10), 10)
    with pytest.raises(ProofOutOfRange):
        tree.root(11)
    with pytest.raises(ProofOutOfRange):
        tree.inclusion_proof(10)
    with pytest.raises(ProofOutOfRange):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ProofOutOfRange):
        tree.consistency_proof(5, 11)
    with pytest.raises(ProofOutOfRange):
        tree.consistency_proof(6, 5)


def test_a_proof_needs_a_handful_of_tiles() -> None:
    tree_size = 70_000
    tree = _built(_leaves(tree_size), 10_000)
    tile_levels = len(edge_tiles(tree_size))
    plans = [inclusion_plan(i, tree_size) for i in (0, 255, 256, 65_535, 65_536, 69_999)]
    plans += [consistency_plan(12_345, tree_size), consistency_plan(65_537, tree_size)]
    for plan in plans:
        assert len(tiles_for(plan)) <= 3 * tile_levels
        assert tiles_for(plan) <= set(tree.tiles)
    assert len(tiles_for(root_plan(tree_size))) <= tile_levels


def test_assemble_from_tiles_reports_a_missing_tile() -> None:
    tree = _built(_leaves(300), 300)
    plan = inclusion_plan(260, 300)
    tiles = {tile_id: tree.tiles[tile_id] for tile_id in tiles_for(plan)}
    assert set(tiles) == {(0, 1), (1, 0)}
    proof = assemble_from_tiles(plan, tiles)
    verify_inclusion(_leaves(300)[260], 260, 300, proof, tree.root())
    del tiles[(1, 0)]
    with pytest.raises(InvalidInput, match=r"tile \(1, 0\)"):
        assemble_from_tiles(plan, tiles)
