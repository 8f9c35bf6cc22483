"""Log entries and their leaf encoding: the 224 bytes every Merkle leaf of the log hashes.

CONSENSUS-CRITICAL: ``encode_leaf`` defines the bytes behind every leaf hash, every inclusion
proof and every anchored root. Changing a byte of it breaks every proof ever issued; a new
layout is a new ``LEAF_VERSION``, decoded side by side with the old one, never an edit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from registry.canonicaljson import canonical_json
from registry.eip712 import checksum_address
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, to_good_type
from registry.merkle import hash_leaf


class EntryKind(IntEnum):
    """What an entry does to a good (DESIGN "Entries and leaves")."""

    REGISTER = 1
    REVOKE = 2
    TRANSFER = 3
    CONFLICT = 4
    #: The registry's signing key handed over to a new key at a tree size (issue 11).
    KEY_HANDOVER = 5
    #: A creator's proven web domain and name, attested by the registry (issue 11).
    CREATOR_IDENTITY = 6
    #: The root of the state map of goods over every leaf before it (issue 14): the last leaf
    #: of every head signed since, so each signed and anchored head commits to the map.
    STATE_COMMITMENT = 7
    #: A code (or its fingerprint) delivered for a guaranteed-trade order, checked and
    #: attested by the registry (issue 17 item 2): a good's kind, in its state-map history.
    DELIVERY = 8
    #: A platform's real-name attestation of a seller account, attested by the registry
    #: (issue 18 item 4, ``registry.attestations``): a subject's kind (the seller).
    ATTESTATION = 9
    #: A platform's attestation key enrolled (by the operator or the platform itself),
    #: attested by the registry (``registry.platformkeypayload``): a subject's kind (the
    #: platform), so the log says which key signs a platform's attestations, and who said so.
    PLATFORM_KEY = 10


SUBJECT_KINDS = frozenset(
    {
        EntryKind.KEY_HANDOVER,
        EntryKind.CREATOR_IDENTITY,
        EntryKind.STATE_COMMITMENT,
        EntryKind.ATTESTATION,
        EntryKind.PLATFORM_KEY,
    }
)
"""Kinds about something other than a good: their leaf's good_type word is ``NO_GOOD`` and
their fingerprint names the subject (``subject_fingerprint``; a STATE_COMMITMENT's is the map
root itself). Kinds 1-4 encode exactly as before, so every bundle and export made before
these kinds keeps verifying byte for byte. DELIVERY (8) is a good's kind again: its leaf is
the same seven words with kind word 8 and the good's type, so no earlier leaf changes.
ATTESTATION (9) is a subject's: its fingerprint word is ``attestation.attestation_subject``
(the attesting platform and the seller's keyed reference hash), not an address's hash.
PLATFORM_KEY (10) is a subject's too: its fingerprint word is
``attestations.platform_key_subject`` (the platform), so a platform's keys are one lookup."""

NO_GOOD = 0
"""The good_type word of a ``SUBJECT_KINDS`` leaf: no good type has value 0."""


LEAF_VERSION = 1
"""The only leaf layout there is; ``LeafData.decode`` refuses any other."""

WORD_SIZE = 32
"""One ABI word (Solidity ABI spec, "Formal Specification of the Encoding")."""

LEAF_SIZE = 7 * WORD_SIZE
"""Seven static ABI words, one per field of ``LeafData``."""

ADDRESS_SIZE = 20
HASH_SIZE = 32
MAX_UINT64 = 2**64 - 1
MAX_UINT32 = 2**32 - 1

_ZERO_WORD_PREFIX = bytes(WORD_SIZE - 1)
_ADDRESS_PADDING = bytes(WORD_SIZE - ADDRESS_SIZE)
_UINT64_PADDING = bytes(WORD_SIZE - 8)
_ENTRY_KIND_VALUES = frozenset(int(member) for member in EntryKind)


def to_entry_kind(value: int) -> EntryKind:
    """``EntryKind(value)`` for an int from the wire or a row, raising ``InvalidInput``."""
    if isinstance(value, int) and not isinstance(value, bool) and value in _ENTRY_KIND_VALUES:
        return EntryKind(value)
    raise InvalidInput(
        "kind must be 1 (register), 2 (revoke), 3 (transfer), 4 (conflict), "
        "5 (key hand-over), 6 (creator identity), 7 (state commitment), 8 (delivery), "
        "9 (attestation) or 10 (platform key)"
    )


def subject_fingerprint(kind: EntryKind, subject: bytes) -> bytes:
    """The fingerprint word of a ``SUBJECT_KINDS`` leaf: SHA-256 of a tag and the subject's
    20-byte address (the new registry key; the creator), so a subject's entries are found by
    one index and can never be mistaken for a good's."""
    if kind not in SUBJECT_KINDS:
        raise InvalidInput(f"a {kind.name} entry is about a good, not a subject")
    if kind is EntryKind.STATE_COMMITMENT:
        # Its fingerprint word is the map root, not the hash of an address.
        raise InvalidInput("a STATE_COMMITMENT entry's fingerprint is the map root it commits")
    if kind is EntryKind.ATTESTATION:
        # Its subject is a platform's seller, not an address.
        raise InvalidInput("an ATTESTATION entry's fingerprint is attestation_subject's")
    if kind is EntryKind.PLATFORM_KEY:
        # Its subject is a platform (a slug), not an address.
        raise InvalidInput("a PLATFORM_KEY entry's fingerprint is platform_key_subject's")
    _check_bytes(subject, ADDRESS_SIZE, "subject")
    tag = (
        b"tracemark/registry-key/v1\x00"
        if kind is EntryKind.KEY_HANDOVER
        else (b"tracemark/creator/v1\x00")
    )
    return hashlib.sha256(tag + subject).digest()


def leaf_prefix(kind: int, good_type: int) -> bytes:
    """The first three words of a leaf (version, kind, good_type), to reuse across a batch."""
    prefix = _PREFIXES.get((kind, good_type))
    if prefix is None or not _is_plain_int(kind) or not _is_plain_int(good_type):
        if to_entry_kind(kind) in SUBJECT_KINDS:
            raise InvalidInput(f"a {EntryKind(kind).name} leaf has good_type {NO_GOOD}")
        to_good_type(good_type)
        raise InvalidInput("kind and good_type must be integers")  # e.g. 1.0, True
    return prefix


def _is_plain_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uint8_word(value: int) -> bytes:
    # ABI encoding of a uint8: the value left-padded to a full word (a big-endian uint256).
    return _ZERO_WORD_PREFIX + bytes((value,))


# Every valid (kind, good_type) pair, precomputed, as every leaf of a batch starts with one:
# a good's kinds with each good type, a subject's kinds with NO_GOOD only.
_PREFIXES: dict[tuple[int, int], bytes] = {
    (kind, good_type): _uint8_word(LEAF_VERSION) + _uint8_word(kind) + _uint8_word(good_type)
    for kind in EntryKind
    for good_type in ((NO_GOOD,) if kind in SUBJECT_KINDS else tuple(GoodType))
}


def encode_leaf(
    kind: int,
    good_type: int,
    fingerprint: bytes,
    actor: bytes,
    payload_hash: bytes,
    timestamp: int,
) -> bytes:
    """The leaf data of an entry (version ``LEAF_VERSION``): 224 bytes.

    Byte for byte ``eth_abi.encode(["uint8", "uint8", "uint8", "bytes32", "address", "bytes32",
    "uint64"], [1, kind, good_type, fingerprint, actor, payload_hash, timestamp])``: all seven
    types are static, so the ABI head is the whole encoding, one word each; integers and
    addresses are left-padded with zeros, a bytes32 is its 32 bytes (Solidity ABI spec,
    "Formal Specification of the Encoding"). A fixed, typed layout also means a leaf can never
    be chosen to look like an inner node (THREATS 6).
    """
    _check_bytes(fingerprint, HASH_SIZE, "fingerprint")
    _check_bytes(actor, ADDRESS_SIZE, "actor")
    _check_bytes(payload_hash, HASH_SIZE, "payload_hash")
    _check_uint(timestamp, MAX_UINT64, "timestamp")
    return b"".join(
        (
            leaf_prefix(kind, good_type),
            fingerprint,
            _ADDRESS_PADDING,
            actor,
            payload_hash,
            _UINT64_PADDING,
            timestamp.to_bytes(8, "big"),
        )
    )


@dataclass(frozen=True, slots=True)
class LeafData:
    """One entry's fields as they are committed to the log; invalid values cannot be built."""

    version: int
    kind: EntryKind
    #: None for a ``SUBJECT_KINDS`` entry (encoded as ``NO_GOOD``).
    good_type: GoodType | None
    fingerprint: bytes
    actor: bytes
    payload_hash: bytes
    timestamp: int

    def __post_init__(self) -> None:
        if not _is_plain_int(self.version) or self.version != LEAF_VERSION:
            raise InvalidInput(f"unknown leaf version; only {LEAF_VERSION} exists")
        # Accept the plain ints a database row carries; store the enums.
        object.__setattr__(self, "kind", to_entry_kind(self.kind))
        if self.kind in SUBJECT_KINDS:
            if self.good_type not in (None, NO_GOOD):
                raise InvalidInput(f"a {self.kind.name} leaf has good_type {NO_GOOD}")
            object.__setattr__(self, "good_type", None)
        else:
            object.__setattr__(self, "good_type", to_good_type(self.good_type))  # type: ignore[arg-type]
        _check_bytes(self.fingerprint, HASH_SIZE, "fingerprint")
        _check_bytes(self.actor, ADDRESS_SIZE, "actor")
        _check_bytes(self.payload_hash, HASH_SIZE, "payload_hash")
        _check_uint(self.timestamp, MAX_UINT64, "timestamp")

    @property
    def actor_address(self) -> str:
        """The actor as an EIP-55 checksummed address."""
        return checksum_address(self.actor)

    def encode(self) -> bytes:
        """The 224-byte leaf data (see ``encode_leaf``)."""
        return encode_leaf(
            self.kind,
            NO_GOOD if self.good_type is None else self.good_type,
            self.fingerprint,
            self.actor,
            self.payload_hash,
            self.timestamp,
        )

    def leaf_hash(self) -> bytes:
        """The RFC 9162 §2.1.1 leaf hash of this entry: SHA-256(0x00 || encode())."""
        return hash_leaf(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> LeafData:
        """Parse leaf data strictly: exactly 224 bytes, zero padding, known version and enums.

        Strict so that one leaf has exactly one encoding: a decoder that ignored padding would
        accept many byte strings (so many leaf hashes) for the same entry.
        """
        if not isinstance(data, bytes):
            raise InvalidInput("leaf data must be bytes")
        if len(data) != LEAF_SIZE:
            raise InvalidInput(f"leaf data must be {LEAF_SIZE} bytes, got {len(data)}")
        words = [data[offset : offset + WORD_SIZE] for offset in range(0, LEAF_SIZE, WORD_SIZE)]
        version_word, kind_word, good_type_word, fingerprint, actor_word, payload, time_word = words
        for name, word, padding in (
            ("version", version_word, _ZERO_WORD_PREFIX),
            ("kind", kind_word, _ZERO_WORD_PREFIX),
            ("good_type", good_type_word, _ZERO_WORD_PREFIX),
            ("actor", actor_word, _ADDRESS_PADDING),
            ("timestamp", time_word, _UINT64_PADDING),
        ):
            if not word.startswith(padding):
                raise InvalidInput(f"leaf {name} word has non-zero padding")
        kind = to_entry_kind(kind_word[-1])
        leaf_prefix(kind, good_type_word[-1])  # a good's kind with a good type, or NO_GOOD
        return cls(
            version=version_word[-1],
            kind=kind,
            good_type=None if kind in SUBJECT_KINDS else to_good_type(good_type_word[-1]),
            fingerprint=fingerprint,
            actor=actor_word[len(_ADDRESS_PADDING) :],
            payload_hash=payload,
            timestamp=int.from_bytes(time_word, "big"),
        )


def payload_hash(payload: Mapping[str, object]) -> bytes:
    """SHA-256 of the RFC 8785 JSON of an entry's payload (DESIGN "Entries and leaves")."""
    if not isinstance(payload, Mapping):
        raise InvalidInput("an entry payload must be a JSON object")
    return hashlib.sha256(canonical_json(payload)).digest()


def batch_entry_payload_hash(batch_payload_hash: bytes, position: int) -> bytes:
    """The payload hash of the good at ``position`` (0-based) of a bulk batch.

    SHA-256(batch_payload_hash || uint32 big-endian position): the batch payload is hashed
    once, and each entry still gets a distinct payload hash, so no two leaves are equal.
    """
    _check_bytes(batch_payload_hash, HASH_SIZE, "batch_payload_hash")
    _check_uint(position, MAX_UINT32, "position")
    return hashlib.sha256(batch_payload_hash + position.to_bytes(4, "big")).digest()


def _check_bytes(value: bytes, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise InvalidInput(f"{name} must be exactly {size} bytes")


def _check_uint(value: int, maximum: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidInput(f"{name} must be an integer from 0 to {maximum}")


__all__ = [
    "LEAF_SIZE",
    "LEAF_VERSION",
    "NO_GOOD",
    "SUBJECT_KINDS",
    "EntryKind",
    "LeafData",
    "batch_entry_payload_hash",
    "encode_leaf",
    "leaf_prefix",
    "payload_hash",
    "subject_fingerprint",
    "to_entry_kind",
]
