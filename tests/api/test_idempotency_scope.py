"""Whose Idempotency-Key a creator's signed write spends: the signer's, not the caller's.

A signed write needs no session, so behind one address (an office, a carrier NAT, one
platform relaying for many creators) the caller is the same for everyone; the key must be
scoped by the address the signature recovers to.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from registry.creator import CreatorKeys, sign_enrollment, sign_revocation
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.royalty import policy_document
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"


def registration_body(request: Any) -> dict[str, Any]:
    return {
        "signed": request.signed.document(),
        "royalty_policy": policy_document(request.royalty_policy),
        "metadata": dict(request.metadata),
        "new_product": request.new_product,
    }


def test_two_creators_behind_one_address_may_use_the_same_key(
    client: TestClient, make_creator: CreatorFactory, clock: Clock
) -> None:
    alice, bob = make_creator(), make_creator()
    headers = {"Idempotency-Key": "register-1"}
    first_a, first_b = registration(alice, clock()), registration(bob, clock())

    a = client.post("/v1/registrations", json=registration_body(first_a), headers=headers)
    b = client.post("/v1/registrations", json=registration_body(first_b), headers=headers)
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert a.json()["actor"] == alice.address and b.json()["actor"] == bob.address
    assert a.json()["fingerprint"] != b.json()["fingerprint"]

    # Each creator retrying gets their own stored answer, byte for byte.
    again_a = client.post("/v1/registrations", json=registration_body(first_a), headers=headers)
    again_b = client.post("/v1/registrations", json=registration_body(first_b), headers=headers)
    assert again_a.status_code == again_b.status_code == 201
    assert (again_a.content, again_b.content) == (a.content, b.content)

    # The same creator reusing the key for another request is refused, whoever sends it.
    other = registration(alice, clock())
    reused = client.post("/v1/registrations", json=registration_body(other), headers=headers)
    assert reused.status_code == 422 and reused.headers["content-type"] == PROBLEM
    assert reused.json()["type"].endswith("/idempotency-key-reused")


def test_every_signed_write_scopes_its_key_by_the_signer(
    client: TestClient, make_creator: CreatorFactory, clock: Clock
) -> None:
    """Code-key enrolment and revocation too: one key, two creators, two answers."""
    headers = {"Idempotency-Key": "same-key"}
    answers = []
    for creator in (make_creator(), make_creator()):
        enrolment = sign_enrollment(creator, DEV_DOMAIN, now=clock())
        body = {"signed": enrolment.document(), "code_key": "0x" + creator.require_code_key().hex()}
        enrolled = client.post("/v1/creators/code-key", json=body, headers=headers)
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["creator"] == creator.address
        answers.append(_revoke_one(client, creator, clock, {"Idempotency-Key": "revoke"}))
    assert [a["actor"] for a in answers] != [answers[0]["actor"]] * 2


def _revoke_one(
    client: TestClient, creator: CreatorKeys, clock: Clock, headers: dict[str, str]
) -> dict[str, Any]:
    request = registration(creator, clock())
    assert client.post("/v1/registrations", json=registration_body(request)).status_code == 201
    revocation = sign_revocation(
        creator,
        DEV_DOMAIN,
        good_type=GoodType.FILE,
        fingerprint=bytes(request.signed.message["fingerprint"]),
        reason="test",
        now=clock(),
    )
    body = {"signed": revocation.signed.document()}
    revoked = client.post("/v1/revocations", json=body, headers=headers)
    assert revoked.status_code == 201, revoked.text
    replay = client.post("/v1/revocations", json=body, headers=headers)
    assert replay.content == revoked.content
    answer: dict[str, Any] = revoked.json()
    assert answer["actor"] == creator.address
    return answer


def test_a_forged_signer_gets_no_stored_answer(
    client: TestClient, make_creator: CreatorFactory, clock: Clock
) -> None:
    """The scope is the *recovered* signer: naming another creator as signer of a body they
    did not sign is a refusal (400), never their stored answer nor a probe of their keys."""
    alice, mallory = make_creator(), make_creator()
    headers = {"Idempotency-Key": "k"}
    made = registration(alice, clock())
    body = registration_body(made)
    assert client.post("/v1/registrations", json=body, headers=headers).status_code == 201
    forged = registration_body(registration(mallory, clock()))
    forged["signed"]["signer"] = alice.address
    refused = client.post("/v1/registrations", json=forged, headers=headers)
    assert refused.status_code == 400 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/wrong-signer"), refused.json()
