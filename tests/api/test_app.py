"""The HTTP API's foundation: health checks, the log's public reads, problem+json errors
(THREATS 9: out-of-range proofs are a 4xx with no proof body, never a 500)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from registry import merkle
from registry.errors import InvalidProof
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry import merkle_reference as reference
from tests.registry.helpers import registration
from verifier.trust import WELL_KNOWN_PATH, TrustRoot

PROBLEM = "application/problem+json"


def _filled(registry: Registry, make_creator: CreatorFactory, clock: Clock, n: int) -> int:
    """Registers ``n`` goods in one head; returns its size (it ends with its state commitment,
    issue 14, so that is one leaf more than the log's entries)."""
    creator = make_creator()
    for _ in range(n):
        registry.register(registration(creator, clock()))
    head = registry.sequence_all()
    assert head is not None
    return head.tree_size


def test_health_and_the_empty_log(registry: Registry) -> None:
    client = TestClient(create_app(registry))
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    empty = client.get("/v1/log/head")
    assert empty.status_code == 404 and empty.headers["content-type"] == PROBLEM
    assert empty.json()["type"].endswith("/not-found") and "empty" in empty.json()["detail"]


def test_heads_and_proofs_verify(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """The served head, inclusion and consistency proofs check against roots this test
    computes itself from the stored leaves (the naive reference tree), never against what the
    server says."""
    old = _filled(registry, make_creator, clock, 12)
    new = _filled(registry, make_creator, clock, 8)
    assert (old, new) == (12 + 1, 12 + 1 + 8 + 1)  # each head's entries, its commitment
    client = TestClient(create_app(registry))
    leaves = [reference.leaf_hash(registry.entry_at(i).leaf_data()) for i in range(new)]
    root_old, root_new = reference.mth(leaves[:old]), reference.mth(leaves)
    head = client.get("/v1/log/head").json()
    assert head["tree_size"] == new and head["signer"] == registry.address
    assert head["root"] == "0x" + root_new.hex()
    proof = client.get("/v1/log/proof/inclusion", params={"leaf_index": 7, "tree_size": new})
    hashes = [bytes.fromhex(p[2:]) for p in proof.json()["proof"]]
    merkle.verify_inclusion(leaves[7], 7, new, hashes, root_new)
    answer = client.get("/v1/log/proof/consistency", params={"from_size": old, "tree_size": new})
    assert answer.status_code == 200, answer.text
    consistency = [bytes.fromhex(p[2:]) for p in answer.json()["proof"]]
    assert consistency, f"{old} -> {new} needs a non-empty proof"
    merkle.verify_consistency(old, new, consistency, root_old, root_new)
    # The proof binds both roots: the same proof fails against a neighbouring old tree.
    with pytest.raises(InvalidProof):
        merkle.verify_consistency(old, new, consistency, reference.mth(leaves[: old - 1]), root_new)
    same = client.get("/v1/log/proof/consistency", params={"from_size": new, "tree_size": new})
    assert same.json()["proof"] == []


def test_out_of_range_and_malformed_requests_are_problems_never_500(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    size = _filled(registry, make_creator, clock, 5)
    client = TestClient(create_app(registry))
    for params in [
        {"leaf_index": size, "tree_size": size},
        {"leaf_index": 0, "tree_size": size + 1},
        {"leaf_index": 0, "tree_size": 2**63 - 1},
    ]:
        answer = client.get("/v1/log/proof/inclusion", params=params)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == PROBLEM and "proof" not in answer.json()
    for params in [
        {"leaf_index": -1, "tree_size": 5},
        {"leaf_index": "x", "tree_size": 5},
        {"leaf_index": 2**64, "tree_size": 5},
        {"tree_size": 5},
    ]:
        answer = client.get("/v1/log/proof/inclusion", params=params)
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("/validation-error")
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    backwards = client.get(
        "/v1/log/proof/consistency", params={"from_size": size + 1, "tree_size": size}
    )
    assert backwards.status_code == 400 and backwards.headers["content-type"] == PROBLEM


def test_the_registry_serves_its_trust_root_to_anyone(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """``/.well-known/tracemark-trust.json``, without credentials: the registry's chain,
    contract and signing key; ``/v1/registry`` names where it is and its fingerprint."""
    _filled(registry, make_creator, clock, 2)
    client = TestClient(create_app(registry))
    served = client.get(WELL_KNOWN_PATH)
    assert served.status_code == 200, served.text
    root = TrustRoot.parse(served.content)
    assert served.headers["x-tracemark-trust-fingerprint"] == root.fingerprint()
    assert (root.chain_id, root.contract_address) == (
        registry.domain.chain_id,
        registry.domain.verifying_contract,
    )
    assert [key.address for key in root.signing_keys] == [bytes.fromhex(registry.address[2:])]
    assert root.signing_keys[0].from_size == 1 and root.signing_keys[0].until_size is None
    identity = client.get("/v1/registry").json()
    assert identity["trust_fingerprint"] == root.fingerprint()
    assert identity["trust_root_url"] == root.registry_url.rstrip("/") + WELL_KNOWN_PATH
