"""The nodes of the in-memory state map (registry.statemaptree): merging a sorted batch into a
subtree, building a subtree from sorted keys, and hashing.

A node is None (an empty subtree), a leaf (one bytes object, registry.statemapvalues) or an
``Interior``, which carries the epoch it was made in: a merge copies an interior of another
epoch (a snapshot's) and never changes it (path copying, see registry.statemaptree). The
hashing is registry.statemap's (consensus-critical); the tree's tests check every root here
against a naive reference.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Sequence

from registry.merkle import HASH_SIZE
from registry.statemap import EMPTY, KEY_BITS, hash_interior
from registry.statemapvalues import (
    PACKED_VALUE_SIZE,
    Item,
    Leaf,
    chain,
    is_leaf,
    leaf_hash,
    leaf_key,
    leaf_value,
    make_leaf,
)

_epochs = itertools.count(1)
"""Epochs of interior nodes, unique across every StateMap in the process, so a snapshot
rewound into any map is still never written to."""


def new_epoch() -> int:
    """An epoch no node has yet: what a map writes in after a snapshot (or to copy all)."""
    return next(_epochs)


class Interior:
    __slots__ = ("epoch", "left", "node_hash", "right")

    def __init__(self, left: Node, right: Node, epoch: int) -> None:
        self.left = left
        self.right = right
        self.epoch = epoch
        # None: not computed since an update below changed it, or never kept: a node of two
        # leaves (about a third of a map's interiors, 27 MB for 10^6 keys) hashes them when
        # asked, one SHA-256 of two cached leaf hashes (see cached_hash).
        self.node_hash: bytes | None = None


Node = Leaf | Interior | None


# -- merging a sorted batch ------------------------------------------------------------------


def merge(
    node: Node,
    ordered: Sequence[Item],
    paths: Sequence[int],
    lo: int,
    hi: int,
    depth: int,
    epoch: int,
) -> tuple[Node, int]:
    """node (at depth) with the sorted items [lo, hi) merged in, and how many keys are new.

    paths[i] is ordered[i]'s key as an integer; every item in [lo, hi) is under node's prefix.
    """
    if lo == hi:
        return node, 0
    if hi - lo == 1:
        return merge_one(node, ordered[lo], paths[lo], depth, epoch)
    if node is None:
        return build(ordered, paths, lo, hi, depth, epoch), hi - lo
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
            return build(items, paths[lo:hi], 0, hi - lo, depth, epoch), hi - lo - 1
        # The leaf itself is reused (an item whose value is the leaf), not hashed again.
        joined_items = [*ordered[lo:at], (leaf_key(node), node, None), *ordered[at:hi]]
        joined_paths = [*paths[lo:at], path, *paths[at:hi]]
        return build(joined_items, joined_paths, 0, len(joined_items), depth, epoch), hi - lo
    if node.epoch != epoch:
        node = Interior(node.left, node.right, epoch)  # a snapshot's: copy, never change
    shift = KEY_BITS - 1 - depth
    middle = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
    node.left, added_left = merge(node.left, ordered, paths, lo, middle, depth + 1, epoch)
    node.right, added_right = merge(node.right, ordered, paths, middle, hi, depth + 1, epoch)
    node.node_hash = None
    return node, added_left + added_right


def merge_one(node: Node, item: Item, path: int, depth: int, epoch: int) -> tuple[Node, int]:
    """merge of one item (its key's integer ``path``): a loop down to where the key goes.

    NOTE: the common case of a bulk batch into a large map. A chunk of 4,096 keys shares
    the top ~12 levels; below them each key descends alone, ~log2(n / 4,096) levels, and a
    recursive call with a bisect per level cost ~3 us a key of the merge at 10^6 goods.
    Same nodes, same copies, same cleared hashes as the recursion.
    """
    top: Node = None
    parent: Interior | None = None
    branch = 0
    while isinstance(node, Interior):
        if node.epoch != epoch:
            node = Interior(node.left, node.right, epoch)  # a snapshot's: copy, never change
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
        new: Leaf | Interior = leaf_of(item)
    else:
        node_path = int.from_bytes(node[:HASH_SIZE], "big")
        if node_path == path:
            added = 0
            key, _, entries = item
            if isinstance(entries, tuple):  # the key's one entry, as appended
                entries = [(entries[1], entries[2])]
            new = (
                leaf_of(item)
                if entries is None
                else make_leaf(key, chain(key, leaf_value(node), entries))
            )
        else:
            new = join(node, node_path, leaf_of(item), path, depth, epoch)
    if parent is None:
        return new, added
    if branch:
        parent.right = new
    else:
        parent.left = new
    return top, added


def leaf_of(item: Item) -> Leaf:
    key, value, _ = item
    return value if is_leaf(value) else make_leaf(key, value)


def build(
    ordered: Sequence[Item], paths: Sequence[int], lo: int, hi: int, depth: int, epoch: int
) -> Leaf | Interior:
    """The subtree at depth holding the sorted items [lo, hi) (at least one), hashed."""
    if hi - lo == 1:
        return leaf_of(ordered[lo])
    # Sorted keys: the range's first differing bit is that of its first and last keys.
    differ = KEY_BITS - (paths[lo] ^ paths[hi - 1]).bit_length()
    shift = KEY_BITS - 1 - differ
    middle = bisect_left(paths, ((paths[lo] >> shift) | 1) << shift, lo, hi)
    # A one-key side is its leaf, taken here rather than in a call (half the calls of a bulk
    # batch's build).
    left: Leaf | Interior
    right: Leaf | Interior
    if middle - lo == 1:
        key, value, _ = ordered[lo]
        left = value if len(value) > PACKED_VALUE_SIZE else make_leaf(key, value)
    else:
        left = build(ordered, paths, lo, middle, differ + 1, epoch)
    if hi - middle == 1:
        key, value, _ = ordered[middle]
        right = value if len(value) > PACKED_VALUE_SIZE else make_leaf(key, value)
    else:
        right = build(ordered, paths, middle, hi, differ + 1, epoch)
    node = Interior(left, right, epoch)
    if not (isinstance(left, bytes) and isinstance(right, bytes)):
        node.node_hash = hash_interior(cached_hash(left), cached_hash(right))
    if differ == depth:
        return node
    return prefix_chain(node, paths[lo], differ, depth, epoch)


def join(
    first: Leaf, first_path: int, second: Leaf, second_path: int, depth: int, epoch: int
) -> Interior:
    """The subtree at depth holding two leaves: interiors down to where their keys part."""
    differ = KEY_BITS - (first_path ^ second_path).bit_length()
    if (first_path >> (KEY_BITS - 1 - differ)) & 1:
        first, second = second, first
    node = Interior(first, second, epoch)  # two leaves: its hash is not kept
    return prefix_chain(node, first_path, differ, depth, epoch)


def prefix_chain(node: Interior, path: int, differ: int, depth: int, epoch: int) -> Interior:
    """node (at depth differ) under one interior per shared bit from depth, each hashed."""
    for level in range(differ - 1, depth - 1, -1):
        if (path >> (KEY_BITS - 1 - level)) & 1:
            node = Interior(None, node, epoch)
            node.node_hash = hash_interior(EMPTY, cached_hash(node.right))
        else:
            node = Interior(node, None, epoch)
            node.node_hash = hash_interior(cached_hash(node.left), EMPTY)
    return node


# -- hashing -------------------------------------------------------------------------------------


def node_hash_of(node: Node) -> bytes:
    """The node's hash, computing (and caching) the cleared ones below it."""
    if isinstance(node, Interior) and node.node_hash is None:
        return rehash(node)
    return cached_hash(node)


def rehash(node: Interior) -> bytes:
    # Recursion is bounded by the key's 256 bits (and is faster than a stack here).
    left, right = node.left, node.right
    if isinstance(left, bytes) and isinstance(right, bytes):
        # Never written: a snapshot's readers (any thread) reach such nodes too.
        return hash_interior(left[-HASH_SIZE:], right[-HASH_SIZE:])
    node.node_hash = node_hash = hash_interior(
        rehash(left)
        if isinstance(left, Interior) and left.node_hash is None
        else cached_hash(left),
        rehash(right)
        if isinstance(right, Interior) and right.node_hash is None
        else cached_hash(right),
    )
    return node_hash


def cached_hash(node: Node) -> bytes:
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


__all__ = ["Interior", "Node", "join", "merge", "new_epoch", "node_hash_of"]
