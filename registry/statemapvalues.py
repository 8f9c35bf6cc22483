"""A key's value as the in-memory state map keeps it, its leaf, and a batch's entries chained.

A leaf of ``registry.statemaptree.StateMap`` is ONE bytes object ``key || value ||
node_hash``: the value is the key's whole ``MapValue`` packed as the 48 bytes its value hash is
taken over (``uint64 entry_count || uint64 last_leaf_index || history``), so that the next
entry chains onto it, or a bare 32-byte value hash (set from outside: tests, benchmarks), which
cannot be chained. One bytes object, not a tuple of three: 160 bytes a leaf in memory against
320 (a tuple and three bytes objects, each with its own header), which is half of what the map
holds for 10^6 goods; it is built inline for a bulk batch and is never tracked by the cyclic
collector. The node hash stays in the leaf (not recomputed when needed): a new key meeting an
old leaf, or a rehash after an update, would otherwise cost two SHA-256 more.

The hashing is registry.statemap's (consensus-critical, defined there once); it is inlined
here and cross-checked against ``MapValue`` by the tests.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from registry.errors import InvalidInput
from registry.merkle import HASH_SIZE, MAX_TREE_SIZE

# NOTE: registry.statemap's own prefixes (consensus-critical, defined there once), imported
# rather than repeated: history links, value hashes and leaf nodes are hashed inline here.
from registry.statemap import _HISTORY_PREFIX, _LEAF_NODE_PREFIX, _VALUE_PREFIX, EMPTY, MapValue

PACKED_VALUE_SIZE = 8 + 8 + HASH_SIZE
"""A packed MapValue: uint64 entry_count || uint64 last_leaf_index || history."""

Leaf = bytes
"""A subtree holding one key: key || value (packed or a bare value hash) || node hash, so
longer than any value (``is_leaf``)."""

Entries = list[tuple[int, bytes]]
"""A key's new entries in log order: (leaf_index, leaf_hash)."""

Item = tuple[bytes, bytes, Entries | tuple[bytes, int, bytes] | None]
"""One key of a batch, sorted by key: (key, its value or leaf (``is_leaf``) if the key is
new, the entries to chain onto its current value if it is not (one entry: the appended
``(key, leaf_index, leaf_hash)`` itself, not a new tuple for each of 10^6 goods), or None to
replace that value)."""

_sha256 = hashlib.sha256


def pack_value(value: MapValue) -> bytes:
    """The MapValue as a leaf keeps it (PACKED_VALUE_SIZE bytes)."""
    return (
        value.entry_count.to_bytes(8, "big")
        + value.last_leaf_index.to_bytes(8, "big")
        + (value.history)
    )


def unpack_value(packed: bytes) -> MapValue:
    """pack_value's inverse (validated by MapValue)."""
    return MapValue(
        int.from_bytes(packed[:8], "big"), int.from_bytes(packed[8:16], "big"), packed[16:]
    )


def value_hash_of(value: bytes) -> bytes:
    """The value hash of a leaf's value: itself if bare, else SHA-256(0x13 || packed)."""
    return value if len(value) == HASH_SIZE else _sha256(_VALUE_PREFIX + value).digest()


def make_leaf(key: bytes, value: bytes) -> Leaf:
    """The leaf of key with value: SHA-256(0x10 || key || value_hash) is its node hash."""
    return key + value + _sha256(_LEAF_NODE_PREFIX + key + value_hash_of(value)).digest()


def is_leaf(value: bytes) -> bool:
    """Whether an item's value (``Item``) is already its leaf rather than a bare value."""
    return len(value) > PACKED_VALUE_SIZE


def leaf_key(leaf: Leaf) -> bytes:
    return leaf[:HASH_SIZE]


def leaf_value(leaf: Leaf) -> bytes:
    return leaf[HASH_SIZE:-HASH_SIZE]


def leaf_hash(leaf: Leaf) -> bytes:
    return leaf[-HASH_SIZE:]


def chain(key: bytes, packed: bytes | None, entries: Entries) -> bytes:
    """The packed value once ``entries`` follow ``packed`` (None: the key's first entries)."""
    if packed is None:
        count, last, history = 0, -1, EMPTY
    elif len(packed) == PACKED_VALUE_SIZE:
        count = int.from_bytes(packed[:8], "big")
        last = int.from_bytes(packed[8:16], "big")
        history = packed[16:]
    else:
        raise InvalidInput(
            f"the map holds only a value hash for key {key.hex()}: entries cannot chain onto it"
        )
    prefix = _HISTORY_PREFIX
    for leaf_index, leaf_hash in entries:
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise InvalidInput(f"a leaf hash is {HASH_SIZE} bytes")
        if not 0 <= leaf_index < MAX_TREE_SIZE:
            raise InvalidInput(f"leaf index {leaf_index} is outside [0, 2^64 - 1)")
        if leaf_index <= last:
            raise InvalidInput(
                f"leaf index {leaf_index} does not follow key {key.hex()}'s last entry {last}: "
                "entries are appended in log order"
            )
        history = _sha256(prefix + history + leaf_hash).digest()
        count += 1
        last = leaf_index
    return count.to_bytes(8, "big") + last.to_bytes(8, "big") + history


def entry_items(entries: list[tuple[bytes, int, bytes]]) -> tuple[list[Item], int, int]:
    """A batch of (key, leaf_index, leaf_hash) entries in log order as items sorted by key,
    each with its leaf (or value) as a new key; and the lowest and highest leaf index."""
    keys = [entry[0] for entry in entries]
    if {len(key) for key in keys} != {HASH_SIZE}:
        raise InvalidInput(f"a map key is {HASH_SIZE} bytes")
    if len(set(keys)) == len(keys):
        return _first_leaves(entries)
    return _grouped_values(entries)


def _first_leaves(entries: list[tuple[bytes, int, bytes]]) -> tuple[list[Item], int, int]:
    """entry_items when each key has one entry (a bulk batch: every key)."""
    # NOTE: one comprehension builds each new key's leaf (three SHA-256 each), with C-level
    # checks over the whole batch: this runs for 10^6 goods.
    indices = [entry[1] for entry in entries]
    lowest, highest = min(indices), max(indices)
    if lowest < 0 or highest >= MAX_TREE_SIZE:
        raise InvalidInput(f"leaf index {lowest if lowest < 0 else highest} is out of range")
    if {len(entry[2]) for entry in entries} != {HASH_SIZE}:
        raise InvalidInput(f"a leaf hash is {HASH_SIZE} bytes")
    sha256, first, one = _sha256, _HISTORY_PREFIX + EMPTY, (1).to_bytes(8, "big")
    value_prefix, leaf_prefix = _VALUE_PREFIX, _LEAF_NODE_PREFIX
    items: list[Item] = [
        (
            key,
            key
            + (packed := one + leaf_index.to_bytes(8, "big") + sha256(first + leaf_hash).digest())
            + sha256(leaf_prefix + key + sha256(value_prefix + packed).digest()).digest(),
            entry,
        )
        for entry in sorted(entries)  # keys are unique: never ties
        for key, leaf_index, leaf_hash in (entry,)
    ]
    return items, lowest, highest


def _grouped_values(entries: list[tuple[bytes, int, bytes]]) -> tuple[list[Item], int, int]:
    """entry_items when some keys have several entries (kept in log order)."""
    pending: dict[bytes, Entries] = {}
    for key, leaf_index, leaf_hash in entries:
        held = pending.get(key)
        if held is None:
            pending[key] = [(leaf_index, leaf_hash)]
        else:
            held.append((leaf_index, leaf_hash))
    items: list[Item] = [
        (key, chain(key, None, held), held) for key, held in sorted(pending.items())
    ]
    indices = [entry[1] for entry in entries]
    return items, min(indices), max(indices)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch (and restore it as it was).

    NOTE: a batch allocates a node or two and a few tuples per key, and with the collector on,
    its full collections scan every node of the map and every entry of the batch again and
    again (3.9x the batch's time for 10^6 keys, and quadratic in a batch's own lists). Nodes
    form a tree (with snapshots: a DAG), never a cycle, and so do a batch's tuples: reference
    counting frees them all.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


__all__ = [
    "PACKED_VALUE_SIZE",
    "Entries",
    "Item",
    "Leaf",
    "chain",
    "collector_paused",
    "entry_items",
    "is_leaf",
    "leaf_hash",
    "leaf_key",
    "leaf_value",
    "make_leaf",
    "pack_value",
    "unpack_value",
    "value_hash_of",
]
