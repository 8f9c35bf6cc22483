"""THREATS 11: published leaves and sibling hashes must not give away short codes.

Real card PINs are short. An attacker who sees a leaf (its fingerprint) or a sibling hash in
somebody's proof can try every PIN; that must find nothing without the creator's code key.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys
from registry.fingerprints import CODE_DOMAIN, code_fingerprint
from registry.leaf import LeafData
from registry.merkle import hash_leaf
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.test_registration import _batch_request

PINS = [f"{n:04d}" for n in range(10_000)]


def _unkeyed_guesses() -> dict[bytes, str]:
    """Every digest an attacker without the key could compute for every 4-digit PIN."""
    guesses = {}
    for pin in PINS:
        for data in (pin.encode(), CODE_DOMAIN + pin.encode()):
            guesses[hashlib.sha256(data).digest()] = pin
            guesses[hash_leaf(hashlib.sha256(data).digest())] = pin
        guesses[hmac.digest(os.urandom(32), CODE_DOMAIN + pin.encode(), "sha256")] = pin
    return guesses


def test_short_pins_cannot_be_recovered_from_leaves_or_proofs(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    issued = ["0042", "1234", "9999", "0000", "5555"]
    assert creator.code_key is not None
    batch = prepare_code_batch(codes_source("\n".join(issued)), creator.code_key)
    registry.register_batch(_batch_request(creator, batch, clock()), batch.fingerprints())
    head = registry.latest_tree_head()
    assert head is not None

    published: set[bytes] = set()
    for index in range(head.tree_size):
        leaf = registry.entry_at(index).leaf_data()
        published.add(LeafData.decode(leaf).fingerprint)
        published.add(hash_leaf(leaf))
        published.update(registry.inclusion_proof(index, head.tree_size))
        for pin in issued:
            assert pin.encode() not in leaf

    attacker = _unkeyed_guesses()
    assert not published & attacker.keys(), "a PIN was recovered without the code key"

    # The same enumeration WITH the key finds every PIN: the test would catch unkeyed prints.
    keyed = {code_fingerprint(creator.code_key, pin): pin for pin in PINS}
    assert {keyed[fp] for fp in published if fp in keyed} == set(issued)
