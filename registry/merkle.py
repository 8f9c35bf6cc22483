"""RFC 9162 §2.1 Merkle tree hashing, proof verification and proof plans (consensus-critical).

NOTE: consensus-critical. Every anchored tree head, every proof bundle already handed out and
the on-chain consistency check depend on these exact bytes: a change here breaks them all.
Cross-checked by the transparency-dev vectors, a naive RFC 6962 reference (tests only) and
Hypothesis properties.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from registry.errors import InvalidInput, InvalidProof, ProofOutOfRange

HASH_SIZE = 32
"""Bytes in a SHA-256 digest: every leaf hash, node hash, root and proof hash."""

MAX_PROOF_LENGTH = 64
"""Most hashes an inclusion proof can hold; the bound a parser checks before any hashing.

Threat: a proof with millions of elements makes the verifier hash (or a bundle parser
allocate) without bound. A tree of fewer than 2^64 leaves never needs more than 64 path hashes.
A consistency proof may prepend one seed hash to such a path (when the old size is not a power
of two), so it is bounded by ``MAX_PROOF_LENGTH + 1``.
"""

MAX_TREE_SIZE = 2**64 - 1
"""Largest tree size (and so leaf index + 1) accepted: sizes are uint64 on the wire and chain."""

NodeId = tuple[int, int]
"""A perfect subtree as (level, index): the leaves [index * 2^level, (index + 1) * 2^level)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# -- hashing (RFC 9162 §2.1.1) ---------------------------------------------------------------


def hash_leaf(leaf_data: bytes) -> bytes:
    """SHA-256(0x00 || leaf_data): the hash of one entry of the log."""
    return hashlib.sha256(_LEAF_PREFIX + leaf_data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def hash_leaves(leaf_data: Iterable[bytes]) -> list[bytes]:
    """hash_leaf of each leaf data in order: the bulk form for batches of a million."""
    # NOTE: hash_leaf inlined; a call per leaf costs a fifth of the hashing itself.
    sha256, prefix = hashlib.sha256, _LEAF_PREFIX
    return [sha256(prefix + data).digest() for data in leaf_data]


def hash_pairs(row: Sequence[bytes], begin: int = 0) -> list[bytes]:
    """hash_children of each complete pair of row from row[begin] on (begin even).

    An odd last node has no parent here: the caller promotes or keeps it.
    """
    sha256, prefix = hashlib.sha256, _NODE_PREFIX
    # zip drops an odd last node.
    pairs = zip(row[begin::2], row[begin + 1 :: 2], strict=False)
    return [sha256(prefix + left + right).digest() for left, right in pairs]


def empty_root() -> bytes:
    """SHA-256 of the empty string: the root of a tree of size 0."""
    return hashlib.sha256(b"").digest()


def _check_hashes(leaf_hashes: Sequence[bytes]) -> None:
    # map(len) runs in C: the whole check costs ~20 ms per million hashes.
    if leaf_hashes and set(map(len, leaf_hashes)) != {HASH_SIZE}:
        bad = next(i for i, h in enumerate(leaf_hashes) if len(h) != HASH_SIZE)
        raise InvalidInput(
            f"leaf hash {bad} has {len(leaf_hashes[bad])} bytes, expected {HASH_SIZE}"
        )


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The root of the tree whose leaves have these hashes, built level by level."""
    _check_hashes(leaf_hashes)
    if not leaf_hashes:
        return empty_root()
    # NOTE: pairing each level and promoting an odd last node unchanged builds exactly the
    # RFC 9162 shape (split at the largest power of two below n), without recursion.
    level = list(leaf_hashes)
    while len(level) > 1:
        parents = hash_pairs(level)
        if len(level) & 1:
            parents.append(level[-1])
        level = parents
    return level[0]


def fold(hashes: Sequence[bytes]) -> bytes:
    """Hash perfect subtrees listed left to right into the root of their union (right to left)."""
    if not hashes:
        return empty_root()
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = hash_children(left, node)
    return node


class RootBuilder:
    """A compact range from leaf 0: appends leaf hashes one by one in O(log n) memory."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        # One hash per set bit of _size: the perfect subtrees covering [0, _size), largest first.
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash."""
        # Same step as extend(), inlined: streaming callers append one hash at a time.
        if len(leaf_hash) != HASH_SIZE:
            raise InvalidInput(
                f"leaf hash {self._size} has {len(leaf_hash)} bytes, expected {HASH_SIZE}"
            )
        stack, node, carry = self._stack, leaf_hash, self._size
        while carry & 1:
            node = hashlib.sha256(_NODE_PREFIX + stack.pop() + node).digest()
            carry >>= 1
        stack.append(node)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append leaf hashes in order; on a malformed hash, the ones before it stay appended."""
        sha256, prefix = hashlib.sha256, _NODE_PREFIX
        stack = self._stack
        push, pop = stack.append, stack.pop
        size = self._size
        try:
            for leaf_hash in leaf_hashes:
                if len(leaf_hash) != HASH_SIZE:
                    raise InvalidInput(
                        f"leaf hash {size} has {len(leaf_hash)} bytes, expected {HASH_SIZE}"
                    )
                node, carry = leaf_hash, size
                # Each trailing 1 bit of the old size is a perfect subtree that merges with it.
                while carry & 1:
                    node = sha256(prefix + pop() + node).digest()
                    carry >>= 1
                push(node)
                size += 1
        finally:
            self._size = size

    def root(self) -> bytes:
        """The root of the leaves appended so far (empty_root() for none)."""
        return fold(self._stack)


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def _check_size(name: str, value: int) -> None:
    if not 0 <= value <= MAX_TREE_SIZE:
        raise InvalidInput(f"{name} {value} is outside [0, 2^64 - 1]")


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise InvalidProof(f"{name} has {len(value)} bytes, expected {HASH_SIZE}")


def _check_proof_hashes(kind: str, proof: Sequence[bytes], limit: int) -> None:
    # Bounded parsing: reject absurd lengths before touching any element.
    if len(proof) > limit:
        raise InvalidProof(f"{kind} proof has {len(proof)} hashes, more than the limit {limit}")
    # map(len) runs in C; the loop (naming the first bad hash) runs only when one is bad.
    if proof and set(map(len, proof)) != {HASH_SIZE}:
        for position, element in enumerate(proof):
            _check_hash(f"{kind} proof hash {position}", element)


def _inclusion_length(leaf_index: int, tree_size: int) -> int:
    # Siblings below the node where the paths to the leaf and to the last leaf fork, plus one
    # left sibling per set bit above it (transparency-dev's decompInclProof).
    inner = (leaf_index ^ (tree_size - 1)).bit_length()
    return inner + (leaf_index >> inner).bit_count()


def _consistency_length(size1: int, size2: int) -> int:
    shift = (size1 & -size1).bit_length() - 1
    path = _inclusion_length(size1 - 1, size2) - shift
    # The seed (the last perfect subtree of size1) is sent unless it is the whole old tree.
    return path if size1 == 1 << shift else path + 1


def root_from_inclusion_proof(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes]
) -> bytes:
    """The root implied by an inclusion proof, or InvalidProof if its shape is wrong."""
    _check_size("leaf index", leaf_index)
    _check_size("tree size", tree_size)
    # 1. leaf_index must be inside the tree.
    if leaf_index >= tree_size:
        raise InvalidProof(f"leaf index {leaf_index} is not below tree size {tree_size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof_hashes("inclusion", proof, MAX_PROOF_LENGTH)
    # The length is bound to (index, size); the RFC's "sn == 0" checks below enforce the same
    # rule, this one only says what is wrong.
    expected = _inclusion_length(leaf_index, tree_size)
    if len(proof) != expected:
        raise InvalidProof(
            f"inclusion proof has {len(proof)} hashes, expected {expected} "
            f"for index {leaf_index} in a tree of size {tree_size}"
        )
    # 2. fn = leaf_index, sn = tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. r = hash.
    r = leaf_hash
    # 4. Walk the path. NOTE: hash_children inlined (the verifier's hottest loop).
    sha256, node = hashlib.sha256, _NODE_PREFIX
    for p in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = sha256(node + p + r).digest()
            # Right-shift until LSB(fn) is set or fn is 0 (a no-op when LSB(fn) is set).
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(node + r + p).digest()
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0: the proof reached the root.
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf_hash is leaf leaf_index of the tree (tree_size, root); raise InvalidProof."""
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, leaf_index, tree_size, proof)
    if computed != root:
        raise InvalidProof(
            f"inclusion proof for index {leaf_index} leads to root {computed.hex()}, "
            f"not {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that tree (size2, root2) extends tree (size1, root1); raise InvalidProof.

    Semantics of transparency-dev/merkle's proof.VerifyConsistency: equal sizes need an empty
    proof and equal roots; any tree is consistent with the empty tree (empty proof, root1 not
    checked); otherwise RFC 9162 §2.1.4.2.
    """
    _check_size("size1", size1)
    _check_size("size2", size2)
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_proof_hashes("consistency", proof, MAX_PROOF_LENGTH + 1)
    if size1 > size2:
        raise InvalidProof(f"size1 {size1} is greater than size2 {size2}")
    if size1 == size2:
        if proof:
            raise InvalidProof(f"consistency proof between equal sizes has {len(proof)} hashes")
        if root1 != root2:
            raise InvalidProof(f"roots differ for the same tree size {size1}")
        return
    if size1 == 0:
        if proof:
            raise InvalidProof(f"consistency proof from size 0 has {len(proof)} hashes")
        return
    # 1. An empty path fails (also covered by the length check).
    expected = _consistency_length(size1, size2)
    if len(proof) != expected:
        raise InvalidProof(
            f"consistency proof has {len(proof)} hashes, expected {expected} "
            f"from size {size1} to size {size2}"
        )
    # 2. If size1 is a power of two, its root is the seed of the path.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # 3. fn = size1 - 1, sn = size2 - 1.
    fn, sn = size1 - 1, size2 - 1
    # 4. Skip the levels inside the last perfect subtree of size1.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the seed.
    fr = sr = path[0]
    # 6. Walk the rest.
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    # 7. Both roots must match and the path must have reached the root.
    if sn != 0:
        raise InvalidProof("consistency proof is shorter than the path to the root")
    if fr != root1:
        raise InvalidProof(f"consistency proof leads to root1 {fr.hex()}, not {root1.hex()}")
    if sr != root2:
        raise InvalidProof(f"consistency proof leads to root2 {sr.hex()}, not {root2.hex()}")


# -- proof plans: which stored nodes make up a proof -----------------------------------------


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The perfect subtrees a proof (or root) is made of, before their hashes are fetched.

    Each element is the fold of the perfect subtrees it lists left to right: one subtree for
    a stored node, several for an ephemeral right-edge node of a non-power-of-two tree (as
    transparency-dev/merkle's proof.Nodes + Rehash). An empty element folds to empty_root();
    only root_plan(0) has one.
    """

    elements: tuple[tuple[NodeId, ...], ...]

    def __post_init__(self) -> None:
        if len(self.elements) > MAX_PROOF_LENGTH + 1:
            raise InvalidInput(f"a proof plan of {len(self.elements)} elements is too long")
        for element in self.elements:
            for level, index in element:
                if not 0 <= level < 64 or index < 0:
                    raise InvalidInput(f"({level}, {index}) is not a node of a tree")

    @property
    def node_ids(self) -> frozenset[NodeId]:
        """Every node whose hash the plan needs: fetch them all at once."""
        return frozenset(node for element in self.elements for node in element)

    def assemble(self, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof (or [root]) from the hashes of node_ids."""
        result = []
        for element in self.elements:
            try:
                parts = [hashes[node] for node in element]
            except KeyError as exc:
                raise InvalidInput(f"the hash of node {exc.args[0]} was not supplied") from None
            for node, node_hash in zip(element, parts, strict=True):
                if len(node_hash) != HASH_SIZE:
                    raise InvalidInput(f"the hash of node {node} has {len(node_hash)} bytes")
            result.append(fold(parts))
        return result


def perfect_subtrees(begin: int, end: int) -> list[NodeId]:
    """The perfect subtrees covering leaves [begin, end), left to right, largest first.

    begin must be 0 or aligned to a power of two at least end - begin (true of every range a
    proof needs), so the range splits along the set bits of its length.
    """
    nodes = []
    remaining = end - begin
    while remaining > 0:
        level = remaining.bit_length() - 1
        if begin & ((1 << level) - 1):
            raise InvalidInput(f"leaf range [{begin}, {end}) is not aligned")
        nodes.append((level, begin >> level))
        begin += 1 << level
        remaining -= 1 << level
    return nodes


@functools.lru_cache(maxsize=4096)
def _subtrees(begin: int, end: int) -> tuple[NodeId, ...]:
    # A proof's border and right-edge ranges take few distinct values per tree size (about
    # one per level), while proofs are served by the thousand: memoise the decomposition.
    return tuple(perfect_subtrees(begin, end))


def _path(level: int, index: int, tree_size: int) -> list[tuple[NodeId, ...]]:
    """Proof elements, bottom up, for the perfect node (level, index) in a tree of tree_size."""
    # The fork is the lowest node above both this node and the last leaf; below it the
    # siblings are stored nodes, at it the sibling is the (maybe ephemeral) right part, above
    # it the siblings are the perfect subtrees left of the fork.
    inner = (index ^ ((tree_size - 1) >> level)).bit_length()
    elements: list[tuple[NodeId, ...]] = [
        ((level + k, (index >> k) ^ 1),) for k in range(inner - 1)
    ]
    if inner:
        right_begin = ((index >> (inner - 1)) + 1) << (level + inner - 1)
        elements.append(_subtrees(right_begin, tree_size))
    fork_begin = (index >> inner) << (level + inner)
    elements.extend((node,) for node in reversed(_subtrees(0, fork_begin)))
    return elements


def _check_range(name: str, value: int, upper: int) -> None:
    if not 0 <= value < upper:
        raise ProofOutOfRange(f"{name} {value} is outside [0, {upper})")


def inclusion_plan(leaf_index: int, tree_size: int) -> ProofPlan:
    """What an inclusion proof of leaf_index in a tree of tree_size is made of."""
    _check_range("tree size", tree_size, MAX_TREE_SIZE + 1)
    _check_range("leaf index", leaf_index, tree_size)
    return ProofPlan(tuple(_path(0, leaf_index, tree_size)))


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """What a consistency proof from size1 to size2 is made of (empty if equal or size1 is 0)."""
    _check_range("size2", size2, MAX_TREE_SIZE + 1)
    _check_range("size1", size1, size2 + 1)
    if size1 in (0, size2):
        return ProofPlan(())
    # Prove the last perfect subtree of size1 inside size2; its hash (the seed) is sent first
    # unless it is the whole old tree, whose root the verifier already holds.
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    elements = _path(level, index, size2)
    if index:
        elements.insert(0, ((level, index),))
    return ProofPlan(tuple(elements))


def root_plan(tree_size: int) -> ProofPlan:
    """The root of a tree of tree_size as a one-element plan."""
    _check_range("tree size", tree_size, MAX_TREE_SIZE + 1)
    return ProofPlan((tuple(perfect_subtrees(0, tree_size)),))
