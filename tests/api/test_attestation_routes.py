"""Real-name attestation routes (issue 18 item 4) through the typed client, on SQLite and
PostgreSQL: a platform attests its seller, anyone reads the current level and proves the
attestation offline; a verify-only key may not attest; the newest attestation supersedes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli_app
from registry.service import Registry
from tests.api.conftest import KeyFactory, bearer
from tests.conftest import Clock
from tests.trust import trust_root_of
from verifier.attestationproof import check_attestation_proof
from verifier.client import TracemarkClient
from verifier.problems import ProblemNotFound


def test_attest_read_supersede_and_prove(
    app: FastAPI, registry: Registry, make_key: KeyFactory, clock: Clock
) -> None:
    key = make_key("cardhub", "verify", "transfer")
    with (
        TestClient(app) as http,
        TracemarkClient("http://testserver", api_key=key, http_client=http) as api,
    ):
        done = api.attest_seller("seller-42", "id-card")
        seller = "0x" + registry.reference_hash("cardhub", "seller-42").hex()
        assert (done.platform, done.seller_ref, done.level) == ("cardhub", seller, "id-card")
        assert api.attestation(done.id) == done
        level = api.seller_level("cardhub", seller)
        assert (level.level, level.attestation) == ("id-card", done)
        # An unattested seller is "none", with no attestation.
        other = "0x" + registry.reference_hash("cardhub", "seller-43").hex()
        assert api.seller_level("cardhub", other).attestation is None

        proved = check_attestation_proof(api.attestation_proof(done.id), trust_root_of(registry))
        assert (proved.level.label, "0x" + proved.seller_ref.hex()) == ("id-card", seller)

        clock.advance(30)
        withdrawn = api.attest_seller("seller-42", "none")
        assert api.seller_level("cardhub", seller).attestation == withdrawn
        assert withdrawn.leaf_index > done.leaf_index

        with pytest.raises(ProblemNotFound):
            api.attestation(10_000)

    # A key without the transfer scope may not attest; an unknown level is refused.
    verify_only = make_key("keyshop", "verify")
    with TestClient(app) as http:
        refused = http.post(
            "/v1/attestations",
            json={"reference": "s", "level": "face"},
            headers=bearer(verify_only),
        )
        assert refused.status_code == 403
        bad = http.post(
            "/v1/attestations", json={"reference": "s", "level": "passport"}, headers=bearer(key)
        )
        assert bad.status_code == 422


def test_tracemark_verify_reads_an_attestation_proof(
    app: FastAPI, registry: Registry, make_key: KeyFactory, tmp_path: Path
) -> None:
    """``tracemark verify PROOF.json --trust ROOT``: 12 (verified, no chain asked), 11 for a
    changed level, 15 under another registry's root."""
    key = make_key("cardhub", "transfer")
    with (
        TestClient(app) as http,
        TracemarkClient("http://testserver", api_key=key, http_client=http) as api,
    ):
        done = api.attest_seller("seller-7", "face")
        document = api.attestation_proof(done.id).to_json()
    root = tmp_path / "root.json"
    root.write_text(trust_root_of(registry).to_json())
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(document, sort_keys=True))  # keys sorted: still recognised

    def verify(path: Path, trust: Path) -> tuple[int, str]:
        ran = CliRunner().invoke(cli_app, ["verify", str(path), "--trust", str(trust), "--json"])
        return ran.exit_code, ran.output

    code, output = verify(proof, root)
    assert code == 12, output
    assert json.loads(output)["level"] == "face" and json.loads(output)["status"] == "unchecked"
    document["payload"]["attestation"]["level"] = "id-card"
    proof.write_text(json.dumps(document))
    assert verify(proof, root)[0] == 11
    other = tmp_path / "other.json"
    other.write_text(trust_root_of(registry, confirmations=3).to_json().replace("31337", "1"))
    assert verify(proof, other)[0] == 15


def test_a_retry_with_its_idempotency_key_is_answered_not_logged_again(
    app: FastAPI, registry: Registry, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "transfer")
    headers = {**bearer(key), "Idempotency-Key": "attest-1"}
    body = {"reference": "seller-9", "level": "phone"}
    with TestClient(app) as http:
        first = http.post("/v1/attestations", json=body, headers=headers)
        again = http.post("/v1/attestations", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        other = http.post("/v1/attestations", json={**body, "level": "face"}, headers=headers)
        assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
        fresh = http.post("/v1/attestations", json=body, headers=bearer(key))
        assert fresh.status_code == 201 and fresh.json()["id"] == first.json()["id"] + 1
        with TracemarkClient("http://testserver", api_key=key, http_client=http) as api:
            replayed = api.attest_seller("seller-9", "phone", idempotency_key="attest-1")
        assert replayed.model_dump(mode="json") == first.json()
