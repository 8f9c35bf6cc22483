"""Real-name attestation routes (issue 18 item 4) through the typed client, on SQLite and
PostgreSQL: a platform attests its seller, signed by its enrolled attestation key, anyone
reads the current level and proves the attestation (and the platform's signature) offline; a
verify-only key may not attest; an unsigned, wrongly signed, expired or replayed attestation
is refused as problem+json; the newest attestation supersedes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli_app
from registry.attestations import (
    PLATFORM_KEY_ENROLLMENT,
    PLATFORM_KEY_ROTATION,
    Level,
    enroll_message,
    rotation_message,
)
from registry.service import Registry
from registry.signatures import sign
from tests.api.conftest import KeyFactory, bearer
from tests.conftest import Clock
from tests.platformkeys import PLATFORM_KEYS, enroll, platform_address, sign_attestation
from tests.trust import trust_root_of
from verifier.attestationproof import check_attestation_proof
from verifier.client import TracemarkClient
from verifier.problems import ProblemNotFound, SignatureRefused

CARDHUB_KEY = PLATFORM_KEYS["cardhub"]


def test_attest_read_supersede_and_prove(
    app: FastAPI, registry: Registry, make_key: KeyFactory, clock: Clock
) -> None:
    key = make_key("cardhub", "verify", "transfer")
    enroll(registry, "cardhub")
    with (
        TestClient(app) as http,
        TracemarkClient("http://testserver", api_key=key, http_client=http) as api,
    ):
        done = api.attest_seller("seller-42", "id-card", signing_key=CARDHUB_KEY)
        assert done.signer == platform_address("cardhub")
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
        assert proved.platform_key == platform_address("cardhub")

        clock.advance(30)
        withdrawn = api.attest_seller("seller-42", "none", signing_key=CARDHUB_KEY)
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
    enroll(registry, "cardhub")
    with (
        TestClient(app) as http,
        TracemarkClient("http://testserver", api_key=key, http_client=http) as api,
    ):
        done = api.attest_seller("seller-7", "face", signing_key=CARDHUB_KEY)
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
    assert json.loads(output)["platform_key"] == platform_address("cardhub")
    # The operator enrolled the key (tests.platformkeys.enroll): the JSON and the words say so.
    assert json.loads(output)["enrolled_by"] == "operator"
    assert json.loads(output)["key_leaf_index"] < json.loads(output)["leaf_index"]
    human = CliRunner().invoke(cli_app, ["verify", str(proof), "--trust", str(root)])
    assert human.exit_code == 12 and "OPERATOR enrolled" in human.output, human.output
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
    enroll(registry, "cardhub")
    headers = {**bearer(key), "Idempotency-Key": "attest-1"}
    deadline = registry.clock() + 600

    def signed(level: str, nonce: int) -> dict[str, object]:
        signature = sign_attestation(
            registry, "cardhub", "seller-9", Level.parse(level), nonce, deadline
        )
        return {
            "reference": "seller-9",
            "level": level,
            "nonce": nonce,
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }

    body = signed("phone", 1)
    with TestClient(app) as http:
        first = http.post("/v1/attestations", json=body, headers=headers)
        again = http.post("/v1/attestations", json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json() == first.json()
        # The same statement freshly signed (another nonce) is the same request: answered.
        resigned = http.post("/v1/attestations", json=signed("phone", 2), headers=headers)
        assert (resigned.status_code, resigned.json()) == (200, first.json())
        other = http.post("/v1/attestations", json=signed("face", 3), headers=headers)
        assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
        # Without the Idempotency-Key, the same signed body is a replay of its nonce.
        replay = http.post("/v1/attestations", json=body, headers=bearer(key))
        assert replay.status_code == 409 and replay.json()["type"].endswith("/nonce-reused")
        fresh = http.post("/v1/attestations", json=signed("phone", 4), headers=bearer(key))
        assert fresh.status_code == 201 and fresh.json()["id"] == first.json()["id"] + 1
        with TracemarkClient("http://testserver", api_key=key, http_client=http) as api:
            replayed = api.attest_seller(
                "seller-9", "phone", signing_key=CARDHUB_KEY, idempotency_key="attest-1"
            )
        assert replayed.model_dump(mode="json") == first.json()


def test_an_attestation_not_signed_by_the_platforms_key_is_refused(
    app: FastAPI, registry: Registry, make_key: KeyFactory, clock: Clock
) -> None:
    """problem+json: no key enrolled, another key, another level, past the deadline."""
    key = make_key("cardhub", "transfer")
    with TestClient(app) as http:
        statement = http.post(
            "/v1/attestations/statement",
            json={"reference": "seller-5", "level": "face"},
            headers=bearer(key),
        ).json()
        nonce, deadline = statement["nonce"], statement["deadline"]
        assert statement["typed_data"]["primaryType"] == "PlatformAttestation"
        seller = "0x" + registry.reference_hash("cardhub", "seller-5").hex()
        assert statement["typed_data"]["message"]["sellerRef"] == statement["seller_ref"] == seller

        def post(level: Level, signer: bytes, body_level: str = "face") -> tuple[int, str]:
            signature = sign_attestation(
                registry, "cardhub", "seller-5", level, nonce, deadline, signer
            )
            body = {
                "reference": "seller-5",
                "level": body_level,
                "nonce": nonce,
                "deadline": deadline,
                "signature": "0x" + signature.hex(),
            }
            answer = http.post("/v1/attestations", json=body, headers=bearer(key))
            assert answer.headers["content-type"] == "application/problem+json"
            return answer.status_code, answer.json()["type"].rsplit("/", 1)[-1]

        assert post(Level.FACE, CARDHUB_KEY) == (400, "no-platform-key")
        enroll(registry, "cardhub")
        assert post(Level.FACE, PLATFORM_KEYS["keyshop"]) == (400, "wrong-signer")
        assert post(Level.FACE, CARDHUB_KEY, "id-card") == (400, "wrong-signer")
        clock.advance(601)
        assert post(Level.FACE, CARDHUB_KEY) == (400, "expired-deadline")


def test_the_operator_enrolls_and_rotates_a_platforms_key(tmp_path: Path) -> None:
    """``tracemark platform-keys enroll | list`` on the operator's local database (SQLite, as
    ``tests/api/test_apikeys_cli.py``): the newest key is in force; a bad address exits 3."""
    env: dict[str, str | None] = dict.fromkeys(
        ("TRACEMARK_DATABASE_URL", "TRACEMARK_KEYS_DIR", "TRACEMARK_MASTER_KEY")
    )
    env["TRACEMARK_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str, expect: int = 0) -> str:
        ran = CliRunner().invoke(cli_app, ["platform-keys", *args], env=env)
        assert ran.exit_code == expect, ran.output
        return ran.output

    first = json.loads(
        run("enroll", "--platform", "cardhub", "--address", platform_address("cardhub"), "--json")
    )
    run("enroll", "--platform", "cardhub", "--address", platform_address("keyshop"))
    assert first["enrolled_by"] == "operator"
    listed = json.loads(run("list", "--platform", "cardhub", "--json"))["platform_keys"]
    assert [(k["address"], k["in_force"]) for k in listed] == [
        (platform_address("cardhub"), False),
        (platform_address("keyshop"), True),
    ]
    assert "in force" in run("list")
    run("enroll", "--platform", "cardhub", "--address", "0x12", expect=3)


def test_a_platform_enrolls_its_own_key_with_a_proof_of_possession(
    app: FastAPI, registry: Registry, make_key: KeyFactory, clock: Clock
) -> None:
    """``POST /v1/attestations/keys``: the new key signs ``PlatformKeyEnrollment``; another
    key's signature, a past deadline, a key enrolled before are refused; the enrolled key then
    signs the platform's attestations and supersedes the old one."""
    key = make_key("cardhub", "transfer")
    deadline = clock() + 600

    def body(
        signer: bytes,
        address: str,
        nonce: int = 1,
        platform: str = "cardhub",
        consent_by: bytes | None = None,
    ) -> dict:  # type: ignore[type-arg]
        message = enroll_message(platform, address, nonce, deadline)
        signature = sign(PLATFORM_KEY_ENROLLMENT, message, registry.domain, signer)
        document = {
            "address": address,
            "nonce": nonce,
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }
        if consent_by is not None:
            old = Account.from_key(consent_by).address
            rotation = rotation_message(platform, old, address, nonce, deadline)
            consent = sign(PLATFORM_KEY_ROTATION, rotation, registry.domain, consent_by)
            document["consent_signature"] = "0x" + consent.hex()
        return document

    mine, theirs = platform_address("cardhub"), platform_address("keyshop")
    with TestClient(app) as http:

        def post(document: dict) -> tuple[int, str]:  # type: ignore[type-arg]
            answer = http.post("/v1/attestations/keys", json=document, headers=bearer(key))
            if answer.status_code == 201:
                return 201, answer.json()["address"]
            return answer.status_code, answer.json()["type"].rsplit("/", 1)[-1]

        # Not its proof: signed by another key, or for another platform.
        assert post(body(PLATFORM_KEYS["keyshop"], mine)) == (400, "wrong-signer")
        assert post(body(CARDHUB_KEY, mine, platform="keyshop")) == (400, "wrong-signer")
        assert post(body(CARDHUB_KEY, mine)) == (201, mine)
        assert post(body(CARDHUB_KEY, mine, 2)) == (409, "conflict")  # never twice
        # A rotation needs the key in force's consent: the API key alone cannot replace it.
        assert post(body(PLATFORM_KEYS["keyshop"], theirs)) == (400, "rotation-unconsented")
        consented_by_new = body(
            PLATFORM_KEYS["keyshop"], theirs, consent_by=PLATFORM_KEYS["keyshop"]
        )
        assert post(consented_by_new) == (400, "wrong-signer")
        zh = http.post(
            "/v1/attestations/keys",
            json=body(PLATFORM_KEYS["keyshop"], theirs),
            headers={**bearer(key), "Accept-Language": "zh-CN"},
        )
        assert zh.headers["content-type"] == "application/problem+json"
        assert zh.json()["title"] == "密钥更换未经现行密钥同意"
        assert "PlatformKeyRotation" in zh.json()["detail"] and "现行密钥" in zh.json()["detail"]
        rotation = body(PLATFORM_KEYS["keyshop"], theirs, consent_by=CARDHUB_KEY)
        assert post(rotation) == (201, theirs)
        clock.advance(601)
        fresh = bytes.fromhex("ab" * 32)
        assert post(body(fresh, Account.from_key(fresh).address)) == (400, "expired-deadline")
    # The newest key (keyshop's test key, enrolled by cardhub) signs cardhub's attestations.
    with (
        TestClient(app) as http,
        TracemarkClient("http://testserver", api_key=key, http_client=http) as api,
    ):
        done = api.attest_seller("seller-1", "phone", signing_key=PLATFORM_KEYS["keyshop"])
        assert done.signer == theirs
        # The client enrolls a key as a platform would (a LocalAccount signs its proof).
        account = Account.from_key(bytes.fromhex("cd" * 32))
        with pytest.raises(SignatureRefused) as unconsented:
            api.enroll_attestation_key(
                "cardhub", account, domain=registry.domain, nonce=7, deadline=clock() + 60
            )
        assert unconsented.value.code == "rotation-unconsented"
        enrolled = api.enroll_attestation_key(
            "cardhub",
            account,
            domain=registry.domain,
            nonce=7,
            deadline=clock() + 60,
            current_key=PLATFORM_KEYS["keyshop"],
        )
        assert (enrolled.address, enrolled.enrolled_by) == (account.address, "platform")
        assert api.attest_seller("seller-1", "face", signing_key=account).signer == account.address
        with pytest.raises(SignatureRefused) as refused:
            api.attest_seller("seller-1", "phone", signing_key=CARDHUB_KEY)
        assert refused.value.code == "wrong-signer"
        # The proof of the new key's attestation carries its logged enrollment (the platform's,
        # with the old key's consent).
        proof = api.attestation_proof(done.id)
        assert proof.format == "tracemark-attestation-proof/v2"
        proved = check_attestation_proof(proof, trust_root_of(registry))
        assert (proved.platform_key, proved.enrolled_by) == (theirs, "platform")
    assert registry.check_log().problems == []
