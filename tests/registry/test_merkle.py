"""Known answers, exhaustive small trees and named mutation probes for registry.merkle."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.errors import InvalidInput, InvalidProof, ProofOutOfRange, TracemarkError
from registry.merkle import (
    HASH_SIZE,
    MAX_PROOF_LENGTH,
    MAX_TREE_SIZE,
    ProofPlan,
    RootBuilder,
    consistency_plan,
    empty_root,
    hash_children,
    hash_leaf,
    inclusion_plan,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_plan,
    verify_consistency,
    verify_inclusion,
)
from registry.tiles import MemoryTree
from tests.registry import merkle_reference as ref

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962-transparency-dev"

# The RFC 6962 test tree of certificate-transparency / trillian and its roots at sizes 1..8.
LEAF_DATA = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
LEAVES = [hash_leaf(data) for data in LEAF_DATA]
INCLUSION_PAIRS = [(index, size) for size in range(1, 9) for index in range(size)]
CONSISTENCY_PAIRS = [(size1, size2) for size2 in range(1, 9) for size1 in range(1, size2)]

Verify = Callable[[], None]


def _tree(size: int) -> MemoryTree:
    tree = MemoryTree()
    tree.append(LEAVES[:size])
    return tree


def _flip(element: bytes, bit: int) -> bytes:
    flipped = bytearray(element)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


# -- known answers -----------------------------------------------------------------------------


def test_empty_root() -> None:
    assert empty_root().hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert root_from_leaf_hashes([]) == empty_root()
    assert RootBuilder().root() == empty_root()
    assert MemoryTree().root() == empty_root()


def test_leaf_hash_of_empty_data() -> None:
    assert hash_leaf(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_tree_root(size: int) -> None:
    builder = RootBuilder()
    builder.extend(LEAVES[:size])
    assert root_from_leaf_hashes(LEAVES[:size]) == ROOTS[size - 1]
    assert builder.root() == ROOTS[size - 1]
    assert _tree(size).root() == ROOTS[size - 1]
    assert ref.mth(LEAVES[:size]) == ROOTS[size - 1]


def test_root_of_8_is_the_vectors_root() -> None:
    case = json.loads((VECTORS / "inclusion" / "1" / "happy-path.json").read_text())
    assert base64.b64decode(case["root"]) == ROOTS[7]
    assert base64.b64decode(case["leafHash"]) == LEAVES[0]


def test_root_builder_appends_one_by_one() -> None:
    builder = RootBuilder()
    for size, leaf in enumerate(LEAVES, start=1):
        builder.append(leaf)
        assert builder.size == size
        assert builder.root() == ROOTS[size - 1]


def test_root_builder_keeps_hashes_before_a_malformed_one() -> None:
    builder = RootBuilder()
    with pytest.raises(InvalidInput, match="leaf hash 2 has 31 bytes"):
        builder.extend([LEAVES[0], LEAVES[1], b"\x00" * 31])
    assert builder.size == 2
    assert builder.root() == ROOTS[1]
    with pytest.raises(InvalidInput, match="leaf hash 2 has 0 bytes"):
        builder.append(b"")
    assert builder.size == 2


def test_root_from_leaf_hashes_rejects_a_malformed_hash() -> None:
    with pytest.raises(InvalidInput, match="leaf hash 1 has 33 bytes"):
        root_from_leaf_hashes([LEAVES[0], b"\x00" * 33])


# -- every proof of the 8-leaf tree --------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), INCLUSION_PAIRS)
def test_inclusion_proof_verifies(index: int, size: int) -> None:
    proof = _tree(8).inclusion_proof(index, size)
    assert proof == ref.path(index, LEAVES[:size])
    verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size - 1])
    assert root_from_inclusion_proof(LEAVES[index], index, size, proof) == ROOTS[size - 1]


@pytest.mark.parametrize(("size1", "size2"), CONSISTENCY_PAIRS)
def test_consistency_proof_verifies(size1: int, size2: int) -> None:
    proof = _tree(8).consistency_proof(size1, size2)
    assert proof == ref.proof(size1, LEAVES[:size2])
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


@pytest.mark.parametrize("size", range(0, 9))
def test_trivial_consistency(size: int) -> None:
    root = ROOTS[size - 1] if size else empty_root()
    assert _tree(8).consistency_proof(size, size) == []
    verify_consistency(size, size, [], root, root)
    # transparency-dev semantics: every tree extends the empty one, with an empty proof.
    assert _tree(8).consistency_proof(0, size) == []
    verify_consistency(0, size, [], empty_root(), root)


def test_known_plans() -> None:
    assert inclusion_plan(5, 8).elements == (((0, 4),), ((1, 3),), ((2, 0),))
    # Leaves 4..6 of a 7-leaf tree are an ephemeral node: the fold of (1, 2) and (0, 6).
    assert inclusion_plan(0, 7).elements == (((0, 1),), ((1, 1),), ((1, 2), (0, 6)))
    assert consistency_plan(6, 8).elements == (((1, 2),), ((1, 3),), ((2, 0),))
    assert consistency_plan(4, 8).elements == (((2, 1),),)
    assert root_plan(7).elements == (((2, 0), (1, 2), (0, 6)),)
    assert inclusion_plan(0, 7).node_ids == {(0, 1), (1, 1), (1, 2), (0, 6)}


def test_root_plan_of_the_empty_tree() -> None:
    assert root_plan(0).assemble({}) == [empty_root()]


def test_plan_reports_a_missing_hash() -> None:
    with pytest.raises(InvalidInput, match=r"node \(0, 4\) was not supplied"):
        inclusion_plan(5, 8).assemble({(1, 3): ROOTS[0], (2, 0): ROOTS[0]})


def test_plan_rejects_malformed_nodes() -> None:
    with pytest.raises(InvalidInput):
        ProofPlan((((-1, 0),),))
    with pytest.raises(InvalidInput):
        ProofPlan((((0, 0),),) * (MAX_PROOF_LENGTH + 2))


@pytest.mark.parametrize(
    ("make_plan", "message"),
    [
        (lambda: inclusion_plan(0, 0), "leaf index 0"),
        (lambda: inclusion_plan(8, 8), "leaf index 8"),
        (lambda: inclusion_plan(-1, 8), "leaf index -1"),
        (lambda: consistency_plan(9, 8), "size1 9"),
        (lambda: consistency_plan(-1, 8), "size1 -1"),
        (lambda: root_plan(-1), "tree size -1"),
        (lambda: root_plan(MAX_TREE_SIZE + 1), "tree size"),
    ],
)
def test_plans_out_of_range(make_plan: Callable[[], ProofPlan], message: str) -> None:
    with pytest.raises(ProofOutOfRange, match=message):
        make_plan()


def test_proof_length_bound_holds_at_the_largest_tree() -> None:
    # Inclusion paths never exceed 64 hashes; a consistency proof adds at most its seed.
    assert len(inclusion_plan(MAX_TREE_SIZE - 1, MAX_TREE_SIZE).elements) <= MAX_PROOF_LENGTH
    assert len(inclusion_plan(0, MAX_TREE_SIZE).elements) == MAX_PROOF_LENGTH
    assert len(consistency_plan(2**63 - 1, MAX_TREE_SIZE).elements) == MAX_PROOF_LENGTH + 1


def test_too_long_proofs_are_refused_before_hashing() -> None:
    proof = [ROOTS[0]] * (MAX_PROOF_LENGTH + 1)
    with pytest.raises(InvalidProof, match="more than the limit 64"):
        verify_inclusion(LEAVES[0], 0, 8, proof, ROOTS[7])
    with pytest.raises(InvalidProof, match="more than the limit 65"):
        verify_consistency(1, 8, [*proof, ROOTS[0]], ROOTS[0], ROOTS[7])


def test_wrong_length_says_what_was_expected() -> None:
    proof = ref.path(5, LEAVES)
    with pytest.raises(
        InvalidProof,
        match="inclusion proof has 4 hashes, expected 3 for index 5 in a tree of size 8",
    ):
        verify_inclusion(LEAVES[5], 5, 8, [*proof, ROOTS[0]], ROOTS[7])


def test_sizes_outside_uint64_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        verify_inclusion(LEAVES[0], -1, 8, [], ROOTS[7])
    with pytest.raises(InvalidInput):
        verify_consistency(1, MAX_TREE_SIZE + 1, [], ROOTS[0], ROOTS[7])


# -- mutation probes (named as in transparency-dev's vectors) -----------------------------------


def _inclusion_mutations(index: int, size: int) -> dict[str, Verify]:
    proof = ref.path(index, LEAVES[:size])
    root, leaf = ROOTS[size - 1], LEAVES[index]

    def probe(
        leaf_hash: bytes = leaf, leaf_index: int = index, proof: list[bytes] = proof
    ) -> Verify:
        return lambda: verify_inclusion(leaf_hash, leaf_index, size, proof, root)

    mutations = {
        "wrong-leaf": probe(leaf_hash=hash_leaf(b"not a leaf of the tree")),
        "leaf-index-plus-1": probe(leaf_index=index + 1),
        "leaf-index-minus-1": probe(leaf_index=index - 1),
        "extended": probe(proof=[*proof, root]),
        "preceding-garbage": probe(proof=[b"", *proof]),
        "wrong-root": lambda: verify_inclusion(leaf, index, size, proof, ROOTS[size - 2]),
    }
    if size > 1:
        mutations["wrong-leaf-of-the-tree"] = probe(leaf_hash=LEAVES[(index + 1) % size])
    if proof:
        mutations["truncated"] = probe(proof=proof[:-1])
        mutations["hash-31-bytes"] = probe(proof=[proof[0][:31], *proof[1:]])
        mutations["hash-33-bytes"] = probe(proof=[proof[0] + b"\x00", *proof[1:]])
    if len(proof) >= 2:
        mutations["swapped"] = probe(proof=[proof[1], proof[0], *proof[2:]])
    return mutations


INCLUSION_MUTATIONS = [
    pytest.param(index, size, name, id=f"{name}-{index}-of-{size}")
    for index, size in INCLUSION_PAIRS
    for name in _inclusion_mutations(index, size)
]


@pytest.mark.parametrize(("index", "size", "name"), INCLUSION_MUTATIONS)
def test_inclusion_mutation_rejected(index: int, size: int, name: str) -> None:
    with pytest.raises(TracemarkError):
        _inclusion_mutations(index, size)[name]()


def _consistency_mutations(size1: int, size2: int) -> dict[str, Verify]:
    proof = ref.proof(size1, LEAVES[:size2])
    root1, root2 = ROOTS[size1 - 1], ROOTS[size2 - 1]

    def probe(
        s1: int = size1, r1: bytes = root1, r2: bytes = root2, proof: list[bytes] = proof
    ) -> Verify:
        return lambda: verify_consistency(s1, size2, proof, r1, r2)

    mutations = {
        "size1-plus-1": probe(s1=size1 + 1),
        "size1-minus-1": probe(s1=size1 - 1),
        "empty-proof": probe(proof=[]),
        "truncated": probe(proof=proof[:-1]),
        "extended": probe(proof=[*proof, root1]),
        "preceding-root1": probe(proof=[root1, *proof]),
        "wrong-root1": probe(r1=ROOTS[size2 - 1]),
        "wrong-root2": probe(r2=ROOTS[size1 - 1]),
        "swapped-roots": probe(r1=root2, r2=root1),
        "hash-31-bytes": probe(proof=[proof[0][:31], *proof[1:]]),
        "hash-33-bytes": probe(proof=[*proof[:-1], proof[-1] + b"\x00"]),
    }
    if len(proof) >= 2:
        mutations["swapped"] = probe(proof=[proof[1], proof[0], *proof[2:]])
    return mutations


CONSISTENCY_MUTATIONS = [
    pytest.param(size1, size2, name, id=f"{name}-{size1}-to-{size2}")
    for size1, size2 in CONSISTENCY_PAIRS
    for name in _consistency_mutations(size1, size2)
]


@pytest.mark.parametrize(("size1", "size2", "name"), CONSISTENCY_MUTATIONS)
def test_consistency_mutation_rejected(size1: int, size2: int, name: str) -> None:
    with pytest.raises(TracemarkError):
        _consistency_mutations(size1, size2)[name]()


@pytest.mark.parametrize(("index", "size"), [(5, 8), (0, 7), (2, 3), (1, 5), (6, 7)])
def test_modified_proof_bit_rejected_at_every_position(index: int, size: int) -> None:
    proof = ref.path(index, LEAVES[:size])
    for position, element in enumerate(proof):
        for bit in range(HASH_SIZE * 8):
            mutated = [*proof[:position], _flip(element, bit), *proof[position + 1 :]]
            with pytest.raises(InvalidProof):
                verify_inclusion(LEAVES[index], index, size, mutated, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2"), [(1, 8), (6, 8), (2, 5), (6, 7), (3, 7)])
def test_modified_consistency_bit_rejected_at_every_position(size1: int, size2: int) -> None:
    proof = ref.proof(size1, LEAVES[:size2])
    for position, element in enumerate(proof):
        for bit in range(HASH_SIZE * 8):
            mutated = [*proof[:position], _flip(element, bit), *proof[position + 1 :]]
            with pytest.raises(InvalidProof):
                verify_consistency(size1, size2, mutated, ROOTS[size1 - 1], ROOTS[size2 - 1])


@pytest.mark.parametrize(("index", "size"), [p for p in INCLUSION_PAIRS if p[0] < p[1] - 1])
def test_tree_size_minus_1(index: int, size: int) -> None:
    """A smaller tree size is rejected whenever it changes the path's shape.

    NOTE: when the path keeps its length and left/right pattern (e.g. leaf 0 of 8 vs of 7),
    the same hashes are chained and the proof verifies: RFC 9162 binds the size through the
    root, which the verifier must take from a signed (size, root) tree head, never from the
    prover. transparency-dev's vectors only mutate the size by x2 and /2 for this reason.
    """
    proof = ref.path(index, LEAVES[:size])
    root = ROOTS[size - 1]
    if len(ref.path(index, LEAVES[: size - 1])) != len(proof):
        with pytest.raises(InvalidProof):
            verify_inclusion(LEAVES[index], index, size - 1, proof, root)
    # Against the smaller tree's own root, the bigger tree's path never verifies.
    with pytest.raises(InvalidProof):
        verify_inclusion(LEAVES[index], index, size - 1, proof, ROOTS[size - 2])


def test_tree_size_is_bound_by_the_root() -> None:
    # See test_tree_size_minus_1: documents the RFC's behaviour rather than a choice of ours.
    verify_inclusion(LEAVES[0], 0, 7, ref.path(0, LEAVES), ROOTS[7])


# -- classic attacks ----------------------------------------------------------------------------


def test_cve_2012_2459_duplicated_last_leaf_changes_the_root() -> None:
    a, b, c = LEAVES[1:4]
    builder = RootBuilder()
    builder.extend([a, b, c, c])
    assert root_from_leaf_hashes([a, b, c]) != root_from_leaf_hashes([a, b, c, c])
    assert builder.root() != root_from_leaf_hashes([a, b, c])
    assert ref.mth([a, b, c]) != ref.mth([a, b, c, c])


def test_a_64_byte_leaf_is_not_the_node_of_its_two_halves() -> None:
    left, right = LEAVES[0], LEAVES[1]
    assert hash_leaf(left + right) != hash_children(left, right)
    assert hash_leaf(left + right) != ROOTS[1]


def test_an_inner_node_cannot_be_proved_as_a_leaf() -> None:
    # Node (1, 0) of the 4-leaf tree, with its honest path above it: [node (1, 1)].
    inner_node, path_above = ROOTS[1], [hash_children(LEAVES[2], LEAVES[3])]
    assert hash_children(inner_node, path_above[0]) == ROOTS[3]
    forged = [
        (inner_node, 0, 4, path_above),  # the node itself posing as leaf 0 of the real tree
        (hash_leaf(LEAVES[0] + LEAVES[1]), 0, 4, path_above),  # its 64 bytes as leaf data
        (hash_leaf(LEAVES[0] + LEAVES[1]), 0, 2, path_above),  # ...in a tree of 2 "leaves"
    ]
    for leaf_hash, index, size, proof in forged:
        with pytest.raises(InvalidProof):
            verify_inclusion(leaf_hash, index, size, proof, ROOTS[3])


# -- purity -------------------------------------------------------------------------------------

ALLOWED_IMPORTS = {
    "__future__",
    "functools",
    "hashlib",
    "collections.abc",
    "dataclasses",
    "typing",
    "registry.errors",
}


@pytest.mark.parametrize("module", ["merkle", "tiles"])
def test_module_is_pure(module: str) -> None:
    source = Path(__file__).resolve().parents[2] / "registry" / f"{module}.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= ALLOWED_IMPORTS | {"registry.merkle"}
