"""Leaf encoding: byte-for-byte eth_abi parity, strict decoding, and payload hash vectors."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi.abi import encode as abi_encode_values
from hypothesis import given
from hypothesis import strategies as st

from registry import merkle
from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.leaf import (
    LEAF_SIZE,
    LEAF_VERSION,
    NO_GOOD,
    SUBJECT_KINDS,
    EntryKind,
    LeafData,
    batch_entry_payload_hash,
    encode_leaf,
    leaf_prefix,
    payload_hash,
    subject_fingerprint,
)

ABI_TYPES = ["uint8", "uint8", "uint8", "bytes32", "address", "bytes32", "uint64"]

ACTOR = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
VECTOR = LeafData(
    version=1,
    kind=EntryKind.REGISTER,
    good_type=GoodType.CODE,
    fingerprint=bytes(range(32)),
    actor=ACTOR,
    payload_hash=bytes(range(32, 64)),
    timestamp=1_767_225_600,  # 2026-01-01T00:00:00Z
)
VECTOR_HEX = "".join(
    [
        "00" * 31 + "01",  # version
        "00" * 31 + "01",  # kind REGISTER
        "00" * 31 + "02",  # good_type CODE
        bytes(range(32)).hex(),  # fingerprint
        "00" * 12 + ACTOR.hex(),  # actor, left-padded
        bytes(range(32, 64)).hex(),  # payload_hash
        "00" * 28 + "6955b900",  # timestamp
    ]
)
VECTOR_LEAF_HASH = "2445bc718fd73fc59c27122354bc1a9ec8c8e783441a33369ecc723ca2dad91d"


def abi_encode(leaf: LeafData) -> bytes:
    return abi_encode_values(
        ABI_TYPES,
        [
            leaf.version,
            leaf.kind,
            NO_GOOD if leaf.good_type is None else leaf.good_type,
            leaf.fingerprint,
            leaf.actor,
            leaf.payload_hash,
            leaf.timestamp,
        ],
    )


good_kinds = st.sampled_from([kind for kind in EntryKind if kind not in SUBJECT_KINDS])
_leaf_fields = {
    "version": st.just(LEAF_VERSION),
    "fingerprint": st.binary(min_size=32, max_size=32),
    "actor": st.binary(min_size=20, max_size=20),
    "payload_hash": st.binary(min_size=32, max_size=32),
    "timestamp": st.integers(0, 2**64 - 1),
}
leaves = st.builds(
    LeafData, kind=good_kinds, good_type=st.sampled_from(GoodType), **_leaf_fields
) | st.builds(
    LeafData, kind=st.sampled_from(sorted(SUBJECT_KINDS)), good_type=st.just(None), **_leaf_fields
)


def test_subject_kinds_take_no_good_type_and_goods_kinds_need_one() -> None:
    subject = subject_fingerprint(EntryKind.KEY_HANDOVER, b"\x11" * 20)
    leaf = encode_leaf(EntryKind.KEY_HANDOVER, NO_GOOD, subject, b"\x22" * 20, b"\x33" * 32, 7)
    assert LeafData.decode(leaf).good_type is None
    with pytest.raises(InvalidInput):
        encode_leaf(EntryKind.KEY_HANDOVER, GoodType.CODE, subject, b"\x22" * 20, b"\x33" * 32, 7)
    with pytest.raises(InvalidInput):
        encode_leaf(EntryKind.REGISTER, NO_GOOD, subject, b"\x22" * 20, b"\x33" * 32, 7)
    # A decoded REGISTER word with good_type 0 is refused, not read as a subject entry.
    forged = leaf[:63] + bytes([EntryKind.REGISTER]) + leaf[64:]
    with pytest.raises(InvalidInput):
        LeafData.decode(forged)
    # The two subjects' fingerprints never coincide for one address.
    assert subject != subject_fingerprint(EntryKind.CREATOR_IDENTITY, b"\x11" * 20)


def test_vector_encoding() -> None:
    encoded = VECTOR.encode()
    assert encoded.hex() == VECTOR_HEX
    assert encoded == abi_encode(VECTOR)
    assert len(encoded) == LEAF_SIZE == 224


def test_vector_leaf_hash() -> None:
    expected = hashlib.sha256(b"\x00" + bytes.fromhex(VECTOR_HEX)).hexdigest()
    assert expected == VECTOR_LEAF_HASH
    assert VECTOR.leaf_hash().hex() == VECTOR_LEAF_HASH
    assert merkle.hash_leaf(VECTOR.encode()).hex() == VECTOR_LEAF_HASH


def test_extreme_values_match_eth_abi() -> None:
    for timestamp in (0, 2**64 - 1):
        for fill in (0x00, 0xFF):
            leaf = LeafData(
                1,
                EntryKind.CONFLICT,
                GoodType.ITEM,
                bytes([fill]) * 32,
                bytes([fill]) * 20,
                bytes([fill]) * 32,
                timestamp,
            )
            assert leaf.encode() == abi_encode(leaf)


@given(leaves)
def test_encoding_equals_eth_abi(leaf: LeafData) -> None:
    assert leaf.encode() == abi_encode(leaf)


@given(leaves)
def test_decode_round_trips(leaf: LeafData) -> None:
    assert LeafData.decode(leaf.encode()) == leaf


def test_encode_leaf_is_what_leaf_data_uses() -> None:
    fields = (VECTOR.fingerprint, ACTOR, VECTOR.payload_hash, VECTOR.timestamp)
    assert encode_leaf(EntryKind.REGISTER, GoodType.CODE, *fields) == VECTOR.encode()
    assert encode_leaf(1, 2, *fields) == VECTOR.encode()


def test_leaf_prefix() -> None:
    assert leaf_prefix(1, 2) == VECTOR.encode()[:96]
    for kind, good_type in [(0, 1), (5, 1), (1, 0), (1, 4), (True, 1), (1, True), (1.0, 1)]:
        with pytest.raises(InvalidInput):
            leaf_prefix(kind, good_type)  # type: ignore[arg-type]


def test_ints_from_rows_become_enums() -> None:
    leaf = LeafData(1, 3, 1, bytes(32), bytes(20), bytes(32), 0)  # type: ignore[arg-type]
    assert leaf.kind is EntryKind.TRANSFER
    assert leaf.good_type is GoodType.FILE
    assert VECTOR.actor_address == "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"version": 0},
        {"version": True},
        {"version": 1.0},
        {"kind": 0},
        {"kind": 5},
        {"kind": True},
        {"good_type": 4},
        {"fingerprint": bytes(31)},
        {"fingerprint": "00" * 32},
        {"actor": bytes(32)},
        {"actor": "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
        {"payload_hash": bytes(33)},
        {"timestamp": -1},
        {"timestamp": 2**64},
        {"timestamp": 1.5},
    ],
)
def test_invalid_leaf_cannot_be_built(changes: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "version": 1,
        "kind": 1,
        "good_type": 1,
        "fingerprint": bytes(32),
        "actor": bytes(20),
        "payload_hash": bytes(32),
        "timestamp": 0,
    }
    fields.update(changes)
    with pytest.raises(InvalidInput):
        LeafData(**fields)  # type: ignore[arg-type]


def _mutated(offset: int, value: int) -> bytes:
    data = bytearray.fromhex(VECTOR_HEX)
    data[offset] = value
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "224 bytes, got 0"),
        (bytes.fromhex(VECTOR_HEX)[:-1], "224 bytes, got 223"),
        (bytes.fromhex(VECTOR_HEX) + b"\x00", "224 bytes, got 225"),
        (bytes.fromhex(VECTOR_HEX) * 2, "224 bytes, got 448"),
        (bytearray.fromhex(VECTOR_HEX), "must be bytes"),
        (VECTOR_HEX, "must be bytes"),
        (_mutated(0, 1), "version word has non-zero padding"),
        (_mutated(30, 1), "version word has non-zero padding"),
        (_mutated(32, 1), "kind word has non-zero padding"),
        (_mutated(64 + 5, 1), "good_type word has non-zero padding"),
        (_mutated(128, 1), "actor word has non-zero padding"),
        (_mutated(128 + 11, 1), "actor word has non-zero padding"),
        (_mutated(192, 1), "timestamp word has non-zero padding"),
        (_mutated(192 + 23, 1), "timestamp word has non-zero padding"),
        (_mutated(31, 2), "unknown leaf version"),
        (_mutated(31, 0), "unknown leaf version"),
        (_mutated(63, 0), "kind must be"),
        (_mutated(63, 11), "kind must be"),  # 8 DELIVERY (17), 9 ATTESTATION, 10 PLATFORM_KEY (18)
        (_mutated(63, 9), "ATTESTATION leaf has good_type 0"),
        (_mutated(63, 10), "PLATFORM_KEY leaf has good_type 0"),
        (_mutated(63, 5), "KEY_HANDOVER leaf has good_type 0"),
        (_mutated(63, 7), "STATE_COMMITMENT leaf has good_type 0"),
        (_mutated(95, 0), "good_type must be"),
        (_mutated(95, 4), "good_type must be"),
    ],
)
def test_strict_decode_rejects(data: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        LeafData.decode(data)  # type: ignore[arg-type]


@given(st.binary(min_size=LEAF_SIZE, max_size=LEAF_SIZE))
def test_decode_accepts_only_canonical_bytes(data: bytes) -> None:
    try:
        leaf = LeafData.decode(data)
    except InvalidInput:
        return
    assert leaf.encode() == data


def test_payload_hash_vector() -> None:
    payload = {"b": 1, "a": [True, None, "x"], "é": "\u00e9"}
    canonical = '{"a":[true,null,"x"],"b":1,"é":"é"}'.encode()
    assert payload_hash(payload) == hashlib.sha256(canonical).digest()


@pytest.mark.parametrize("payload", [[1], "x", {"a": float("nan")}, {"a": b"\x00"}, {1: 2}])
def test_payload_hash_refuses_non_json(payload: object) -> None:
    with pytest.raises(InvalidInput):
        payload_hash(payload)  # type: ignore[arg-type]


def test_batch_entry_payload_hash_vector() -> None:
    batch = bytes(range(32))
    expected = "0c1c9b0bc4358902b823c7675320d59ded234f308b9dfa5f8d844d1978330c66"
    assert hashlib.sha256(batch + b"\x00\x00\x00\x05").hexdigest() == expected
    assert batch_entry_payload_hash(batch, 5).hex() == expected
    assert batch_entry_payload_hash(batch, 0) == hashlib.sha256(batch + bytes(4)).digest()
    assert (
        batch_entry_payload_hash(batch, 2**32 - 1) == hashlib.sha256(batch + b"\xff" * 4).digest()
    )


@pytest.mark.parametrize(
    ("batch", "position"), [(bytes(32), -1), (bytes(32), 2**32), (bytes(32), True), (bytes(31), 0)]
)
def test_batch_entry_payload_hash_refuses(batch: bytes, position: int) -> None:
    with pytest.raises(InvalidInput):
        batch_entry_payload_hash(batch, position)
