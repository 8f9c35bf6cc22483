"""The state map: known answers, a naive reference, Hypothesis properties, mutation probes.

Regenerate the committed vectors with ``python -m tests.registry.test_statemap``; a test
fails if tests/vectors/statemap_v1.json is out of date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import statemap, statemapnodes
from registry.errors import InvalidInput, InvalidProof
from registry.fingerprints import GoodType
from registry.statemap import (
    EMPTY,
    MapProof,
    MapValue,
    map_key,
    replay,
    verify_map_proof,
)
from registry.statemaptree import StateMap

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "statemap_v1.json"


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _bit(key: bytes, depth: int) -> int:
    return (key[depth // 8] >> (7 - depth % 8)) & 1


def _flip(data: bytes, bit: int) -> bytes:
    """data with bit ``bit`` flipped, counted from the most significant bit of byte 0."""
    flipped = bytearray(data)
    flipped[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(flipped)


# -- the naive reference: the definition, re-hashed from scratch with hashlib --------------


def ref_node(items: list[tuple[bytes, bytes]], depth: int = 0) -> bytes:
    """The hash of the subtree at depth holding items (all sharing their first depth bits)."""
    if not items:
        return bytes(32)
    if len(items) == 1:
        key, value_hash = items[0]
        return _sha(b"\x10" + key + value_hash)
    left = [item for item in items if not _bit(item[0], depth)]
    right = [item for item in items if _bit(item[0], depth)]
    return _sha(b"\x11" + ref_node(left, depth + 1) + ref_node(right, depth + 1))


def ref_root(items: dict[bytes, bytes]) -> bytes:
    return ref_node(sorted(items.items()))


def ref_prove(items: dict[bytes, bytes], key: bytes) -> MapProof:
    """The proof by the definition: siblings top to bottom while the subtree has two keys."""
    subtree, depth, bitmap, siblings = sorted(items.items()), 0, 0, []
    while len(subtree) >= 2:
        branch = _bit(key, depth)
        sibling = ref_node([i for i in subtree if _bit(i[0], depth) != branch], depth + 1)
        if sibling != bytes(32):
            bitmap |= 1 << (255 - depth)
            siblings.append(sibling)
        subtree = [i for i in subtree if _bit(i[0], depth) == branch]
        depth += 1
    bitmap_bytes = bitmap.to_bytes(32, "big")
    if not subtree or subtree[0][0] == key:
        return MapProof(bitmap_bytes, tuple(siblings))
    return MapProof(bitmap_bytes, tuple(siblings), subtree[0][0], subtree[0][1])


# -- hand-computable known answers (hashlib only, never the module's hashing) ----------------

KEY_A = bytes([0x00]) + _sha(b"a")[1:]  # first bit 0: left
KEY_B = bytes([0x80]) + _sha(b"b")[1:]  # first bit 1: right
VALUE_A, VALUE_B = _sha(b"value a"), _sha(b"value b")


def _check_hand_computed() -> None:
    leaf_a = _sha(b"\x10" + KEY_A + VALUE_A)
    leaf_b = _sha(b"\x10" + KEY_B + VALUE_B)
    one = StateMap([(KEY_A, VALUE_A)])
    assert one.root() == leaf_a
    two = StateMap([(KEY_B, VALUE_B), (KEY_A, VALUE_A)])
    assert two.root() == _sha(b"\x11" + leaf_a + leaf_b)
    proof = two.prove(KEY_A)
    assert proof.bitmap == bytes([0x80]) + bytes(31)
    assert proof.siblings == (leaf_b,)
    verify_map_proof(two.root(), KEY_A, VALUE_A, proof)


def test_hand_computed_roots_and_proof() -> None:
    _check_hand_computed()


def test_empty_map() -> None:
    empty = StateMap()
    assert empty.root() == bytes(32) == EMPTY
    proof = empty.prove(KEY_A)
    assert proof == MapProof(bytes(32), ())
    verify_map_proof(EMPTY, KEY_A, None, proof)
    with pytest.raises(InvalidProof):
        verify_map_proof(EMPTY, KEY_A, VALUE_A, proof)


def test_key_and_value_hashing_by_hand() -> None:
    fingerprint = _sha(b"a file")
    assert map_key(GoodType.FILE, fingerprint) == _sha(b"tracemark-map-key/v1\x01" + fingerprint)
    assert map_key(3, fingerprint) == _sha(b"tracemark-map-key/v1\x03" + fingerprint)
    leaf_0, leaf_1 = _sha(b"leaf 0"), _sha(b"leaf 1")
    history = _sha(b"\x12" + _sha(b"\x12" + bytes(32) + leaf_0) + leaf_1)
    value = MapValue.first(7, leaf_0).then(9, leaf_1)
    assert value == MapValue(2, 9, history)
    assert value.value_hash() == _sha(
        b"\x13" + (2).to_bytes(8, "big") + (9).to_bytes(8, "big") + history
    )


def test_map_keys_is_map_key_in_bulk() -> None:
    fingerprints = [_sha(bytes([i])) for i in range(5)]
    for good_type in GoodType:
        assert statemap.map_keys(good_type, fingerprints) == [
            map_key(good_type, fingerprint) for fingerprint in fingerprints
        ]
    assert statemap.map_keys(GoodType.FILE, []) == []
    with pytest.raises(InvalidInput):
        statemap.map_keys(GoodType.FILE, [*fingerprints, bytes(31)])
    with pytest.raises(InvalidInput):
        statemap.map_keys(GoodType.FILE, ["0x" + "00" * 15])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        statemap.map_keys(0, fingerprints)


def test_values_refuse_what_no_log_holds() -> None:
    with pytest.raises(InvalidInput):
        MapValue(0, 0, bytes(32))
    with pytest.raises(InvalidInput):
        MapValue(1, 2**64 - 1, bytes(32))
    with pytest.raises(InvalidInput, match="log order"):
        MapValue.first(5, _sha(b"x")).then(5, _sha(b"y"))
    with pytest.raises(InvalidInput):
        map_key(0, bytes(32))
    with pytest.raises(InvalidInput):
        map_key(GoodType.CODE, bytes(31))


def test_replay_chains_each_goods_entries_in_log_order() -> None:
    a, b = map_key(GoodType.CODE, _sha(b"a")), map_key(GoodType.CODE, _sha(b"b"))
    first = replay([(a, 0, _sha(b"0")), (b, 1, _sha(b"1"))])
    later = replay([(a, 2, _sha(b"2"))], first)
    assert later == {a: MapValue.first(0, _sha(b"0")).then(2, _sha(b"2"))}
    assert first[a] == MapValue.first(0, _sha(b"0"))  # the values before are left unchanged


# -- proofs at the edges ---------------------------------------------------------------------


def test_two_keys_sharing_250_bits_need_one_sibling() -> None:
    near = _flip(KEY_A, 250)
    tree = StateMap([(KEY_A, VALUE_A), (near, VALUE_B)])
    proof = tree.prove(KEY_A)
    assert proof.depth == 251
    assert proof.siblings == (_sha(b"\x10" + near + VALUE_B),)
    verify_map_proof(tree.root(), KEY_A, VALUE_A, proof)
    # A key sharing 255 bits with KEY_A is absent: the search ends at KEY_A's leaf.
    absent = _flip(KEY_A, 255)
    absence = tree.prove(absent)
    assert (absence.neighbour_key, absence.neighbour_value_hash) == (KEY_A, VALUE_A)
    verify_map_proof(tree.root(), absent, None, absence)
    # A key leaving at bit 0 meets an empty subtree.
    assert tree.prove(KEY_B).neighbour_key is None
    verify_map_proof(tree.root(), KEY_B, None, tree.prove(KEY_B))


def test_a_neighbours_proof_does_not_prove_absence() -> None:
    near = _flip(KEY_A, 250)
    tree = StateMap([(KEY_A, VALUE_A), (near, VALUE_B), (KEY_B, VALUE_B)])
    inclusion = tree.prove(KEY_A)
    as_neighbour = MapProof(inclusion.bitmap, inclusion.siblings, KEY_A, VALUE_A)
    # The key itself, "absent" because its own leaf is there: refused.
    with pytest.raises(InvalidProof, match="the key itself"):
        verify_map_proof(tree.root(), KEY_A, None, as_neighbour)
    # A key off KEY_A's path above its leaf (same proof depth, another path): refused.
    for bit in (0, 100, 249):
        with pytest.raises(InvalidProof, match="leaves the key's path"):
            verify_map_proof(tree.root(), _flip(KEY_A, bit), None, as_neighbour)


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {"bitmap": "0x" + "00" * 32, "siblings": []},
        {"bitmap": "0x" + "00" * 32, "siblings": [], "neighbour": None, "extra": 1},
        {"bitmap": "0x" + "00" * 31, "siblings": [], "neighbour": None},
        {"bitmap": "0x" + "80" + "00" * 31, "siblings": [], "neighbour": None},
        {"bitmap": "0x" + "80" + "00" * 31, "siblings": ["0x" + "00" * 32], "neighbour": None},
        {"bitmap": "0x" + "ff" * 32, "siblings": ["0x" + "11" * 32] * 257, "neighbour": None},
        {"bitmap": "0x" + "00" * 32, "siblings": [], "neighbour": {"key": "0x" + "11" * 32}},
        {"bitmap": "0x" + "00" * 32, "siblings": "0x", "neighbour": None},
    ],
    ids=[
        "null",
        "list",
        "no-neighbour-field",
        "unknown-field",
        "short-bitmap",
        "bitmap-bit-without-sibling",
        "empty-sibling-marked-present",
        "257-siblings",
        "neighbour-without-value-hash",
        "siblings-not-a-list",
    ],
)
def test_from_json_refuses_malformed_proofs(document: object) -> None:
    with pytest.raises(InvalidProof):
        MapProof.from_json(document)


# -- Hypothesis properties against the reference ---------------------------------------------

_BASE = _sha(b"cluster")
# Keys from a cluster sharing long prefixes (one or two flipped bits of one key, anywhere in
# its 256 bits) as well as spread ones: deep paths and shallow ones.
keys = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.builds(lambda bit: _flip(_BASE, bit), st.integers(0, 255)),
    st.builds(lambda a, b: _flip(_flip(_BASE, a), b), st.integers(0, 255), st.integers(0, 255)),
)
value_hashes = st.binary(min_size=32, max_size=32)
updates = st.lists(st.tuples(keys, value_hashes), max_size=40)


def _built(items: list[tuple[bytes, bytes]]) -> tuple[StateMap, dict[bytes, bytes]]:
    tree, reference = StateMap(), {}
    for key, value_hash in items:
        tree.set(key, value_hash)
        reference[key] = value_hash
    return tree, reference


@settings(max_examples=300, deadline=None)
@given(updates, st.lists(st.integers(0, 40), max_size=5))
def test_same_root_as_the_reference_after_any_sets(
    items: list[tuple[bytes, bytes]], checkpoints: list[int]
) -> None:
    tree, reference = StateMap(), {}
    for position, (key, value_hash) in enumerate(items):
        tree.set(key, value_hash)
        reference[key] = value_hash
        # Roots read between sets: the cached hashes must be cleared on each later path.
        if position in checkpoints:
            assert tree.root() == ref_root(reference)
    assert tree.root() == ref_root(reference)
    assert len(tree) == len(reference)
    assert dict(tree.items()) == reference
    assert [key for key, _ in tree.items()] == sorted(reference)


@settings(max_examples=300, deadline=None)
@given(st.lists(updates, max_size=4), st.lists(st.tuples(keys, value_hashes), max_size=5))
def test_batches_give_the_same_map_as_one_set_at_a_time(
    batches: list[list[tuple[bytes, bytes]]], singles: list[tuple[bytes, bytes]]
) -> None:
    # apply() merges a sorted batch into the tree; set() walks one key: same nodes.
    tree, reference = StateMap(), {}
    for batch in batches:
        tree.apply(batch)
        reference.update(batch)
        assert tree.root() == ref_root(reference)
        for key, value_hash in singles:
            tree.set(key, value_hash)
            reference[key] = value_hash
    assert tree.root() == ref_root(reference)
    assert len(tree) == len(reference)
    assert dict(tree.items()) == reference


@settings(max_examples=200, deadline=None)
@given(updates, st.lists(keys, max_size=8))
def test_every_proof_verifies_and_equals_the_reference(
    items: list[tuple[bytes, bytes]], others: list[bytes]
) -> None:
    tree, reference = _built(items)
    root = tree.root()
    # Absent keys right next to present ones: the search ends at a neighbour's leaf.
    near = [_flip(key, 255) for key in reference]
    for key in [*reference, *others, *near]:
        proof = tree.prove(key)
        assert proof == ref_prove(reference, key)
        assert MapProof.from_json(json.loads(json.dumps(proof.to_json()))) == proof
        verify_map_proof(root, key, reference.get(key), proof)
        assert tree.get(key) == reference.get(key)


def _mutations(proof: MapProof) -> int:
    return 256 * (1 + len(proof.siblings) + 2 * (proof.neighbour_key is not None))


def _flipped(proof: MapProof, bit: int) -> MapProof:
    """The proof with one bit of its bitmap, a sibling or the neighbour flipped."""
    fields = [proof.bitmap, *proof.siblings]
    if proof.neighbour_key is not None and proof.neighbour_value_hash is not None:
        fields += [proof.neighbour_key, proof.neighbour_value_hash]
    fields[bit // 256] = _flip(fields[bit // 256], bit % 256)
    neighbour = fields[1 + len(proof.siblings) :] or [None, None]
    return MapProof(fields[0], tuple(fields[1 : 1 + len(proof.siblings)]), *neighbour)


@settings(max_examples=300, deadline=None)
@given(updates.filter(bool), keys, st.data())
def test_any_flipped_bit_wrong_key_or_wrong_value_fails(
    items: list[tuple[bytes, bytes]], other: bytes, data: st.DataObject
) -> None:
    tree, reference = _built(items)
    root = tree.root()
    key = data.draw(st.sampled_from([*reference, other, _flip(items[0][0], 255)]))
    value_hash = reference.get(key)
    proof = tree.prove(key)
    bit = data.draw(st.integers(0, _mutations(proof) - 1))
    with pytest.raises(InvalidProof):
        verify_map_proof(root, key, value_hash, _flipped(proof, bit))
    # A wrong key, with the same claim: any other key for an inclusion; for an absence, one
    # leaving the path above where the search ended (below it, the same proof holds).
    if value_hash is not None or proof.depth:
        last = 255 if value_hash is not None else proof.depth - 1
        wrong_key = _flip(key, data.draw(st.integers(0, last)))
        with pytest.raises(InvalidProof):
            verify_map_proof(root, wrong_key, value_hash, proof)
    # A wrong value: another value hash, or absence claimed for a present key and back.
    wrong_value = data.draw(value_hashes.filter(lambda v: v != value_hash))
    with pytest.raises(InvalidProof):
        verify_map_proof(root, key, wrong_value, proof)
    with pytest.raises(InvalidProof):
        verify_map_proof(root, key, None if value_hash else wrong_value, proof)


@settings(max_examples=200, deadline=None)
@given(updates, keys, value_hashes, st.data())
def test_a_stale_root_fails(
    items: list[tuple[bytes, bytes]], key: bytes, value_hash: bytes, data: st.DataObject
) -> None:
    tree, reference = _built(items)
    stale = tree.root()
    if reference.get(key) == value_hash:
        return  # no update: the root does not move
    before = tree.prove(key)
    tree.set(key, value_hash)
    # The new proof against the stale root, and the stale proof against the new root.
    with pytest.raises(InvalidProof):
        verify_map_proof(stale, key, value_hash, tree.prove(key))
    with pytest.raises(InvalidProof):
        verify_map_proof(tree.root(), key, reference.get(key), before)
    # Any other key's proof from before the update, against the new root.
    if reference:
        other = data.draw(st.sampled_from(sorted(reference)))
        if other != key:
            stale_proof = StateMap(reference.items()).prove(other)
            with pytest.raises(InvalidProof):
                verify_map_proof(tree.root(), other, reference[other], stale_proof)


@settings(max_examples=200, deadline=None)
@given(updates.filter(bool), st.data())
def test_the_neighbour_forgery_fails(items: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    # Prove key A, then claim the proof shows the absence of B: B is A itself, or a key as
    # deep as A's leaf whose path leaves A's above it.
    tree, reference = _built(items)
    key = data.draw(st.sampled_from(sorted(reference)))
    proof = tree.prove(key)
    forged = MapProof(proof.bitmap, proof.siblings, key, reference[key])
    candidates = [key] + [_flip(key, bit) for bit in range(proof.depth)]
    claimed = data.draw(st.sampled_from(candidates))
    with pytest.raises(InvalidProof):
        verify_map_proof(tree.root(), claimed, None, forged)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(keys, value_hashes), max_size=30),
    st.integers(0, 30),
)
def test_replaying_the_entries_after_a_head_gives_the_later_root(
    goods: list[tuple[bytes, bytes]], cut: int
) -> None:
    # Entry i is of good goods[i]'s key, leaf index i, leaf hash goods[i]'s value hash.
    entries = [(key, i, leaf_hash) for i, (key, leaf_hash) in enumerate(goods)]
    earlier = replay(entries[:cut])
    tree = StateMap((key, value.value_hash()) for key, value in earlier.items())
    later = replay(entries[cut:], earlier)
    tree.apply((key, value.value_hash()) for key, value in later.items())
    everything = replay(entries)
    assert {**earlier, **later} == everything
    assert tree.root() == ref_root({k: v.value_hash() for k, v in everything.items()})


# -- known-answer vectors --------------------------------------------------------------------


def _vector_maps() -> list[tuple[str, str, dict[bytes, bytes], list[tuple[str, bytes]]]]:
    """(name, how its keys are made, items, (case, key) proofs to publish) per vector map."""
    near = _flip(KEY_A, 250)
    entries = []
    for i in range(1000):
        key = map_key(GoodType(1 + i % 3), _sha(b"statemap-vector/" + i.to_bytes(4, "big")))
        entries.append((key, i, _sha(b"leaf/" + i.to_bytes(8, "big"))))
        if i % 7 == 0:
            entries.append((key, 1000 + i, _sha(b"leaf/" + (1000 + i).to_bytes(8, "big"))))
    entries.sort(key=lambda entry: entry[1])
    thousand = {key: value.value_hash() for key, value in replay(entries).items()}
    some = sorted(thousand)
    return [
        ("empty", "no keys", {}, [("absent-empty", KEY_A)]),
        (
            "one-key",
            "one key (listed in items)",
            {KEY_A: VALUE_A},
            [("present", KEY_A), ("absent-neighbour", KEY_B)],
        ),
        (
            "two-keys-first-bit",
            "two keys, the first bit 0, the second 1: root = interior(leaf 0, leaf 1)",
            {KEY_A: VALUE_A, KEY_B: VALUE_B},
            [("present", KEY_A), ("present", KEY_B), ("absent-neighbour", _flip(KEY_B, 9))],
        ),
        (
            "two-keys-sharing-250-bits",
            "two keys differing only in bit 250: 250 interiors with one empty child",
            {KEY_A: VALUE_A, near: VALUE_B},
            [
                ("present", near),
                ("absent-empty", KEY_B),
                ("absent-neighbour", _flip(KEY_A, 255)),
            ],
        ),
        (
            "thousand-goods",
            "good i < 1000: type 1 + i mod 3, fingerprint SHA-256('statemap-vector/' || "
            "uint32 i); entries at leaf i, and 1000 + i when i mod 7 = 0, leaf hash "
            "SHA-256('leaf/' || uint64 leaf index); value = the history chain of its entries",
            thousand,
            [
                ("present", some[0]),
                ("present", some[500]),
                ("present", some[-1]),
                ("absent-empty", bytes(32)),
                ("absent-neighbour", _flip(some[500], 255)),
            ],
        ),
    ]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _unhex(text: str) -> bytes:
    assert text[:2] == "0x"
    return bytes.fromhex(text[2:])


def _rejected(key: bytes, value_hash: bytes | None, proof: MapProof) -> list[dict[str, Any]]:
    """Mutated claims a verifier must refuse, named after the mutation."""
    wrong_value = _sha(b"wrong") if value_hash is None else _flip(value_hash, 0)
    cases: list[tuple[str, bytes, bytes | None, MapProof]] = [
        ("wrong-value", key, wrong_value, proof)
    ]
    # An absence proof holds for every key below where its search ended: leave above it.
    if value_hash is not None or proof.depth:
        wrong_bit = 255 if value_hash is not None else proof.depth - 1
        cases.append(("wrong-key", _flip(key, wrong_bit), value_hash, proof))
    if proof.siblings:
        cases.append(("modified-sibling-bit", key, value_hash, _flipped(proof, 256)))
    if proof.neighbour_key is not None and proof.neighbour_value_hash is not None:
        cases.append(
            ("neighbour-is-the-key", proof.neighbour_key, None, proof),
        )
    elif value_hash is not None:
        as_neighbour = MapProof(proof.bitmap, proof.siblings, key, value_hash)
        cases.append(("neighbour-is-the-key", key, None, as_neighbour))
    return [
        {"desc": desc, "key": _hex(k), "value_hash": v and _hex(v), "proof": p.to_json()}
        for desc, k, v, p in cases
    ]


def render_vectors() -> str:
    maps = []
    for name, keys_made, items, cases in _vector_maps():
        tree = StateMap(sorted(items.items()))
        proofs = []
        for desc, key in cases:
            proof = tree.prove(key)
            value_hash = items.get(key)
            proofs.append(
                {
                    "desc": desc,
                    "key": _hex(key),
                    "value_hash": value_hash and _hex(value_hash),
                    "proof": proof.to_json(),
                    "rejected": _rejected(key, value_hash, proof),
                }
            )
        listed = [[_hex(k), _hex(v)] for k, v in sorted(items.items())] if len(items) < 10 else None
        maps.append(
            {
                "name": name,
                "keys": keys_made,
                "size": len(items),
                "items": listed,
                "root": _hex(tree.root()),
                "proofs": proofs,
            }
        )
    fingerprint = _sha(b"a file")
    value = MapValue.first(3, _sha(b"leaf 3")).then(8, _sha(b"leaf 8"))
    document = {
        "description": "tracemark state map v1 (registry/statemap.py): roots and proofs. "
        "Bytes are 0x-hex, as proofs' JSON form (MapProof.to_json); value_hash null "
        "claims absence; each 'rejected' case must fail verification against the map's root.",
        "map_keys": [
            {
                "good_type": good_type,
                "fingerprint": _hex(fingerprint),
                "key": _hex(map_key(good_type, fingerprint)),
            }
            for good_type in (1, 2, 3)
        ],
        "values": [
            {
                "entries": [[3, _hex(_sha(b"leaf 3"))], [8, _hex(_sha(b"leaf 8"))]],
                "value": {
                    "entry_count": value.entry_count,
                    "last_leaf_index": value.last_leaf_index,
                    "history": _hex(value.history),
                },
                "value_hash": _hex(value.value_hash()),
            }
        ],
        "maps": maps,
    }
    return json.dumps(document, indent=1) + "\n"


def test_vectors_are_up_to_date() -> None:
    assert VECTORS_FILE.read_text(encoding="utf-8") == render_vectors(), (
        "regenerate with: python -m tests.registry.test_statemap"
    )


def test_vectors_verify_and_match_the_reference() -> None:
    document = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    for item, (_, _, items, _) in zip(document["maps"], _vector_maps(), strict=True):
        root = _unhex(item["root"])
        assert root == ref_root(items)
        for case in item["proofs"]:
            key = _unhex(case["key"])
            value_hash = case["value_hash"] and _unhex(case["value_hash"])
            proof = MapProof.from_json(case["proof"])
            assert proof == ref_prove(items, key)
            verify_map_proof(root, key, value_hash, proof)
            for bad in case["rejected"]:
                with pytest.raises(InvalidProof):
                    verify_map_proof(
                        root,
                        _unhex(bad["key"]),
                        bad["value_hash"] and _unhex(bad["value_hash"]),
                        MapProof.from_json(bad["proof"]),
                    )


# -- mutation probes: the tests above catch a broken hasher ----------------------------------


def _probe(check: Callable[[], None]) -> None:
    with pytest.raises((AssertionError, InvalidProof)):
        check()


def test_probe_swapped_prefix_bytes_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statemap, "_LEAF_NODE_PREFIX", b"\x11")
    monkeypatch.setattr(statemap, "_INTERIOR_PREFIX", b"\x10")
    _probe(_check_hand_computed)
    _probe(test_vectors_are_up_to_date)


def test_probe_swapped_children_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = statemap.hash_interior
    monkeypatch.setattr(statemapnodes, "hash_interior", lambda left, right: original(right, left))
    _probe(_check_hand_computed)
    _probe(test_vectors_are_up_to_date)


def test_probe_a_dropped_bitmap_bit_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # A prover that leaves out the top non-empty sibling (its bit and its hash).
    honest = StateMap.prove

    def lossy(self: StateMap, key: bytes) -> MapProof:
        proof = honest(self, key)
        bits = int.from_bytes(proof.bitmap, "big")
        if not bits:
            return proof
        top = 1 << (bits.bit_length() - 1)
        return MapProof((bits ^ top).to_bytes(32, "big"), proof.siblings[1:])

    monkeypatch.setattr(StateMap, "prove", lossy)
    _probe(_check_hand_computed)
    _probe(test_vectors_are_up_to_date)


if __name__ == "__main__":
    VECTORS_FILE.write_text(render_vectors(), encoding="utf-8")
    print(f"wrote {VECTORS_FILE}")
