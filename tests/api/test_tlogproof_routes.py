"""The proof and receipt routes' ``?format=tlog-proof``: a good's registration and a platform's
transfer as ``c2sp.org/tlog-proof@v1`` text files, which check under the registry's own trust
root (the chain is the CLI tests' business: tests/verifier/test_tlogproof_cli.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from registry.leaf import EntryKind
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.trust import policy_of
from verifier.tlogproof import TlogProof
from verifier.tlogproofcheck import check_tlog_proof


def test_a_goods_proof_as_a_tlog_proof(
    client: TestClient, registry: Registry, code_good: CodeGood
) -> None:
    answer = client.get(f"/v1/goods/code/{code_good.hex}/proof", params={"format": "tlog-proof"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="registration.tlog-proof"'
    )
    proof = TlogProof.parse(answer.content)
    assert proof.to_bytes() == answer.content
    report = check_tlog_proof(proof, policy_of(registry), None)
    assert (report.entry.kind, report.fingerprint) == (EntryKind.REGISTER, code_good.fingerprint)
    assert report.status == "chain-not-checked"
    # The default is still the bundle; an unknown format is refused.
    bundle = client.get(f"/v1/goods/code/{code_good.hex}/proof")
    assert bundle.headers["content-type"] == "application/json"
    assert bundle.json()["format"].startswith("tracemark-bundle/")
    wrong = client.get(f"/v1/goods/code/{code_good.hex}/proof", params={"format": "tlog"})
    assert wrong.status_code in (400, 422) and wrong.headers["content-type"].startswith(
        "application/problem+json"
    )
    missing = client.get(f"/v1/goods/code/0x{'ab' * 32}/proof", params={"format": "tlog-proof"})
    assert missing.status_code == 404


def test_a_receipt_as_a_tlog_proof_for_its_platform_only(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    mine, theirs = make_key("cardhub", "transfer"), make_key("keyshop", "transfer")
    made = client.post(
        "/v1/transfers",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "seller": {"creator": True},
            "buyer": {"reference": "agent"},
        },
        headers=bearer(mine),
    ).json()
    path = f"/v1/transfers/{made['transfer_id']}"
    answer = client.get(path, params={"format": "tlog-proof"}, headers=bearer(mine))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    proof = TlogProof.parse(answer.content)
    assert proof.index == made["log_index"]
    report = check_tlog_proof(proof, policy_of(registry), None)
    assert (report.entry.kind, report.entry.platform) == (EntryKind.TRANSFER, "cardhub")
    # Another platform's transfer is the same 404 in either format (THREATS 36).
    other = client.get(path, params={"format": "tlog-proof"}, headers=bearer(theirs))
    assert other.status_code == 404
    assert client.get(path, headers=bearer(mine)).json()["transfer_id"] == made["transfer_id"]
