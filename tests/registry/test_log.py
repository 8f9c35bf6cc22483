"""The log on the database: contiguous sequencing, stored tiles, signed heads, proofs.

Runs on SQLite and PostgreSQL. THREATS 9 (out-of-range proofs) and 10 (end-to-end cross-check).
"""

from __future__ import annotations

import random

import pytest
from eth_account import Account

from registry import merkle
from registry.eip712 import DEV_DOMAIN, digest
from registry.errors import NotFound, ProofOutOfRange
from registry.leaf import LeafData
from registry.service import Registry
from registry.signatures import Signature, recover_signer
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.registry.merkle_reference import leaf_hash, mth


def _fill(registry: Registry, make_creator: CreatorFactory, clock: Clock, n: int) -> None:
    creators = [make_creator() for _ in range(3)]
    for i in range(n):
        registry.register(registration(creators[i % 3], clock()))
        if i % 7 == 6:
            clock.advance(1)
            registry.sequence()


def _all_leaves(registry: Registry, size: int) -> list[bytes]:
    return [registry.entry_at(i).leaf_data() for i in range(size)]


def _root(leaves: list[bytes]) -> bytes:
    """The naive reference root over leaf data (RFC 6962 MTH), sharing no code with the log."""
    return mth([leaf_hash(leaf) for leaf in leaves])


def test_sequencing_assigns_contiguous_indices_and_signs_each_head(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    _fill(registry, make_creator, clock, 30)
    head = registry.sequence_all()
    # 30 entries and 5 heads, each ending with its state commitment (issue 14).
    assert head is not None and head.tree_size == 35
    indices = sorted(registry.entry_at(i).leaf_index for i in range(35))  # type: ignore[type-var]
    assert indices == list(range(35))
    # Every head is an EIP-712 TreeHead signed by the registry key under the stored domain.
    for size in (8, 16, 35):
        stored = registry.tree_head(size)
        message = {"size": stored.tree_size, "root": stored.root, "timestamp": stored.timestamp}
        signer = recover_signer(
            digest("TreeHead", message, stored.domain), Signature.parse(stored.signature)
        )
        assert signer == registry.address
        assert stored.domain == DEV_DOMAIN


def test_end_to_end_cross_check_of_roots_leaves_and_heads(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """THREATS 10: the stored tiles, the heads and a rebuild from the entries agree exactly."""
    _fill(registry, make_creator, clock, 300)  # more than one 256-wide tile
    registry.sequence_all()
    head = registry.latest_tree_head()
    # 300 entries and 43 heads, each ending with its state commitment (issue 14).
    assert head is not None and head.tree_size == 343
    leaves = _all_leaves(registry, 343)
    assert len(set(leaves)) == 343  # no two leaves with equal leaf_data
    for leaf in leaves:
        LeafData.decode(leaf)  # every stored leaf is a valid v1 encoding
    assert head.root == _root(leaves)
    for size in range(8, 343, 8):
        assert registry.tree_head(size).root == _root(leaves[:size])


def test_inclusion_and_consistency_proofs_from_storage_verify(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    _fill(registry, make_creator, clock, 280)
    registry.sequence_all()
    leaves = _all_leaves(registry, 280)
    rng = random.Random(7)
    for _ in range(60):
        size = rng.randint(1, 280)
        index = rng.randrange(size)
        proof = registry.inclusion_proof(index, size)
        merkle.verify_inclusion(
            merkle.hash_leaf(leaves[index]), index, size, proof, _root(leaves[:size])
        )
        old = rng.randint(0, size)
        consistency = registry.consistency_proof(old, size)
        if old:
            merkle.verify_consistency(
                old, size, consistency, _root(leaves[:old]), _root(leaves[:size])
            )


def test_out_of_range_proofs_are_refused_cleanly(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """THREATS 9: a 4xx-family error and no proof, never a crash."""
    _fill(registry, make_creator, clock, 5)
    registry.sequence_all()  # 5 entries and the head's state commitment: 6 leaves
    for index, size in [(6, 6), (-1, 6), (0, 7), (0, 0), (2**63, 6)]:
        with pytest.raises(ProofOutOfRange):
            registry.inclusion_proof(index, size)
    for old, new in [(7, 6), (3, 2), (0, 7), (-1, 6)]:
        with pytest.raises(ProofOutOfRange):
            registry.consistency_proof(old, new)
    with pytest.raises(NotFound):
        registry.entry_at(99)
    with pytest.raises(NotFound):
        registry.tree_head(3)  # a size that never had a head


def test_sequencer_batches_by_size(
    engine,
    make_creator: CreatorFactory,
    clock: Clock,  # type: ignore[no-untyped-def]
) -> None:
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=bytes(32),
        clock=clock,
        sequencer_batch_size=4,
    )
    creator = make_creator()
    for _ in range(10):
        registry.register(registration(creator, clock()))
    sizes = []
    while (head := registry.sequence()) is not None:
        sizes.append(head.tree_size)
    assert sizes == [5, 10, 13]  # each head ends with its state commitment (issue 14)
    assert registry.sequence() is None  # an empty queue publishes nothing new


def test_tile_cache_serves_the_same_proofs_as_the_database_while_the_log_grows(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """Cached tiles are keyed by width, so a growing right edge never serves stale hashes."""
    from registry import log
    from registry.db import read_transaction

    rng = random.Random(3)
    for _ in range(3):  # the right-edge tiles change width every round
        _fill(registry, make_creator, clock, 100)
        registry.sequence_all()
        head = registry.latest_tree_head()
        assert head is not None
        leaves = _all_leaves(registry, head.tree_size)
        for _ in range(40):
            size = rng.randint(1, head.tree_size)
            index = rng.randrange(size)
            cached = registry.inclusion_proof(index, size)  # through registry.tile_cache
            with read_transaction(registry.engine) as conn:
                assert cached == log.inclusion_proof(conn, index, size)  # straight from disk
            merkle.verify_inclusion(
                merkle.hash_leaf(leaves[index]), index, size, cached, _root(leaves[:size])
            )
            old = rng.randint(1, size)
            consistency = registry.consistency_proof(old, size)
            merkle.verify_consistency(
                old, size, consistency, _root(leaves[:old]), _root(leaves[:size])
            )


def test_head_timestamps_never_go_backwards_when_the_clock_does(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    creator = make_creator()
    registry.register(registration(creator, clock()))
    first = registry.sequence()
    clock.advance(-3_600)  # the server's clock is stepped back an hour
    registry.register(registration(creator, clock()))
    second = registry.sequence()
    assert first is not None and second is not None
    assert second.timestamp == first.timestamp
    assert registry.entry_at(1).timestamp == first.timestamp
