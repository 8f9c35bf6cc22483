"""The HTTP API's foundation: health checks, the log's public reads, problem+json errors
(THREATS 9: out-of-range proofs are a 4xx with no proof body, never a 500)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from registry import merkle
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from verifier.trust import WELL_KNOWN_PATH, TrustRoot

PROBLEM = "application/problem+json"


def _filled(registry: Registry, make_creator: CreatorFactory, clock: Clock, n: int) -> None:
    creator = make_creator()
    for _ in range(n):
        registry.register(registration(creator, clock()))
    registry.sequence_all()


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
    _filled(registry, make_creator, clock, 20)
    client = TestClient(create_app(registry))
    head = client.get("/v1/log/head").json()
    assert head["tree_size"] == 20 and head["signer"] == registry.address
    root = bytes.fromhex(head["root"][2:])
    proof = client.get("/v1/log/proof/inclusion", params={"leaf_index": 7, "tree_size": 20})
    hashes = [bytes.fromhex(p[2:]) for p in proof.json()["proof"]]
    leaf = merkle.hash_leaf(registry.entry_at(7).leaf_data())
    merkle.verify_inclusion(leaf, 7, 20, hashes, root)
    old_root = registry.tree_head(registry.latest_tree_head().tree_size).root  # type: ignore[union-attr]
    consistency = client.get("/v1/log/proof/consistency", params={"from_size": 20, "tree_size": 20})
    assert consistency.json()["proof"] == [] and old_root == root


def test_out_of_range_and_malformed_requests_are_problems_never_500(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    _filled(registry, make_creator, clock, 5)
    client = TestClient(create_app(registry))
    for params in [
        {"leaf_index": 5, "tree_size": 5},
        {"leaf_index": 0, "tree_size": 6},
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
    backwards = client.get("/v1/log/proof/consistency", params={"from_size": 6, "tree_size": 5})
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
