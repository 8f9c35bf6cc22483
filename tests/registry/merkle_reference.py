"""A naive recursive RFC 6962 §2.1 Merkle tree (MTH, PATH, SUBPROOF), used only by tests.

It is written straight from the RFC pseudo-code, with its own hashing, so that it shares no
code with registry.merkle: slow on purpose, obviously right, never used in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

LeafHashes = Sequence[bytes]
"""The RFC's D[n] with each entry already leaf-hashed: MTH({d}) = SHA-256(0x00 || d)."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || d): the RFC's MTH of a single entry."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: LeafHashes) -> bytes:
    """MTH(D[n]) over leaf hashes."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = split_point(n)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


MthFunction = Callable[[LeafHashes], bytes]


def path(m: int, hashes: LeafHashes, root_of: MthFunction = mth) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of leaf m.

    root_of computes the MTH of a sub-list; pass a fast one to keep big trees cheap while the
    recursion itself stays the RFC's.
    """
    n = len(hashes)
    if n == 1 and m == 0:
        return []
    k = split_point(n)
    if m < k:
        return [*path(m, hashes[:k], root_of), root_of(hashes[k:])]
    return [*path(m - k, hashes[k:], root_of), root_of(hashes[:k])]


def proof(m: int, hashes: LeafHashes, root_of: MthFunction = mth) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the consistency proof from size m (0 < m <= n)."""
    return subproof(m, hashes, True, root_of)


def subproof(m: int, hashes: LeafHashes, b: bool, root_of: MthFunction = mth) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(hashes)
    if m == n:
        return [] if b else [root_of(hashes)]
    k = split_point(n)
    if m <= k:
        return [*subproof(m, hashes[:k], b, root_of), root_of(hashes[k:])]
    return [*subproof(m - k, hashes[k:], False, root_of), root_of(hashes[:k])]
