"""The HTTP API's foundation: health checks, the log's public reads, problem+json errors
(THREATS 9: out-of-range proofs are a 4xx with no proof body, never a 500)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from registry import merkle
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

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
