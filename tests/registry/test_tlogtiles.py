"""C2SP tlog-tiles: paths (the spec's examples), which tiles a size has, and tile bytes cut from
the log's stored tiles against a reference recomputed from the leaves, at every tile boundary
255, 256, 257, 65,535, 65,536 and 65,537, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from sqlalchemy import Engine

from registry.db import read_transaction, write_transaction
from registry.errors import InvalidInput, LogCorrupt, NotFound
from registry.tiles import TILE_WIDTH, build_tile
from registry.tilestore import TileStore, TreeAppender, tiles_t
from registry.tlogread import read_tile, read_tiles
from registry.tlogtiles import (
    TileRef,
    checkpoint_tiles,
    encode_bundle,
    encode_index,
    parse_bundle,
    parse_tile_path,
    root_from_tiles,
    root_tiles,
    tile_at,
    tile_bytes,
    within,
)
from tests.registry import merkle_reference as ref

# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (67, "067"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),  # the spec's example
        (2**64 // 256 - 1, "x072/x057/x594/x037/x927/935"),
    ],
)
def test_index_encoding_known_answers(index: int, encoded: str) -> None:
    assert encode_index(index) == encoded
    assert parse_tile_path(f"0/{encoded}") == TileRef(0, index, TILE_WIDTH)


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("0/x001/x234/067", TileRef(0, 1234067, 256)),
        ("0/x001/x234/067.p/8", TileRef(0, 1234067, 8)),
        ("63/000.p/255", TileRef(63, 0, 255)),
        ("entries/x001/x234/067", TileRef(None, 1234067, 256)),
        ("entries/000.p/1", TileRef(None, 0, 1)),
        ("1/017", TileRef(1, 17, 256)),
    ],
)
def test_paths_parse_and_print_back(path: str, parsed: TileRef) -> None:
    assert parse_tile_path(path) == parsed
    assert parsed.path() == "tile/" + path


@pytest.mark.parametrize(
    "path",
    [
        "00/000",  # a level with a leading zero
        "01/000",
        "64/000",  # level above 63
        "-1/000",
        "+1/000",
        "0/67",  # not 3 digits
        "0/0067",
        "0/x000/067",  # a leading zero element
        "0/001/067",  # an upper element without its x
        "0/x001/x067",  # the last element with one
        "0/x1/067",
        "0/000.p/0",  # width 0
        "0/000.p/256",  # a full tile is not partial
        "0/000.p/08",  # a width with a leading zero
        "0/000.p/",
        "0/000.p",
        "0/000.q/5",
        "0/000/",
        "0",
        "",
        "entries",
        "entry/000",
        "0/٠٠٠",  # digits that are not ASCII
        "0/" + "/".join(["x001"] * 7) + "/000",  # an index beyond 2^64
    ],
)
def test_malformed_paths_are_not_found(path: str) -> None:
    with pytest.raises(NotFound):
        parse_tile_path(path)


def test_tile_ref_refuses_what_cannot_exist() -> None:
    for level, index, width in [(64, 0, 1), (0, -1, 1), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(InvalidInput):
            TileRef(level, index, width)


# -- which tiles a size has ----------------------------------------------------------------------


def test_the_spec_example_of_70000_leaves() -> None:
    counts = Counter((t.level, t.width) for t in checkpoint_tiles(70_000))
    assert counts == {
        (None, 256): 273,
        (None, 112): 1,
        (0, 256): 273,
        (0, 112): 1,
        (1, 256): 1,
        (1, 17): 1,
        (2, 1): 1,
    }


def test_a_tree_of_256_has_a_full_tile_and_a_level_one_partial_of_one() -> None:
    assert [t.path() for t in checkpoint_tiles(256)] == [
        "tile/entries/000",
        "tile/0/000",
        "tile/1/000.p/1",
    ]
    assert list(checkpoint_tiles(0)) == []
    assert [t.path() for t in checkpoint_tiles(1)] == ["tile/entries/000.p/1", "tile/0/000.p/1"]


@pytest.mark.parametrize("size", [1, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 16_777_217])
def test_partial_widths_follow_the_spec_formula(size: int) -> None:
    tiles = list(checkpoint_tiles(size))
    for level in {t.level for t in tiles}:
        row = [t for t in tiles if t.level == level]
        width = (size // 256 ** (level or 0)) % 256
        partial = [t for t in row if not t.is_full]
        assert [t.width for t in partial] == ([width] if width else [])
        assert len(row) - len(partial) == size // 256 ** ((level or 0) + 1)
        last = row[-1]
        assert within(last, size)
        # The smallest tree without the last tile's last node has not got it.
        assert not within(last, last.end * 256 ** (level or 0) - 1)


def test_within_serves_older_partials_and_nothing_beyond() -> None:
    size = 70_000  # level 0: 273 full tiles and 112 nodes of tile 273
    assert within(TileRef(0, 273, 112), size)
    assert within(TileRef(0, 273, 5), size)  # an older checkpoint's partial: a prefix
    assert within(TileRef(0, 272, 7), size)  # a partial of a tile full now
    assert not within(TileRef(0, 273, 113), size)
    assert not within(TileRef(0, 273, 256), size)
    assert not within(TileRef(0, 274, 1), size)
    assert within(TileRef(2, 0, 1), size) and not within(TileRef(2, 0, 2), size)
    assert not within(TileRef(3, 0, 1), size)
    assert tile_at(1, 1, size) == TileRef(1, 1, 17)
    with pytest.raises(NotFound):
        tile_at(1, 2, size)


# -- bytes ---------------------------------------------------------------------------------------


def test_bundles_round_trip_and_refuse_bad_framing() -> None:
    entries = [bytes([i]) * 224 for i in range(3)]
    bundle = encode_bundle(entries)
    assert bundle[:2] == b"\x00\xe0" and len(bundle) == 3 * 226
    assert parse_bundle(bundle, TileRef(None, 0, 3)) == entries
    for bad, bundle_ref in [
        (bundle + b"\x00", TileRef(None, 0, 3)),  # trailing byte
        (bundle[:-1], TileRef(None, 0, 3)),  # cut short
        (bundle, TileRef(None, 0, 2)),  # one too many
        (bundle, TileRef(None, 0, 4)),  # one too few
    ]:
        with pytest.raises(InvalidInput):
            parse_bundle(bad, bundle_ref)
    with pytest.raises(InvalidInput):
        encode_bundle([bytes(0x10000)])


def test_a_tile_is_the_stored_bottom_row_and_a_narrower_one_its_prefix() -> None:
    row = [hashlib.sha256(bytes([i])).digest() for i in range(40)]
    stored = build_tile(0, 3, row)
    assert tile_bytes(stored, TileRef(0, 3, 40)) == b"".join(row)
    assert tile_bytes(stored, TileRef(0, 3, 9)) == b"".join(row[:9])
    with pytest.raises(LogCorrupt):
        tile_bytes(stored, TileRef(0, 3, 41))
    with pytest.raises(InvalidInput):
        tile_bytes(stored, TileRef(0, 4, 9))


# -- stored tiles against the reference, across every boundary ------------------------------------

BOUNDARIES = [255, 256, 257, 65_535, 65_536, 65_537]


def _reference_nodes(leaf_hashes: list[bytes]) -> list[list[bytes]]:
    """Complete nodes of tree levels 0, 8 and 16, each the RFC's MTH of its leaves."""
    levels = [leaf_hashes]
    for level in (1, 2):
        span = 256**level
        levels.append(
            [
                ref.mth(leaf_hashes[i : i + span])
                for i in range(0, len(leaf_hashes) - span + 1, span)
            ]
        )
    return levels


def test_stored_tiles_match_the_reference_at_every_boundary(engine: Engine) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(BOUNDARIES[-1])]
    nodes = _reference_nodes(leaves)
    served: dict[TileRef, bytes] = {}
    size = 0
    for target in BOUNDARIES:
        # The log's real append path on the real storage: the appender the sequencer runs.
        with write_transaction(engine) as conn:
            appender = TreeAppender(TileStore(conn, tiles_t), size)
            appender.append(leaves[size:target])
            stored_root = appender.finish()
        size = target
        tiles = [t for t in checkpoint_tiles(size) if not t.is_entries]
        with read_transaction(engine) as conn:
            for level in {t.level for t in tiles}:
                row = [t for t in tiles if t.level == level]
                for tile, data in zip(row, read_tiles(conn, row), strict=True):
                    begin = tile.index * TILE_WIDTH
                    assert data == b"".join(nodes[level or 0][begin : begin + tile.width]), tile
                    served[tile] = data
            # Every tile served at an earlier size is still served, byte for byte: a partial
            # one is a prefix of what it grew into.
            for tile, data in served.items():
                assert read_tile(conn, tile, size) == data
            # One node more than the size has: beyond it.
            with pytest.raises(NotFound):
                read_tile(conn, TileRef(0, size // 256, size % 256 + 1), size)
        fetched = {t: served[t] for t in root_tiles(size)}
        assert root_from_tiles(size, fetched) == ref.mth(leaves[:size]) == stored_root
