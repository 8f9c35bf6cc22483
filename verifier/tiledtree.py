"""A tlog-tiles tree's right edge, and extending it with tiles checked against what was verified.

NOTE: consensus-critical hashing. A monitor holds no proof from the log: it recomputes the tree
from the entry bundles (C2SP tlog-tiles "Log entries": each entry hashes, RFC 6962 §2.1, to
its place in the level-0 tile), compares every tile it fetched with the hashes it computed,
and folds the tree's right edge into the root the checkpoint signs. The edge (the partial
tile at each level) is all it keeps between checkpoints: a new checkpoint whose tiles do not
start with that edge rewrites history the monitor verified, and one whose root the extended
edge does not reach is not the tree its tiles describe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from registry.leaf import LEAF_SIZE
from registry.merkle import HASH_SIZE, fold, perfect_subtrees, root_from_leaf_hashes
from verifier.errors import VerificationError

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT
"""Hashes in a full tile (tlog-tiles: "Full tiles MUST be exactly 256 hashes wide")."""

MAX_LEVELS: Final = 8
"""Tile levels of a tree of at most 2^64 leaves (256^8 = 2^64)."""

ENTRY_RECORD: Final = 2 + LEAF_SIZE
"""An entry in a bundle: a big-endian uint16 length, then the 224-byte leaf (tlog-tiles)."""

_LENGTH_PREFIX: Final = LEAF_SIZE.to_bytes(2, "big")


class LogInconsistent(VerificationError):
    """The log contradicts itself or what this monitor verified before: an alarm, not an error
    to retry. ``kind`` says which: ``split-view`` (same size, another root), ``rollback`` (a
    smaller size than one it signed before), ``fork`` (tiles that rewrite verified history),
    ``tiles`` (tiles or bundles that do not hash to the checkpoint the log signed)."""

    code = "log-inconsistent"
    diagnostics = "Keep both signed checkpoints: they are evidence the log misbehaved."

    def __init__(self, kind: str, detail: str, evidence: tuple[bytes, ...] = ()) -> None:
        super().__init__(detail, step=kind)
        self.kind = kind
        #: The signed checkpoints (note bytes) that contradict each other, when there are two.
        self.evidence = evidence


def _width(count: int) -> int:
    return count % TILE_WIDTH


@dataclass(frozen=True, slots=True)
class TreeEdge:
    """The right edge of a tree of ``size`` leaves: ``levels[L]`` is its partial tile at tile
    level L (``size // 256**L % 256`` hashes, concatenated), for every level with a node."""

    size: int
    levels: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.size < 1 << 64:
            raise ValueError("a tree size is below 2^64")
        expected = 0
        while self.size >> (TILE_HEIGHT * expected):
            expected += 1
        if len(self.levels) != expected:
            raise ValueError(f"a tree of size {self.size} has an edge of {expected} levels")
        for level, hashes in enumerate(self.levels):
            width = _width(self.size >> (TILE_HEIGHT * level))
            if len(hashes) != width * HASH_SIZE:
                raise ValueError(f"edge level {level} holds {width} hashes for size {self.size}")

    def root(self) -> bytes:
        """The RFC 6962 root: the perfect subtrees of each level's partial tile, top down."""
        subtrees: list[bytes] = []
        for hashes in reversed(self.levels):
            nodes = _split(hashes)
            for level, index in perfect_subtrees(0, len(nodes)):
                subtrees.append(root_from_leaf_hashes(nodes[index << level : (index + 1) << level]))
        return fold(subtrees)


def _split(hashes: bytes) -> list[bytes]:
    return [hashes[offset : offset + HASH_SIZE] for offset in range(0, len(hashes), HASH_SIZE)]


def parse_bundle(data: bytes, width: int) -> bytes:
    """Check an entry bundle holds exactly ``width`` tracemark leaves (224 bytes each, each
    after its uint16 length); the bundle itself is returned, its leaves at ``2 + k * 226``.

    A tracemark log has one leaf size, so the check is three comparisons done in C rather
    than a loop over length prefixes; anything else is refused, naming the bundle.
    """
    if len(data) != width * ENTRY_RECORD:
        raise LogInconsistent(
            "tiles",
            f"an entry bundle of {width} entries has {len(data)} bytes, not a "
            f"multiple of {ENTRY_RECORD} (every leaf of this log is {LEAF_SIZE} bytes)",
        )
    if data[0::ENTRY_RECORD] != bytes(width) or data[1::ENTRY_RECORD] != _LENGTH_PREFIX[1:] * width:
        raise LogInconsistent("tiles", f"an entry in a bundle is not {LEAF_SIZE} bytes long")
    return data


def bundle_leaf_hashes(bundle: bytes) -> list[bytes]:
    """SHA-256(0x00 || leaf) of each leaf of a checked bundle (RFC 6962 §2.1)."""
    # NOTE: the byte before each leaf is its length's low byte; overwritten with the leaf
    # prefix 0x00 in one C slice assignment, each leaf hash is one slice and one digest.
    prefixed = bytearray(bundle)
    prefixed[1::ENTRY_RECORD] = bytes(len(bundle) // ENTRY_RECORD)
    view, sha256 = memoryview(prefixed), hashlib.sha256
    span = 1 + LEAF_SIZE
    return [sha256(view[o : o + span]).digest() for o in range(1, len(prefixed), ENTRY_RECORD)]


TileFetch = Callable[[Sequence[tuple[int, int, int]]], Iterable[bytes]]
"""Fetches hash tiles (level, index, width), yielding their bytes in the order asked."""


class EdgeExtension:
    """Extends ``edge`` to ``size``: level-0 tiles are added one by one with their bundle's
    leaf hashes (``add_level0``), then ``finish`` fetches and checks the tiles above and
    returns the new edge. Nothing here is trusted until the caller compares the new edge's
    root with the signed checkpoint's."""

    def __init__(self, edge: TreeEdge, size: int) -> None:
        if size <= edge.size:
            raise ValueError("an extension grows the tree")
        self.edge, self.size = edge, size
        first = edge.size // TILE_WIDTH
        last = (size - 1) // TILE_WIDTH
        #: The level-0 tiles to add, in order: (index, width).
        self.level0 = [(n, min(TILE_WIDTH, size - n * TILE_WIDTH)) for n in range(first, last + 1)]
        self._next = 0
        self._above: list[bytes] = []  # complete level-1 nodes from full level-0 tiles
        self._edge0 = b""

    def add_level0(self, index: int, tile: bytes, leaf_hashes: Sequence[bytes]) -> None:
        """Check level-0 tile ``index`` against its bundle's leaf hashes and the old edge."""
        expected_index, width = self.level0[self._next]
        if index != expected_index or len(leaf_hashes) != width:
            raise ValueError("level-0 tiles are added in order, each with its width")
        self._next += 1
        joined = b"".join(leaf_hashes)
        if joined != tile:
            raise LogInconsistent(
                "tiles", f"the entries of bundle {index} do not hash to level-0 tile {index}"
            )
        self._check_prefix(0, index, joined)
        if width == TILE_WIDTH:
            self._above.append(root_from_leaf_hashes(leaf_hashes))
        else:
            self._edge0 = joined

    def _check_prefix(self, level: int, index: int, joined: bytes) -> None:
        # The first tile touched at a level starts with the partial tile verified before.
        old = self.edge.levels[level] if level < len(self.edge.levels) else b""
        old_index = (self.edge.size >> (TILE_HEIGHT * (level + 1))) if old else -1
        if index == old_index and not joined.startswith(old):
            raise LogInconsistent(
                "fork",
                f"tile {level}/{index} changes hashes verified at tree size {self.edge.size}",
            )

    def finish(self, fetch: TileFetch) -> TreeEdge:
        """Fetch and check the tiles above level 0 (one batch per level); the new edge."""
        if self._next != len(self.level0):
            raise ValueError("every level-0 tile must be added before finishing")
        levels = [self._edge0]
        new_nodes = self._above
        level = 1
        while self.size >> (TILE_HEIGHT * level):
            old_count = self.edge.size >> (TILE_HEIGHT * level)
            new_count = self.size >> (TILE_HEIGHT * level)
            if old_count == new_count:
                # Nothing new completed here, so nothing above either: the old edge holds.
                levels.extend(self.edge.levels[level:])
                break
            old = self.edge.levels[level] if level < len(self.edge.levels) else b""
            nodes = _split(old) + new_nodes
            first = old_count // TILE_WIDTH
            wanted = [
                (level, n, min(TILE_WIDTH, new_count - n * TILE_WIDTH))
                for n in range(first, (new_count - 1) // TILE_WIDTH + 1)
            ]
            new_nodes = []
            edge = b""
            for (_, index, width), tile in zip(wanted, fetch(wanted), strict=True):
                offset = (index - first) * TILE_WIDTH
                part = nodes[offset : offset + width]
                joined = b"".join(part)
                self._check_prefix(level, index, tile)
                if joined != tile:
                    raise LogInconsistent(
                        "tiles", f"tile {level}/{index} is not the hashes of the tiles below it"
                    )
                if width == TILE_WIDTH:
                    new_nodes.append(root_from_leaf_hashes(part))
                else:
                    edge = joined
            levels.append(edge)
            level += 1
        return TreeEdge(self.size, tuple(levels))


__all__ = [
    "ENTRY_RECORD",
    "TILE_WIDTH",
    "EdgeExtension",
    "LogInconsistent",
    "TileFetch",
    "TreeEdge",
    "bundle_leaf_hashes",
    "parse_bundle",
]
