"""StateMap as the state commitments use it (issue 14): entries chained in the one-descent
merge, values kept, persistent snapshots and O(1) rewind, against the naive reference."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidInput
from registry.statemap import MapValue, replay, verify_map_proof
from registry.statemaptree import MapSnapshot, StateMap
from registry.statemapvalues import pack_value, unpack_value
from tests.registry.test_statemap import ref_prove, ref_root

_POOL = [bytes([i]) * 31 + bytes([i * 37 % 256]) for i in range(12)]
"""A few keys, some sharing long prefixes, so batches often hit keys already in the map."""

keys = st.one_of(st.sampled_from(_POOL), st.binary(min_size=32, max_size=32))
batches = st.lists(st.lists(st.tuples(keys, st.binary(min_size=32, max_size=32)), max_size=12))


def _numbered(batch_list: list[list[tuple[bytes, bytes]]]) -> list[list[tuple[bytes, int, bytes]]]:
    """Give every entry its leaf index, in log order across the batches (with gaps)."""
    numbered, leaf_index = [], 0
    for batch in batch_list:
        entries = []
        for key, leaf_hash in batch:
            leaf_index += 1 + leaf_hash[0] % 3
            entries.append((key, leaf_index, leaf_hash))
        numbered.append(entries)
    return numbered


def _hashes(values: dict[bytes, MapValue]) -> dict[bytes, bytes]:
    return {key: value.value_hash() for key, value in values.items()}


def _check(view: StateMap | MapSnapshot, values: dict[bytes, MapValue], root: bytes) -> None:
    assert root == ref_root(_hashes(values))
    for key in [*_POOL[:4], *list(values)[:4]]:
        assert view.value(key) == values.get(key)
        proof = view.prove(key)
        assert proof == ref_prove(_hashes(values), key)
        value = values.get(key)
        verify_map_proof(root, key, None if value is None else value.value_hash(), proof)


@settings(max_examples=200, deadline=None)
@given(batches)
def test_appended_entries_give_the_reference_values_and_root(
    batch_list: list[list[tuple[bytes, bytes]]],
) -> None:
    tree, values = StateMap(), {}
    for entries in _numbered(batch_list):
        tree.append(entries)
        values.update(replay(entries, values))
        _check(tree, values, tree.root())
    assert len(tree) == len(values)
    assert dict(tree.items()) == _hashes(values)


@settings(max_examples=150, deadline=None)
@given(batches, st.lists(st.tuples(keys, st.binary(min_size=32, max_size=32)), max_size=4))
def test_snapshots_never_change_and_rewind_restores_them(
    batch_list: list[list[tuple[bytes, bytes]]], later: list[tuple[bytes, bytes]]
) -> None:
    tree, values = StateMap(), {}
    kept: list[tuple[MapSnapshot, dict[bytes, MapValue]]] = []
    numbered = _numbered(batch_list)
    for entries in numbered:
        kept.append((tree.snapshot(), dict(values)))
        tree.append(entries)
        values.update(replay(entries, values))
    kept.append((tree.snapshot(), dict(values)))
    # Later updates of every kind, after the last snapshot.
    last = max((leaf_index for entries in numbered for _, leaf_index, _ in entries), default=0)
    tree.append([(key, last + 1 + i, leaf_hash) for i, (key, leaf_hash) in enumerate(later)])
    tree.apply([(os.urandom(32), MapValue.first(0, os.urandom(32)))])
    tree.set(os.urandom(32), os.urandom(32))
    for snapshot, at in kept:
        assert len(snapshot) == len(at)
        _check(snapshot, at, snapshot.root)
    # Rewind to each (newest first, then an old one again), and go on from there.
    for snapshot, at in [*reversed(kept), kept[0]]:
        tree.rewind(snapshot)
        assert tree.root() == snapshot.root and len(tree) == len(at)
        extra = [(key, 10**6 + i, leaf_hash) for i, (key, leaf_hash) in enumerate(later)]
        tree.append(extra)
        moved = {**at, **replay(extra, at)}
        _check(tree, moved, tree.root())
        _check(snapshot, at, snapshot.root)


def test_a_packed_value_is_the_map_value() -> None:
    value = MapValue(3, 2**63, os.urandom(32))
    packed = pack_value(value)
    assert len(packed) == 48 and unpack_value(packed) == value
    assert StateMap([(bytes(32), value)]).get(bytes(32)) == value.value_hash()


def test_entries_out_of_log_order_are_refused_and_change_nothing() -> None:
    key, other = os.urandom(32), os.urandom(32)
    tree = StateMap()
    tree.append([(key, 5, os.urandom(32))])
    root = tree.root()
    for refused in (
        [(key, 5, os.urandom(32))],  # not after its last entry
        [(other, 9, os.urandom(32)), (other, 8, os.urandom(32))],  # out of order in a batch
        [(other, -1, os.urandom(32))],
        [(other, 7, b"short")],
        [(b"short", 7, os.urandom(32))],
    ):
        with pytest.raises(InvalidInput):
            tree.append(refused)
        assert tree.root() == root and len(tree) == 1
    # Refused where the merge meets the key, after the subtrees to its left were merged.
    tree.append([(os.urandom(32), 10 + i, os.urandom(32)) for i in range(200)])
    last = b"\xff" * 32
    tree.append([(last, 300, os.urandom(32))])
    root, items = tree.root(), list(tree.items())
    late = [(os.urandom(32), 400 + i, os.urandom(32)) for i in range(100)]
    with pytest.raises(InvalidInput, match="does not follow"):
        tree.append([*late, (last, 299, os.urandom(32))])
    assert tree.root() == root and list(tree.items()) == items


def test_entries_cannot_chain_onto_a_bare_value_hash() -> None:
    key = os.urandom(32)
    tree = StateMap([(key, os.urandom(32))])
    with pytest.raises(InvalidInput, match="only a value hash"):
        tree.append([(key, 1, os.urandom(32))])
    with pytest.raises(InvalidInput, match="only a value hash"):
        tree.value(key)
    with pytest.raises(InvalidInput):
        tree.apply([(key, b"\x00" * 48)])  # a packed value only comes from a MapValue


def test_a_prefix_of_a_key_is_not_the_key() -> None:
    # A leaf is one bytes object starting with its key: a lookup must compare the whole key.
    key = os.urandom(32)
    tree = StateMap()
    tree.append([(key, 0, os.urandom(32))])
    for other in (key[:16], key[:31], key + b"\x00", b""):
        assert tree.get(other) is None and other not in tree
    assert tree.get(key) is not None and key in tree


@settings(max_examples=150, deadline=None)
@given(batches, st.lists(st.integers(min_value=1, max_value=12), max_size=6), st.booleans())
def test_a_batch_merged_at_once_equals_its_entries_one_by_one(
    batch_list: list[list[tuple[bytes, bytes]]], cuts: list[int], rooted: bool
) -> None:
    """The one-descent batch merge (what a bulk chunk does) against one insert per entry:
    the same root, whatever the split of the stream into merges, and with or without roots
    taken (hashes computed) between them."""
    stream = [entry for entries in _numbered(batch_list) for entry in entries]
    one_by_one = StateMap()
    values: dict[bytes, MapValue] = {}
    for entry in stream:
        values.update(replay([entry], values))
        key = entry[0]
        one_by_one.set(key, values[key].value_hash())
    split, start = StateMap(), 0
    for size in [*cuts, len(stream)]:
        split.append(stream[start : start + size])
        start += size
        if rooted:
            split.root()
    whole = StateMap()
    whole.append(stream)
    assert whole.root() == split.root() == one_by_one.root() == ref_root(_hashes(values))
    assert len(whole) == len(split) == len(one_by_one) == len(values)
