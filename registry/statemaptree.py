"""StateMap: the state map of goods held in memory, updated in place, snapshotted, proving any key.

The hashing and the proof format are registry.statemap's; this module only keeps the nodes.
A node is None (an empty subtree), a leaf (a subtree holding one key: one bytes object, see
registry.statemapvalues, which also says what a leaf's value is) or an ``_Interior``; each
non-empty node caches its hash. An update clears the cached hashes on its key's path only, so
it costs the depth of the key's leaf (about log2 n for n random keys), not a rebuild, and the
cleared nodes are rehashed once, at the next root() or prove(). apply() and append() merge a
sorted batch (a sequencing batch's goods) in one descent.

Snapshots (``snapshot()``, ``rewind()``) are persistent: an interior node carries the epoch it
was made in, and once a snapshot is taken every node it reaches belongs to an older epoch and
is copied, never changed, by later updates (path copying). A snapshot costs nothing to take
beyond computing the root, shares every node with the live map, and rewinding to it is O(1).
Leaves are never changed (an update makes a new leaf).

One writer at a time: a StateMap is not safe to share between threads. A snapshot is never
mutated, so any number of threads may read it (its hashes are all computed when it is taken).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence

from registry.errors import InvalidInput
from registry.merkle import HASH_SIZE
from registry.statemap import EMPTY, KEY_BITS, MapProof, MapValue, hash_interior
from registry.statemapvalues import (
    PACKED_VALUE_SIZE,
    Item,
    Leaf,
    chain,
    collector_paused,
    entry_items,
    is_leaf,
    leaf_hash,
    leaf_key,
    leaf_value,
    make_leaf,
    pack_value,
    unpack_value,
    value_hash_of,
)

_epochs = itertools.count(1)
"""Epochs of interior nodes, unique across every StateMap in the process, so a snapshot
rewound into any map is still never written to."""


class _Interior:
    __slots__ = ("epoch", "left", "node_hash", "right")

    def __init__(self, left: _Node, right: _Node, epoch: int) -> None:
        self.left = left
        self.right = right
        self.epoch = epoch
        # None: not computed since an update below changed it, or never kept: a node of two
        # leaves (about a third of a map's interiors, 27 MB for 10^6 keys) hashes them when
        # asked, one SHA-256 of two cached leaf hashes (see _cached).
        self.node_hash: bytes | None = None


_Node = Leaf | _Interior | None


class MapSnapshot:
    """The map as it was when ``StateMap.snapshot()`` was called: read-only, any thread."""

    __slots__ = ("_bare", "_last", "_node", "root", "size")

    def __init__(self, node: _Node, size: int, root: bytes, last: int, bare: bool) -> None:
        self._node = node
        self.size = size
        #: The map's root at the snapshot.
        self.root = root
        self._last, self._bare = last, bare

    def __len__(self) -> int:
        return self.size

    def get(self, key: bytes) -> bytes | None:
        """The key's value hash, or None if the key is not in the map."""
        return _get(self._node, key)

    def value(self, key: bytes) -> MapValue | None:
        """The key's MapValue, or None if the key is not in the map."""
        return _value(self._node, key)

    def prove(self, key: bytes) -> MapProof:
        """The proof of the key's value hash, or of its absence."""
        return _prove(self._node, key)


class StateMap:
    """The map of keys to values, as a sparse Merkle tree with leaf shortcuts.

    Keys are never removed: a good, once in the log, stays in the map.
    """

    __slots__ = ("_bare", "_epoch", "_last", "_root", "_size")

    def __init__(self, items: Iterable[tuple[bytes, bytes | MapValue]] = ()) -> None:
        self._root: _Node = None
        self._size = 0
        self._epoch = next(_epochs)
        #: The highest leaf index of any value in the map (-1: none).
        self._last = -1
        #: Whether some key holds a bare value hash (set or applied from 32 bytes).
        self._bare = False
        self.apply(items)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def set(self, key: bytes, value_hash: bytes) -> None:
        """Give key the value hash (adding the key if it is new)."""
        if len(key) != HASH_SIZE or len(value_hash) != HASH_SIZE:
            raise InvalidInput(f"a map key and value hash are {HASH_SIZE} bytes each")
        path, epoch = int.from_bytes(key, "big"), self._epoch
        self._bare = True
        parent: _Interior | None = None
        branch = 0
        node = self._root
        depth = 0
        # Walk down interiors, copying those a snapshot shares and clearing the hashes this
        # set changes.
        while isinstance(node, _Interior):
            if node.epoch != epoch:
                node = _Interior(node.left, node.right, epoch)
                self._attach(parent, branch, node)
            node.node_hash = None
            parent, branch = node, (path >> (KEY_BITS - 1 - depth)) & 1
            node = node.right if branch else node.left
            depth += 1
        leaf = make_leaf(key, value_hash)
        if node is None or node.startswith(key):
            self._size += node is None
            self._attach(parent, branch, leaf)
        else:
            self._size += 1
            self._attach(
                parent,
                branch,
                _join(node, int.from_bytes(node[:HASH_SIZE], "big"), leaf, path, depth, epoch),
            )

    def _attach(self, parent: _Interior | None, branch: int, node: _Node) -> None:
        if parent is None:
            self._root = node
        elif branch:
            parent.right = node
        else:
            parent.left = node

    def apply(self, items: Iterable[tuple[bytes, bytes | MapValue]]) -> None:
        """Set each key's value (the last one of a key wins): a batch.

        A value is a 32-byte value hash or a MapValue (kept, so that append() can chain onto
        it). The batch is sorted and merged into the tree in one descent, so each touched node
        is visited once and each new subtree built (and hashed) from its sorted keys: 5.7 s
        for 10^6 keys into an empty map, against 19.8 s for one set() per key.
        """
        with collector_paused():
            batch = dict(items)
            if not batch:
                return
            lengths = {len(key) for key in batch}
            lengths.update(len(v) for v in batch.values() if not isinstance(v, MapValue))
            if lengths != {HASH_SIZE}:
                raise InvalidInput(f"a map key and value hash are {HASH_SIZE} bytes each")
            packed = {}
            for key, value in batch.items():
                if isinstance(value, MapValue):
                    packed[key] = pack_value(value)
                    self._last = max(self._last, value.last_leaf_index)
                else:
                    packed[key] = value
                    self._bare = True
            # A replacing merge never fails half-way: no copy needed.
            items_sorted: list[Item] = [(k, v, None) for k, v in sorted(packed.items())]
            self._merge_batch(items_sorted, may_fail=False)

    def append(self, entries: Iterable[tuple[bytes, int, bytes]]) -> None:
        """Chain log entries (key, leaf_index, leaf_hash), in log order, onto their keys'
        values (``MapValue.first`` for a key not yet in the map, then ``MapValue.then``).

        The same one-descent merge as apply(): a key already in the map is found on the way
        down, never looked up on its own.
        """
        with collector_paused():
            listed = entries if isinstance(entries, list) else list(entries)
            if not listed:
                return
            items, lowest, highest = entry_items(listed)
            # A key already in the map is checked against its value where the merge meets its
            # leaf, possibly after other subtrees were merged: unless every entry follows
            # every value already in the map (a log-order replay always does), the merge
            # copies the nodes it touches, so that a refused batch leaves the map as it was.
            self._merge_batch(items, may_fail=self._bare or lowest <= self._last)
            self._last = max(self._last, highest)

    def _merge_batch(self, ordered: list[Item], *, may_fail: bool) -> None:
        paths = [int.from_bytes(item[0], "big") for item in ordered]
        before = self._root
        if may_fail:
            # A new epoch: every node the merge touches is copied, none changed.
            self._epoch = next(_epochs)
        try:
            self._root, added = _merge(before, ordered, paths, 0, len(ordered), 0, self._epoch)
        except BaseException:
            self._root = before
            raise
        self._size += added

    def get(self, key: bytes) -> bytes | None:
        """The key's value hash, or None if the key is not in the map."""
        return _get(self._root, key)

    def value(self, key: bytes) -> MapValue | None:
        """The key's MapValue, or None if the key is not in the map."""
        return _value(self._root, key)

    def root(self) -> bytes:
        """The map's root: EMPTY for no keys."""
        return _hash(self._root)

    def prove(self, key: bytes) -> MapProof:
        """The proof of the key's value hash, or of its absence (registry.statemap.MapProof)."""
        return _prove(self._root, key)

    def snapshot(self) -> MapSnapshot:
        """The map as it is now, never changed by later updates (see the module docstring)."""
        snapshot = MapSnapshot(self._root, self._size, self.root(), self._last, self._bare)
        self._epoch = next(_epochs)
        return snapshot

    def rewind(self, snapshot: MapSnapshot) -> None:
        """Make the map what it was at ``snapshot`` (O(1); the snapshot stays valid)."""
        self._root, self._size = snapshot._node, snapshot.size
        self._last, self._bare = snapshot._last, snapshot._bare
        self._epoch = next(_epochs)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value_hash), in key order."""
        stack: list[_Node] = [self._root]
        while stack:
            node = stack.pop()
            if isinstance(node, _Interior):
                stack.extend((node.right, node.left))
            elif node is not None:
                yield leaf_key(node), value_hash_of(leaf_value(node))


# -- reading -------------------------------------------------------------------------------------


def _find(node: _Node, key: bytes) -> Leaf | None:
    path, depth = int.from_bytes(key, "big"), 0
    while isinstance(node, _Interior):
        node = node.right if (path >> (KEY_BITS - 1 - depth)) & 1 else node.left
        depth += 1
    # A slice, not startswith: a key of another length (``in``) must not match a prefix.
    return node if node is not None and node[:HASH_SIZE] == key else None


def _get(node: _Node, key: bytes) -> bytes | None:
    leaf = _find(node, key)
    return None if leaf is None else value_hash_of(leaf_value(leaf))


def _value(node: _Node, key: bytes) -> MapValue | None:
    leaf = _find(node, key)
    if leaf is None:
        return None
    value = leaf_value(leaf)
    if len(value) != PACKED_VALUE_SIZE:
        raise InvalidInput(f"the map holds only a value hash for key {key.hex()}")
    return unpack_value(value)


def _prove(node: _Node, key: bytes) -> MapProof:
    if len(key) != HASH_SIZE:
        raise InvalidInput(f"a map key is {HASH_SIZE} bytes")
    path, depth = int.from_bytes(key, "big"), 0
    bitmap, siblings = 0, []
    while isinstance(node, _Interior):
        branch = (path >> (KEY_BITS - 1 - depth)) & 1
        sibling = _hash(node.left if branch else node.right)
        if sibling != EMPTY:
            bitmap |= 1 << (KEY_BITS - 1 - depth)
            siblings.append(sibling)
        node = node.right if branch else node.left
        depth += 1
    bitmap_bytes = bitmap.to_bytes(HASH_SIZE, "big")
    if node is None or node.startswith(key):
        return MapProof(bitmap_bytes, tuple(siblings))
    return MapProof(bitmap_bytes, tuple(siblings), leaf_key(node), value_hash_of(leaf_value(node)))


# -- merging a sorted batch ------------------------------------------------------------------


def _merge(
    node: _Node,
    ordered: Sequence[Item],
    paths: Sequence[int],
    lo: int,
    hi: int,
    depth: int,
    epoch: int,
) -> tuple[_Node, int]:
    """node (at depth) with the sorted items [lo, hi) merged in, and how many keys are new.

    paths[i] is ordered[i]'s key as an integer; every item in [lo, hi) is under node's prefix.
    """
    if lo == hi:
        return node, 0
    if hi - lo == 1:
        return _merge_one(node, ordered[lo], paths[lo], depth, epoch)
    if node is None:
        return _build(ordered, paths, lo, hi, depth, epoch), hi - lo
    if isinstance(node, bytes):
        # The leaf's key joins the items, unless they give it a new value.
        path = int.from_bytes(node[:HASH_SIZE], "big")
        at = bisect_left(paths, path, lo, hi)
        if at < hi and paths[at] == path:
            items = list(ordered[lo:hi])
            key, _, entries = items[at - lo]
            if isinstance(entries, tuple):  # the key's one entry, as appended
                entries = [(entries[1], entries[2])]
            if entries is not None:
                items[at - lo] = (key, chain(key, leaf_value(node), entries), None)
            return _build(items, paths[lo:hi], 0, hi - lo, depth, epoch), hi - lo - 1
        # The leaf itself is reused (an item whose value is the leaf), not hashed again.
        joined_items = [*ordered[lo:at], (leaf_key(node), node, None), *ordered[at:hi]]
        joined_paths = [*paths[lo:at], path, *paths[at:hi]]
        return _build(joined_items, joined_paths, 0, len(joined_items), depth, epoch), hi - lo
    if node.epoch != epoch:
        node = _Interior(node.left, node.right, epoch)  # a snapshot's: copy, never change
    shift = KEY_BITS - 1 - depth
    middle = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
    node.left, added_left = _merge(node.left, ordered, paths, lo, middle, depth + 1, epoch)
    node.right, added_right = _merge(node.right, ordered, paths, middle, hi, depth + 1, epoch)
    node.node_hash = None
    return node, added_left + added_right


def _merge_one(node: _Node, item: Item, path: int, depth: int, epoch: int) -> tuple[_Node, int]:
    """_merge of one item (its key's integer ``path``): a loop down to where the key goes.

    NOTE: the common case of a bulk batch into a large map. A chunk of 4,096 keys shares
    the top ~12 levels; below them each key descends alone, ~log2(n / 4,096) levels, and a
    recursive call with a bisect per level cost ~3 us a key of the merge at 10^6 goods.
    Same nodes, same copies, same cleared hashes as the recursion.
    """
    top: _Node = None
    parent: _Interior | None = None
    branch = 0
    while isinstance(node, _Interior):
        if node.epoch != epoch:
            node = _Interior(node.left, node.right, epoch)  # a snapshot's: copy, never change
        node.node_hash = None
        if parent is None:
            top = node
        elif branch:
            parent.right = node
        else:
            parent.left = node
        parent = node
        branch = (path >> (KEY_BITS - 1 - depth)) & 1
        node = node.right if branch else node.left
        depth += 1
    added = 1
    if node is None:
        new: Leaf | _Interior = _leaf_of(item)
    else:
        node_path = int.from_bytes(node[:HASH_SIZE], "big")
        if node_path == path:
            added = 0
            key, _, entries = item
            if isinstance(entries, tuple):  # the key's one entry, as appended
                entries = [(entries[1], entries[2])]
            new = (
                _leaf_of(item)
                if entries is None
                else make_leaf(key, chain(key, leaf_value(node), entries))
            )
        else:
            new = _join(node, node_path, _leaf_of(item), path, depth, epoch)
    if parent is None:
        return new, added
    if branch:
        parent.right = new
    else:
        parent.left = new
    return top, added


def _leaf_of(item: Item) -> Leaf:
    key, value, _ = item
    return value if is_leaf(value) else make_leaf(key, value)


def _build(
    ordered: Sequence[Item], paths: Sequence[int], lo: int, hi: int, depth: int, epoch: int
) -> Leaf | _Interior:
    """The subtree at depth holding the sorted items [lo, hi) (at least one), hashed."""
    if hi - lo == 1:
        return _leaf_of(ordered[lo])
    # Sorted keys: the range's first differing bit is that of its first and last keys.
    differ = KEY_BITS - (paths[lo] ^ paths[hi - 1]).bit_length()
    shift = KEY_BITS - 1 - differ
    middle = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
    # A one-key side is its leaf, taken here rather than in a call (half the calls of a bulk
    # batch's build).
    left: Leaf | _Interior
    right: Leaf | _Interior
    if middle - lo == 1:
        key, value, _ = ordered[lo]
        left = value if len(value) > PACKED_VALUE_SIZE else make_leaf(key, value)
    else:
        left = _build(ordered, paths, lo, middle, differ + 1, epoch)
    if hi - middle == 1:
        key, value, _ = ordered[middle]
        right = value if len(value) > PACKED_VALUE_SIZE else make_leaf(key, value)
    else:
        right = _build(ordered, paths, middle, hi, differ + 1, epoch)
    node = _Interior(left, right, epoch)
    if not (isinstance(left, bytes) and isinstance(right, bytes)):
        node.node_hash = hash_interior(_cached(left), _cached(right))
    if differ == depth:
        return node
    return _prefix_chain(node, paths[lo], differ, depth, epoch)


def _join(
    first: Leaf, first_path: int, second: Leaf, second_path: int, depth: int, epoch: int
) -> _Interior:
    """The subtree at depth holding two leaves: interiors down to where their keys part."""
    differ = KEY_BITS - (first_path ^ second_path).bit_length()
    if (first_path >> (KEY_BITS - 1 - differ)) & 1:
        first, second = second, first
    node = _Interior(first, second, epoch)  # two leaves: its hash is not kept
    return _prefix_chain(node, first_path, differ, depth, epoch)


def _prefix_chain(node: _Interior, path: int, differ: int, depth: int, epoch: int) -> _Interior:
    """node (at depth differ) under one interior per shared bit from depth, each hashed."""
    for level in range(differ - 1, depth - 1, -1):
        if (path >> (KEY_BITS - 1 - level)) & 1:
            node = _Interior(None, node, epoch)
            node.node_hash = hash_interior(EMPTY, _cached(node.right))
        else:
            node = _Interior(node, None, epoch)
            node.node_hash = hash_interior(_cached(node.left), EMPTY)
    return node


# -- hashing -------------------------------------------------------------------------------------


def _hash(node: _Node) -> bytes:
    """The node's hash, computing (and caching) the cleared ones below it."""
    if isinstance(node, _Interior) and node.node_hash is None:
        return _rehash(node)
    return _cached(node)


def _rehash(node: _Interior) -> bytes:
    # Recursion is bounded by the key's 256 bits (and is faster than a stack here).
    left, right = node.left, node.right
    if isinstance(left, bytes) and isinstance(right, bytes):
        # Never written: a snapshot's readers (any thread) reach such nodes too.
        return hash_interior(left[-HASH_SIZE:], right[-HASH_SIZE:])
    node.node_hash = node_hash = hash_interior(
        _rehash(left) if isinstance(left, _Interior) and left.node_hash is None else _cached(left),
        _rehash(right)
        if isinstance(right, _Interior) and right.node_hash is None
        else _cached(right),
    )
    return node_hash


def _cached(node: _Node) -> bytes:
    # Only called on an empty node, a leaf, an interior of two leaves, or an interior whose
    # hash is computed.
    if node is None:
        return EMPTY
    if isinstance(node, bytes):
        return leaf_hash(node)
    node_hash = node.node_hash
    if node_hash is None:
        left, right = node.left, node.right
        assert isinstance(left, bytes) and isinstance(right, bytes)
        return hash_interior(left[-HASH_SIZE:], right[-HASH_SIZE:])
    return node_hash


__all__ = ["MapSnapshot", "StateMap"]
