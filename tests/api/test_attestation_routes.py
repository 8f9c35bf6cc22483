"""Real-name attestation routes (issue 18 item 4) through the typed client, on SQLite and
PostgreSQL: a platform attests its seller, anyone reads the current level and proves the
attestation offline; a verify-only key may not attest; the newest attestation supersedes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
