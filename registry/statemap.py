"""The state map of goods: its hashing, its compressed proofs and their verification.

NOTE: consensus-critical (issue 14). Once a state-commitment entry carries a map root, every
anchored head commits to these exact bytes: a change here breaks every map proof handed out.
Cross-checked by the known-answer vectors (tests/vectors/statemap_v1.json), a naive
recursive reference (tests only) and Hypothesis properties.

The map, as decided for issue 14:

- **Key** of a good: ``map_key(good_type, fingerprint) = SHA-256("tracemark-map-key/v1" ||
  uint8(good_type) || fingerprint)``, 256 bits, read as the path from the root: bit 0 is the
  most significant bit of byte 0, 0 goes left.
- **Value** of a good: a history chain over its log entries, so a bundle that drops any entry
  no longer matches. ``history = SHA-256(0x12 || previous || leaf_hash)`` from ``previous =
  32 zero bytes`` over the RFC 9162 leaf hashes of the good's entries in log order; the value
  is ``(entry_count, last_leaf_index, history)`` and ``value_hash = SHA-256(0x13 ||
  uint64(entry_count) || uint64(last_leaf_index) || history)``.
- **Tree**: a sparse Merkle tree of depth 256 with leaf shortcuts (as Diem's JMT and Meta's
  AKD): an empty subtree is 32 zero bytes; a subtree holding one key is that key's leaf node,
  at the shortest prefix that makes it unique, ``leaf_node = SHA-256(0x10 || key ||
  value_hash)``; any other subtree is ``interior = SHA-256(0x11 || left || right)``. An
  interior with both children empty is empty and never hashed.
- **Proof** of a key: the siblings met on the search for the key from the root, compressed.
  A 256-bit bitmap (bit i, most significant first, is set when the sibling at depth i + 1 is
  non-empty) and the non-empty siblings, **top to bottom** (the order of the bitmap's set
  bits). The search ends at the key's own leaf (inclusion), at an empty subtree (absence) or
  at the leaf of a neighbour, another key sharing the path so far (absence: the proof carries
  the neighbour's key and value hash so the verifier can hash its leaf).

The in-memory map that builds these proofs is registry.statemaptree.StateMap.

NOTE: domain separation. The prefixes 0x10-0x13 differ from RFC 9162's leaf (0x00) and node
(0x01) prefixes (those live in registry.merkle alone), so no log node hashes to a map node or
a history link, and no map node of one kind to one of another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.edges import parse_hash32, to_hex
from registry.errors import InvalidFingerprint, InvalidInput, InvalidProof
from registry.fingerprints import FINGERPRINT_SIZE, GoodId, GoodType, to_good_type
from registry.merkle import HASH_SIZE, MAX_TREE_SIZE

KEY_BITS = 256
"""Depth of the map: a key is a SHA-256 digest, one bit per level."""

MAX_MAP_PROOF_SIBLINGS = KEY_BITS
"""Most siblings a map proof can hold; the bound a parser checks before any hashing.

Threat: a proof with millions of siblings makes the verifier hash (or a bundle parser
allocate) without bound. A search for a 256-bit key meets at most one sibling per bit.
"""

EMPTY = bytes(HASH_SIZE)
"""The hash of an empty subtree (and the history before a good's first entry)."""

MAP_KEY_DOMAIN = b"tracemark-map-key/v1"
"""What a map key's SHA-256 input starts with: a key is never a fingerprint of its own."""

_LEAF_NODE_PREFIX = b"\x10"
_INTERIOR_PREFIX = b"\x11"
_HISTORY_PREFIX = b"\x12"
_VALUE_PREFIX = b"\x13"

_MAX_UINT64 = 2**64 - 1


# -- keys and values -------------------------------------------------------------------------


def map_key(good_type: GoodType | int, fingerprint: bytes) -> bytes:
    """The good's 256-bit key in the map: its path from the root."""
    good = GoodId(to_good_type(good_type), fingerprint)  # validates both
    return hashlib.sha256(MAP_KEY_DOMAIN + bytes([good.good_type]) + good.fingerprint).digest()


def map_keys(good_type: GoodType | int, fingerprints: Sequence[bytes]) -> list[bytes]:
    """map_key of each fingerprint of one good type: the bulk form for a batch of a million."""
    # NOTE: map_key inlined and the checks done once over the batch (in C): a GoodId per
    # fingerprint costs three times the hashing.
    prefix = MAP_KEY_DOMAIN + bytes([to_good_type(good_type)])
    if fingerprints and (
        set(map(type, fingerprints)) != {bytes} or set(map(len, fingerprints)) != {FINGERPRINT_SIZE}
    ):
        raise InvalidFingerprint(f"a fingerprint must be exactly {FINGERPRINT_SIZE} bytes")
    sha256 = hashlib.sha256
    return [sha256(prefix + fingerprint).digest() for fingerprint in fingerprints]


def history_link(previous: bytes, leaf_hash: bytes) -> bytes:
    """SHA-256(0x12 || previous || leaf_hash): the history once one more entry is appended."""
    _check_hash(InvalidInput, "previous history", previous)
    _check_hash(InvalidInput, "leaf hash", leaf_hash)
    return hashlib.sha256(_HISTORY_PREFIX + previous + leaf_hash).digest()


@dataclass(frozen=True, slots=True)
class MapValue:
    """A good's value in the map: how many entries it has, its last one, their history chain."""

    entry_count: int
    last_leaf_index: int
    history: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.entry_count <= _MAX_UINT64:
            raise InvalidInput(f"entry count {self.entry_count} is outside [1, 2^64 - 1]")
        if not 0 <= self.last_leaf_index < MAX_TREE_SIZE:
            raise InvalidInput(f"leaf index {self.last_leaf_index} is outside [0, 2^64 - 1)")
        _check_hash(InvalidInput, "history", self.history)

    @classmethod
    def first(cls, leaf_index: int, leaf_hash: bytes) -> MapValue:
        """The value of a good whose only entry is leaf leaf_index."""
        return cls(1, leaf_index, history_link(EMPTY, leaf_hash))

    def then(self, leaf_index: int, leaf_hash: bytes) -> MapValue:
        """The value once the good's next entry, leaf leaf_index, is appended."""
        if leaf_index <= self.last_leaf_index:
            raise InvalidInput(
                f"leaf index {leaf_index} does not follow the good's last entry "
                f"{self.last_leaf_index}: entries are replayed in log order"
            )
        return MapValue(self.entry_count + 1, leaf_index, history_link(self.history, leaf_hash))

    def value_hash(self) -> bytes:
        """SHA-256(0x13 || uint64 entry_count || uint64 last_leaf_index || history)."""
        return hashlib.sha256(
            _VALUE_PREFIX
            + self.entry_count.to_bytes(8, "big")
            + self.last_leaf_index.to_bytes(8, "big")
            + self.history
        ).digest()


def replay(
    entries: Iterable[tuple[bytes, int, bytes]], values: Mapping[bytes, MapValue] | None = None
) -> dict[bytes, MapValue]:
    """Fold (key, leaf_index, leaf_hash) entries in log order into each key's value.

    Starts from ``values`` (the map's values before these entries, left unchanged) and
    returns the values of the keys these entries touch: what a batch sets in the map.
    """
    before = values or {}
    changed: dict[bytes, MapValue] = {}
    for key, leaf_index, leaf_hash in entries:
        previous = changed.get(key) or before.get(key)
        changed[key] = (
            MapValue.first(leaf_index, leaf_hash)
            if previous is None
            else previous.then(leaf_index, leaf_hash)
        )
    return changed


# -- tree hashing ----------------------------------------------------------------------------


def hash_leaf_node(key: bytes, value_hash: bytes) -> bytes:
    """SHA-256(0x10 || key || value_hash): a subtree holding the one key."""
    return hashlib.sha256(_LEAF_NODE_PREFIX + key + value_hash).digest()


def hash_interior(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x11 || left || right), or EMPTY when both children are empty."""
    if left == EMPTY and right == EMPTY:
        return EMPTY
    return hashlib.sha256(_INTERIOR_PREFIX + left + right).digest()


# -- proofs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapProof:
    """The compressed path from the root to where the search for a key ends.

    ``bitmap`` (32 bytes): bit i (most significant bit of byte 0 first) is set when the
    sibling at depth i + 1 is non-empty; ``siblings``: those siblings, top to bottom.
    ``neighbour_key`` and ``neighbour_value_hash``: the leaf the search ended at when it is
    another key's (an absence proof), else both None.

    NOTE: the depth where the search ends is not sent: it is one more than the bitmap's last
    set bit (0 if none), because the last sibling of a search is never empty (an interior
    node with one empty child holds two keys or more on the other side, else the leaf would
    sit higher). So one (root, key) has exactly one valid proof.
    """

    bitmap: bytes
    siblings: tuple[bytes, ...]
    neighbour_key: bytes | None = None
    neighbour_value_hash: bytes | None = None

    def __post_init__(self) -> None:
        _check_hash(InvalidProof, "map proof bitmap", self.bitmap)
        # Bounded parsing: reject absurd lengths before touching any element.
        if len(self.siblings) > MAX_MAP_PROOF_SIBLINGS:
            raise InvalidProof(
                f"map proof has {len(self.siblings)} siblings, "
                f"more than the limit {MAX_MAP_PROOF_SIBLINGS}"
            )
        marked = int.from_bytes(self.bitmap, "big").bit_count()
        if marked != len(self.siblings):
            raise InvalidProof(
                f"map proof bitmap marks {marked} siblings, the proof has {len(self.siblings)}"
            )
        for position, sibling in enumerate(self.siblings):
            _check_hash(InvalidProof, f"map proof sibling {position}", sibling)
            # An empty sibling is a clear bit: a second spelling of it would make proofs
            # malleable.
            if sibling == EMPTY:
                raise InvalidProof(f"map proof sibling {position} is empty yet marked present")
        if (self.neighbour_key is None) != (self.neighbour_value_hash is None):
            raise InvalidProof("a map proof names a neighbour by both its key and value hash")
        if self.neighbour_key is not None and self.neighbour_value_hash is not None:
            _check_hash(InvalidProof, "neighbour key", self.neighbour_key)
            _check_hash(InvalidProof, "neighbour value hash", self.neighbour_value_hash)

    @property
    def depth(self) -> int:
        """The depth where the search ends: one more than the bitmap's last set bit."""
        bits = int.from_bytes(self.bitmap, "big")
        return KEY_BITS - ((bits & -bits).bit_length() - 1) if bits else 0

    def to_json(self) -> dict[str, Any]:
        """The proof's JSON form: 0x-hex bitmap and siblings, the neighbour or null."""
        neighbour = None
        if self.neighbour_key is not None and self.neighbour_value_hash is not None:
            neighbour = {
                "key": to_hex(self.neighbour_key),
                "value_hash": to_hex(self.neighbour_value_hash),
            }
        return {
            "bitmap": to_hex(self.bitmap),
            "siblings": [to_hex(sibling) for sibling in self.siblings],
            "neighbour": neighbour,
        }

    @classmethod
    def from_json(cls, document: object) -> MapProof:
        """Parse to_json's form, bounded; InvalidProof names what is wrong."""
        if not isinstance(document, dict) or set(document) != {"bitmap", "siblings", "neighbour"}:
            raise InvalidProof("a map proof is an object of bitmap, siblings and neighbour")
        siblings = document["siblings"]
        if not isinstance(siblings, list) or len(siblings) > MAX_MAP_PROOF_SIBLINGS:
            raise InvalidProof(f"map proof siblings must be a list of at most {KEY_BITS}")
        neighbour = document["neighbour"]
        neighbour_key = neighbour_value_hash = None
        if neighbour is not None:
            if not isinstance(neighbour, dict) or set(neighbour) != {"key", "value_hash"}:
                raise InvalidProof("a map proof's neighbour is an object of key and value_hash")
            neighbour_key = _parse_hash("neighbour key", neighbour["key"])
            neighbour_value_hash = _parse_hash("neighbour value hash", neighbour["value_hash"])
        return cls(
            _parse_hash("map proof bitmap", document["bitmap"]),
            tuple(_parse_hash(f"map proof sibling {i}", s) for i, s in enumerate(siblings)),
            neighbour_key,
            neighbour_value_hash,
        )


def root_from_map_proof(key: bytes, value_hash: bytes | None, proof: MapProof) -> bytes:
    """The root implied by a proof that key has value_hash (None: that key is absent)."""
    _check_hash(InvalidProof, "key", key)
    depth = proof.depth
    # 1. The node where the search ends.
    if value_hash is not None:
        _check_hash(InvalidProof, "value hash", value_hash)
        if proof.neighbour_key is not None:
            raise InvalidProof("an inclusion proof carries a neighbour's leaf")
        node = hash_leaf_node(key, value_hash)
    elif proof.neighbour_key is None or proof.neighbour_value_hash is None:
        node = EMPTY
    else:
        # 2. A neighbour proves absence only if it is another key on the key's path: else any
        # key's inclusion proof would "prove" the absence of every other key.
        neighbour = proof.neighbour_key
        if neighbour == key:
            raise InvalidProof("the neighbour of an absence proof is the key itself")
        shared = (
            KEY_BITS - (int.from_bytes(neighbour, "big") ^ int.from_bytes(key, "big")).bit_length()
        )
        if shared < depth:
            raise InvalidProof(
                f"the neighbour leaves the key's path at bit {shared}, above depth {depth}"
            )
        node = hash_leaf_node(neighbour, proof.neighbour_value_hash)
    # 3. Fold the siblings bottom up; a clear bit is an empty sibling.
    # NOTE: hash_interior inlined (the verifier's hottest loop). Its empty-and-empty case
    # cannot arise here: the lowest sibling is non-empty (it defines depth), and every node
    # above it is a digest.
    sha256, prefix = hashlib.sha256, _INTERIOR_PREFIX
    bits, path = int.from_bytes(proof.bitmap, "big"), int.from_bytes(key, "big")
    remaining = len(proof.siblings)
    for level in range(depth - 1, -1, -1):
        shift = KEY_BITS - 1 - level
        if (bits >> shift) & 1:
            remaining -= 1
            sibling = proof.siblings[remaining]
        else:
            sibling = EMPTY
        if (path >> shift) & 1:
            node = sha256(prefix + sibling + node).digest()
        else:
            node = sha256(prefix + node + sibling).digest()
    return node


def verify_map_proof(root: bytes, key: bytes, value_hash: bytes | None, proof: MapProof) -> None:
    """Check that key has value_hash (None: is absent) in the map with root; raise InvalidProof."""
    _check_hash(InvalidProof, "map root", root)
    computed = root_from_map_proof(key, value_hash, proof)
    if computed != root:
        claim = "absence" if value_hash is None else "inclusion"
        raise InvalidProof(
            f"map {claim} proof of key {key.hex()} leads to root {computed.hex()}, not {root.hex()}"
        )


def _check_hash(error: type[InvalidInput] | type[InvalidProof], name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise error(f"{name} must be {HASH_SIZE} bytes")


def _parse_hash(name: str, value: object) -> bytes:
    try:
        return parse_hash32(value)
    except ValueError as exc:
        raise InvalidProof(f"{name} {exc}") from None


__all__ = [
    "EMPTY",
    "KEY_BITS",
    "MAP_KEY_DOMAIN",
    "MAX_MAP_PROOF_SIBLINGS",
    "MapProof",
    "MapValue",
    "hash_interior",
    "hash_leaf_node",
    "history_link",
    "map_key",
    "map_keys",
    "replay",
    "root_from_map_proof",
    "verify_map_proof",
]
