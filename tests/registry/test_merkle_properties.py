"""Hypothesis properties and the committed corpus: all roots and proofs match the reference."""

from __future__ import annotations

import functools
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidProof
from registry.merkle import (
    HASH_SIZE,
    RootBuilder,
    hash_leaf,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from registry.tiles import MemoryTree
from tests.registry import merkle_reference as ref

CORPUS = Path(__file__).parent / "corpus" / "merkle_cases.json"
NAIVE_LIMIT = 1024
"""Trees up to this size are also compared with the naive recursive reference."""


def _leaves(count: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(count)]


def _chunked(leaf_hashes: list[bytes], chunks: list[int]) -> MemoryTree:
    """A MemoryTree fed in the given chunk sizes (cycled), whatever they add up to."""
    tree, start, turn = MemoryTree(), 0, 0
    while start < len(leaf_hashes):
        size = chunks[turn % len(chunks)] if chunks else len(leaf_hashes)
        tree.append(leaf_hashes[start : start + size])
        start, turn = start + size, turn + 1
    return tree


def _flip(element: bytes, bit: int) -> bytes:
    flipped = bytearray(element)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


sizes = st.integers(min_value=0, max_value=300)
seeds = st.integers(min_value=0, max_value=2**32)
chunk_lists = st.lists(st.integers(min_value=1, max_value=300), max_size=6)


# -- roots ----------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(leaf_data=st.lists(st.binary(max_size=80), max_size=300), chunks=chunk_lists)
def test_every_root_agrees(leaf_data: list[bytes], chunks: list[int]) -> None:
    leaf_hashes = [hash_leaf(data) for data in leaf_data]
    assert leaf_hashes == [ref.leaf_hash(data) for data in leaf_data]
    expected = ref.mth(leaf_hashes)
    builder = RootBuilder()
    builder.extend(leaf_hashes)
    tree = _chunked(leaf_hashes, chunks)
    assert root_from_leaf_hashes(leaf_hashes) == expected
    assert builder.root() == expected
    assert builder.size == tree.size == len(leaf_hashes)
    assert tree.root() == expected


@settings(max_examples=100, deadline=None)
@given(size=sizes, seed=seeds, chunks=chunk_lists, data=st.data())
def test_old_roots_stay_readable(size: int, seed: int, chunks: list[int], data: Any) -> None:
    leaf_hashes = _leaves(size, seed)
    tree = _chunked(leaf_hashes, chunks)
    for old in data.draw(st.lists(st.integers(0, size), max_size=5)):
        assert tree.root(old) == ref.mth(leaf_hashes[:old])


# -- proofs -----------------------------------------------------------------------------------


@settings(max_examples=250, deadline=None)
@given(size=sizes.filter(bool), seed=seeds, chunks=chunk_lists, data=st.data())
def test_inclusion_proofs_match_the_reference(
    size: int, seed: int, chunks: list[int], data: Any
) -> None:
    leaf_hashes = _leaves(size, seed)
    tree = _chunked(leaf_hashes, chunks)
    for _ in range(4):
        tree_size = data.draw(st.integers(1, size), label="tree_size")
        index = data.draw(st.integers(0, tree_size - 1), label="index")
        proof = tree.inclusion_proof(index, tree_size)
        assert proof == ref.path(index, leaf_hashes[:tree_size])
        verify_inclusion(
            leaf_hashes[index], index, tree_size, proof, ref.mth(leaf_hashes[:tree_size])
        )


@settings(max_examples=250, deadline=None)
@given(size=sizes.filter(bool), seed=seeds, chunks=chunk_lists, data=st.data())
def test_consistency_proofs_match_the_reference(
    size: int, seed: int, chunks: list[int], data: Any
) -> None:
    leaf_hashes = _leaves(size, seed)
    tree = _chunked(leaf_hashes, chunks)
    for _ in range(4):
        size2 = data.draw(st.integers(1, size), label="size2")
        size1 = data.draw(st.integers(1, size2), label="size1")
        proof = tree.consistency_proof(size1, size2)
        assert proof == ref.proof(size1, leaf_hashes[:size2])
        root1, root2 = ref.mth(leaf_hashes[:size1]), ref.mth(leaf_hashes[:size2])
        verify_consistency(size1, size2, proof, root1, root2)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(2, 300), seed=seeds, data=st.data())
def test_any_flipped_inclusion_bit_fails(size: int, seed: int, data: Any) -> None:
    leaf_hashes = _leaves(size, seed)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = ref.path(index, leaf_hashes)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    proof[position] = _flip(proof[position], bit)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf_hashes[index], index, size, proof, ref.mth(leaf_hashes))


@settings(max_examples=300, deadline=None)
@given(size2=st.integers(2, 300), seed=seeds, data=st.data())
def test_any_flipped_consistency_bit_fails(size2: int, seed: int, data: Any) -> None:
    leaf_hashes = _leaves(size2, seed)
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    proof = ref.proof(size1, leaf_hashes)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, HASH_SIZE * 8 - 1), label="bit")
    proof[position] = _flip(proof[position], bit)
    root1, root2 = ref.mth(leaf_hashes[:size1]), ref.mth(leaf_hashes)
    with pytest.raises(InvalidProof):
        verify_consistency(size1, size2, proof, root1, root2)


# -- a tree with two tile levels, appended in random chunks --------------------------------


def test_70000_leaves_in_random_chunks() -> None:
    leaf_hashes = _leaves(70_000, seed=70)
    rng = random.Random(70_000)
    tree = MemoryTree()
    while tree.size < len(leaf_hashes):
        chunk = rng.choice([1, 7, 255, 256, 257, 1000, rng.randrange(1, 9000)])
        tree.append(leaf_hashes[tree.size : tree.size + chunk])
    assert {tile_level for tile_level, _ in tree.tiles} == {0, 1, 2}

    def fast(hashes: ref.LeafHashes) -> bytes:
        return root_from_leaf_hashes(hashes)

    for size in (65_535, 65_536, 65_537, 70_000):
        assert tree.root(size) == root_from_leaf_hashes(leaf_hashes[:size])
    root = tree.root()
    for index in (0, 255, 256, 65_535, 65_536, 69_999):
        proof = tree.inclusion_proof(index)
        assert proof == ref.path(index, leaf_hashes, fast)
        verify_inclusion(leaf_hashes[index], index, 70_000, proof, root)
    for size1 in (1, 256, 65_536, 65_537):
        proof = tree.consistency_proof(size1)
        assert proof == ref.proof(size1, leaf_hashes, fast)
        verify_consistency(size1, 70_000, proof, tree.root(size1), root)


# -- the committed corpus ---------------------------------------------------------------------


def _corpus() -> list[Any]:
    cases = json.loads(CORPUS.read_text())["cases"]
    return [
        pytest.param(c["size"], c["index"], c["size2"], id=f"{c['size']}-{c['index']}-{c['size2']}")
        for c in cases
    ]


@functools.cache
def _corpus_leaves() -> list[bytes]:
    return [hashlib.sha256(b"corpus:" + str(i).encode()).digest() for i in range(70_000)]


@functools.cache
def _corpus_tree() -> MemoryTree:
    return _chunked(_corpus_leaves(), [1, 300, 4096, 255, 65_000, 3])


@functools.cache
def _corpus_root(size: int) -> bytes:
    return root_from_leaf_hashes(_corpus_leaves()[:size])


@pytest.mark.parametrize(("size", "index", "size2"), _corpus())
def test_corpus_case(size: int, index: int, size2: int) -> None:
    leaf_hashes, tree = _corpus_leaves(), _corpus_tree()
    assert 0 <= index < size <= size2 <= tree.size
    root1, root2 = tree.root(size), tree.root(size2)
    assert (root1, root2) == (_corpus_root(size), _corpus_root(size2))
    inclusion = tree.inclusion_proof(index, size)
    consistency = tree.consistency_proof(size, size2)
    verify_inclusion(leaf_hashes[index], index, size, inclusion, root1)
    verify_inclusion(leaf_hashes[index], index, size2, tree.inclusion_proof(index, size2), root2)
    verify_consistency(size, size2, consistency, root1, root2)
    if size2 <= NAIVE_LIMIT:
        assert inclusion == ref.path(index, leaf_hashes[:size])
        expected = ref.proof(size, leaf_hashes[:size2]) if size < size2 else []
        assert consistency == expected
