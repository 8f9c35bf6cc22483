"""C2SP tlog-tiles: tile and entry-bundle paths, which a tree size needs, and their bytes.

The static read API (c2sp.org/tlog-tiles) serves the log as immutable files: tile (L, N) is
up to 256 consecutive hashes of tree level 8L, nodes [N*256, N*256 + W); an entry bundle is
up to 256 consecutive entries. The log's own tiles (``registry.tiles``) store exactly that
row as their bottom level, with their 7 inner levels after it, so a C2SP tile of width W is
the first W * 32 bytes of the stored tile; a narrower (older) width is a prefix of a wider
one, since a bottom-row node never changes once it exists. Pure: the database side is
``registry.tlogread``, and a client (a monitor) needs only this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from registry.errors import InvalidInput, LogCorrupt, NotFound
from registry.merkle import HASH_SIZE, fold, root_from_leaf_hashes, root_plan
from registry.tiles import TILE_HEIGHT, TILE_WIDTH, Tile

MAX_TILE_LEVEL = 63
"""Largest ``<L>`` the spec allows (a tree of 2^64 leaves needs levels 0..7 only)."""

MAX_INDEX_ELEMENTS = 7
"""Path elements of ``<N>`` at most: 7 groups of 3 digits hold every index below 2^64.
Threat: an unbounded path turned into an unbounded integer."""

MAX_PATH_CHARS = 64
"""Longest tile path parsed (the longest valid one, a 7-element bundle index and a width, has
42 characters). Threat: a long request path copied and split before it is refused."""

MAX_ENTRY_SIZE = 0xFFFF
"""Largest entry a bundle can frame (its length is a big-endian uint16)."""

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,2}")
_GROUP = re.compile(r"[0-9]{3}")


@dataclass(frozen=True, slots=True)
class TileRef:
    """One static resource: tile (level, index) or, with ``level`` None, entry bundle index,
    ``width`` entries wide (256: full; below: the partial ``.p/<width>`` one)."""

    level: int | None
    index: int
    width: int

    def __post_init__(self) -> None:
        if self.level is not None and not 0 <= self.level <= MAX_TILE_LEVEL:
            raise InvalidInput(f"tile level {self.level} is outside [0, {MAX_TILE_LEVEL}]")
        if not 0 <= self.index < 1000**MAX_INDEX_ELEMENTS:
            raise InvalidInput(f"tile index {self.index} is out of range")
        if not 1 <= self.width <= TILE_WIDTH:
            raise InvalidInput(f"tile width {self.width} is outside [1, {TILE_WIDTH}]")

    @property
    def is_entries(self) -> bool:
        return self.level is None

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def tree_level(self) -> int:
        """The tree level the resource's hashes are at (entries: their leaves, level 0)."""
        return 0 if self.level is None else TILE_HEIGHT * self.level

    @property
    def end(self) -> int:
        """One past the last node (of ``tree_level``) the resource holds."""
        return self.index * TILE_WIDTH + self.width

    def path(self) -> str:
        """The path below the log's prefix: ``tile/0/x001/x234/067.p/5``."""
        level = "entries" if self.level is None else str(self.level)
        suffix = "" if self.is_full else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """``<N>`` as zero-padded 3-digit elements, all but the last prefixed ``x`` (spec)."""
    if index < 0:
        raise InvalidInput(f"tile index {index} is negative")
    groups = []
    while True:
        index, group = divmod(index, 1000)
        groups.append(f"{group:03d}")
        if not index:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def _decimal(text: str, what: str) -> int:
    # Only the canonical spelling: no sign, no leading zero, ASCII digits (int() takes more).
    if _DECIMAL.fullmatch(text) is None:
        raise NotFound(f"{what} {text[:8]!r} is not a decimal without leading zeros")
    return int(text)


def parse_tile_path(path: str) -> TileRef:
    """The resource a path below ``<prefix>/tile/`` names (``0/x001/067.p/5``, ``entries/067``).

    Strict: only the spelling ``TileRef.path`` writes is accepted, since the same resource
    under two names would defeat caching and let a client see two answers for one tile.
    Anything else is ``NotFound`` (a static file server has no other answer either).
    """
    if len(path) > MAX_PATH_CHARS:
        raise NotFound(f"a tile path has at most {MAX_PATH_CHARS} characters")
    parts = path.split("/")
    if len(parts) < 2 or len(parts) > MAX_INDEX_ELEMENTS + 3:
        raise NotFound("a tile path is <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]")
    level_text, index_parts = parts[0], parts[1:]
    width = TILE_WIDTH
    if len(index_parts) >= 2 and index_parts[-2].endswith(".p"):
        width = _decimal(index_parts[-1], "tile width")
        if not 1 <= width < TILE_WIDTH:
            raise NotFound(f"a partial tile's width is 1 to {TILE_WIDTH - 1}, not {width}")
        index_parts = [*index_parts[:-2], index_parts[-2][:-2]]
    if len(index_parts) > MAX_INDEX_ELEMENTS:
        raise NotFound(f"a tile index has at most {MAX_INDEX_ELEMENTS} path elements")
    level = None if level_text == "entries" else _decimal(level_text, "tile level")
    if level is not None and level > MAX_TILE_LEVEL:
        raise NotFound(f"tile level {level} is outside [0, {MAX_TILE_LEVEL}]")
    *upper, last = index_parts
    if _GROUP.fullmatch(last) is None or any(
        not part.startswith("x") or _GROUP.fullmatch(part[1:]) is None for part in upper
    ):
        raise NotFound("a tile index is 3-digit elements, all but the last prefixed 'x'")
    index = int("".join(part.lstrip("x") for part in index_parts))
    if encode_index(index) != "/".join(index_parts):  # x000/067: a leading zero element
        raise NotFound(f"tile index {index} is spelled {encode_index(index)}")
    return TileRef(level, index, width)


# -- which resources a tree size has ---------------------------------------------------------


def level_width(level: int, tree_size: int) -> int:
    """Nodes of tree level 8 * level that exist (complete) in a tree of tree_size leaves."""
    return tree_size >> (TILE_HEIGHT * level)


def within(ref: TileRef, tree_size: int) -> bool:
    """Whether every hash (or entry) of ref exists in the tree of tree_size leaves.

    A full tile needs its 256 nodes; a partial one of width W its first W (the partial tile
    of this size, or that of an older size, which is a prefix of what is stored now).
    """
    return ref.end <= level_width(0 if ref.level is None else ref.level, tree_size)


def checkpoint_tiles(tree_size: int) -> Iterator[TileRef]:
    """Every tile and entry bundle of a tree of tree_size (spec: the partial tile of level l
    has floor(s / 256**l) mod 256 hashes; empty tiles do not exist), bottom level first,
    each level's bundles or tiles in index order, entry bundles before level-0 tiles."""
    if tree_size < 0:
        raise InvalidInput(f"tree size {tree_size} is negative")
    levels: list[int | None] = [None]
    level = 0
    while level_width(level, tree_size):
        levels.append(level)
        level += 1
    for tile_level in levels:
        count = level_width(tile_level or 0, tree_size)
        full, width = divmod(count, TILE_WIDTH)
        for index in range(full):
            yield TileRef(tile_level, index, TILE_WIDTH)
        if width:
            yield TileRef(tile_level, full, width)


def tile_at(level: int | None, index: int, tree_size: int) -> TileRef:
    """Resource (level, index) as the tree of tree_size has it (full, or its partial width)."""
    width = min(TILE_WIDTH, level_width(level or 0, tree_size) - index * TILE_WIDTH)
    if width < 1:
        raise NotFound(f"a tree of {tree_size} leaves has no tile ({level}, {index})")
    return TileRef(level, index, width)


# -- bytes ---------------------------------------------------------------------------------------


def tile_bytes(stored: Tile, ref: TileRef) -> bytes:
    """The C2SP tile ref, cut from the log's stored tile (level, index): its bottom row,
    whose first ``ref.width`` hashes never change once they exist."""
    if ref.level is None or (stored.level, stored.index) != (ref.level, ref.index):
        raise InvalidInput(f"stored tile ({stored.level}, {stored.index}) is not {ref.path()}")
    if stored.width < ref.width:
        raise LogCorrupt(
            f"stored tile ({stored.level}, {stored.index}) has {stored.width} nodes, "
            f"{ref.path()} needs {ref.width}"
        )
    return stored.hashes[: ref.width * HASH_SIZE]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes (spec)."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise InvalidInput(f"an entry of {len(entry)} bytes does not fit a bundle")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def parse_bundle(data: bytes, ref: TileRef) -> list[bytes]:
    """The entries of bundle ref: exactly ``ref.width`` of them, nothing after the last."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == ref.width or offset + 2 > len(data):
            raise InvalidInput(f"{ref.path()}: bytes after entry {len(entries)}")
        size = int.from_bytes(data[offset : offset + 2], "big")
        end = offset + 2 + size
        if end > len(data):
            raise InvalidInput(f"{ref.path()}: entry {len(entries)} is cut short")
        entries.append(data[offset + 2 : end])
        offset = end
    if len(entries) != ref.width:
        raise InvalidInput(f"{ref.path()}: {len(entries)} entries, expected {ref.width}")
    return entries


def split_tile(data: bytes, ref: TileRef) -> list[bytes]:
    """The hashes of tile ref's bytes: exactly ``ref.width`` of them."""
    if len(data) != ref.width * HASH_SIZE:
        raise InvalidInput(f"{ref.path()}: {len(data)} bytes, expected {ref.width * HASH_SIZE}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


# -- a client's side: the root of a checkpoint from its tiles -------------------------------------


def root_tiles(tree_size: int) -> set[TileRef]:
    """The tiles a client fetches to compute the root of a tree of tree_size (one a level)."""
    refs = set()
    for element in root_plan(tree_size).elements:
        for level, index in element:
            tile_level, level_in_tile = divmod(level, TILE_HEIGHT)
            first = index << level_in_tile  # its leftmost node of tree level 8 * tile_level
            refs.add(tile_at(tile_level, first // TILE_WIDTH, tree_size))
    return refs


def root_from_tiles(tree_size: int, fetched: Mapping[TileRef, bytes]) -> bytes:
    """The root of a tree of tree_size from the tiles named by ``root_tiles`` (their bytes as
    served): each perfect subtree of the root is the Merkle tree hash of a run of one tile's
    hashes, then they are folded right to left (RFC 6962 section 2.1)."""
    subtrees = []
    for element in root_plan(tree_size).elements:
        for level, index in element:
            tile_level, level_in_tile = divmod(level, TILE_HEIGHT)
            first = index << level_in_tile
            ref = tile_at(tile_level, first // TILE_WIDTH, tree_size)
            data = fetched.get(ref)
            if data is None:
                raise InvalidInput(f"{ref.path()} was not supplied")
            hashes = split_tile(data, ref)
            begin = first % TILE_WIDTH
            subtrees.append(root_from_leaf_hashes(hashes[begin : begin + (1 << level_in_tile)]))
    return fold(subtrees)
