"""Code-key rotation over HTTP (issue 11): codes of both keys verify by code; a code of the
retired key keeps its history and verifies by fingerprint; the retirement route's refusals."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.codekeyring import key_commitment, key_id
from registry.creator import CreatorKeys, sign_enrollment, sign_retirement
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.service import Registry
from tests.api.conftest import POLICY, KeyFactory, bearer, sign_in
from tests.conftest import Clock, CreatorFactory
from tests.pow import lookup
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"


def _enrol(client: TestClient, keys: CreatorKeys, now: int) -> Any:
    signed = sign_enrollment(keys, DEV_DOMAIN, now=now)
    answer = client.post(
        "/v1/creators/code-key",
        json={"signed": signed.document(), "code_key": "0x" + keys.require_code_key().hex()},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _retire(client: TestClient, keys: CreatorKeys, commitment: bytes, now: int) -> Any:
    signed = sign_retirement(keys, DEV_DOMAIN, key_commitment=commitment, now=now)
    return client.post("/v1/creators/code-key/retire", json={"signed": signed.document()})


def _register(registry: Registry, keys: CreatorKeys, now: int, code: str, new: bool) -> bytes:
    fingerprint = CodeFingerprinter(keys.require_code_key()).fingerprint(code)
    registry.register(
        registration(
            keys,
            now,
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
            policy=POLICY,
            new_product=new,
        )
    )
    return fingerprint


def _by_code(client: TestClient, key: str, code: str, creator: str) -> Any:
    answer = client.post(
        "/v1/verify",
        json={"good_type": "code", "code": code, "creator": creator},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _by_fingerprint(client: TestClient, key: str, fingerprint: bytes) -> Any:
    answer = client.post(
        "/v1/verify",
        json={"good_type": "code", "fingerprint": "0x" + fingerprint.hex()},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_codes_of_both_keys_verify_and_the_retired_keys_codes_keep_their_history(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    make_key: KeyFactory,
) -> None:
    platform = make_key("cardhub", "verify")
    auditor = make_key("auditor", "audit")
    first = creator
    second = dataclasses.replace(creator, code_key=os.urandom(32))
    enrolled = _enrol(client, first, clock())
    assert enrolled["kid"] == key_id(key_commitment(first.require_code_key()))
    old_fp = _register(registry, first, clock(), "OLD-1111-2222", new=True)
    clock.advance(1)
    assert _enrol(client, second, clock())["status"] == "enrolled"
    new_fp = _register(registry, second, clock(), "NEW-3333-4444", new=False)
    registry.sequence_all()

    # Both codes verify by code (the lookup tries every live key, newest first).
    old = _by_code(client, platform, "old 1111 2222", creator.address)
    new = _by_code(client, platform, "NEW-3333-4444", creator.address)
    assert old["fingerprint"] == "0x" + old_fp.hex() and old["verdict"] != "unknown"
    assert new["fingerprint"] == "0x" + new_fp.hex() and new["verdict"] != "unknown"
    assert old["creator"] == new["creator"] == creator.address
    missing = _by_code(client, platform, "NONE-0000", creator.address)
    assert missing["verdict"] == "unknown"
    # Anonymous callers get the same coarse answer whichever key a code is under.
    coarse = [
        lookup(client, {"good_type": "code", "code": code, "creator": creator.address}).json()
        for code in ("OLD-1111-2222", "NEW-3333-4444")
    ]
    assert coarse[0] == coarse[1] and coarse[0]["coarse"] is True
    history = client.get(f"/v1/goods/code/0x{old_fp.hex()}/history", headers=bearer(auditor))
    assert history.status_code == 200
    by_fingerprint = _by_fingerprint(client, platform, old_fp)

    # The creator lists its keys behind a SIWE session.
    token = sign_in(client, creator, clock())
    listed = client.get("/v1/creators/me/code-keys", headers=bearer(token)).json()
    first_kid = key_id(key_commitment(first.require_code_key()))
    second_kid = key_id(key_commitment(second.require_code_key()))
    assert [(k["kid"], k["current"], k["retired_at"]) for k in listed["keys"]] == [
        (second_kid, True, None),
        (first_kid, False, None),
    ]

    # Retire the first key.
    retired = _retire(client, creator, key_commitment(first.require_code_key()), clock())
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired" and retired.json()["kid"] == first_kid
    assert _by_code(client, platform, "OLD-1111-2222", creator.address)["verdict"] == "unknown"
    assert _by_code(client, platform, "NEW-3333-4444", creator.address)["verdict"] == new["verdict"]
    # By fingerprint, unchanged; its history unchanged.
    after = _by_fingerprint(client, platform, old_fp)
    assert (after["verdict"], after["leaf_index"]) == (
        by_fingerprint["verdict"],
        by_fingerprint["leaf_index"],
    )
    assert after["verdict"] in ("authentic", "pending_anchor")
    again = client.get(f"/v1/goods/code/0x{old_fp.hex()}/history", headers=bearer(auditor))
    assert again.json() == history.json()
    with registry.engine.connect() as conn:
        sealed = conn.execute(
            text("SELECT sealed_key FROM code_keys WHERE key_commitment = :k"),
            {"k": key_commitment(first.require_code_key())},
        ).scalar_one()
    assert bytes(sealed) == b"", "the retired key's sealed copy is destroyed"
    listed = client.get("/v1/creators/me/code-keys", headers=bearer(token)).json()
    assert [(k["kid"], k["current"]) for k in listed["keys"]] == [
        (second_kid, True),
        (first_kid, False),
    ]
    assert listed["keys"][1]["retired_at"] == clock()
    assert first.require_code_key().hex() not in str(listed)


def test_retirement_refusals(
    client: TestClient, creator: CreatorKeys, make_creator: CreatorFactory, clock: Clock
) -> None:
    _enrol(client, creator, clock())
    commitment = key_commitment(creator.require_code_key())
    # Signed by another creator: that creator holds no such key.
    stranger = make_creator()
    foreign = _retire(client, stranger, commitment, clock())
    assert foreign.status_code == 404 and foreign.headers["content-type"] == PROBLEM
    unknown = _retire(client, creator, os.urandom(32), clock())
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    # A replay of the same signed retirement is refused; a fresh one is idempotent.
    signed = sign_retirement(creator, DEV_DOMAIN, key_commitment=commitment, now=clock())
    first = client.post("/v1/creators/code-key/retire", json={"signed": signed.document()})
    assert first.status_code == 200 and first.json()["status"] == "retired"
    replay = client.post("/v1/creators/code-key/retire", json={"signed": signed.document()})
    assert replay.status_code == 409 and replay.headers["content-type"] == PROBLEM
    assert "nonce" in replay.json()["detail"]
    assert _retire(client, creator, commitment, clock()).json()["status"] == "already-retired"
    # An enrolment is not a retirement: the type is checked, by the schema (422).
    enrollment = sign_enrollment(creator, DEV_DOMAIN, now=clock())
    wrong = client.post("/v1/creators/code-key/retire", json={"signed": enrollment.document()})
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM


def test_the_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "post" in paths["/v1/creators/code-key/retire"]
    assert "get" in paths["/v1/creators/me/code-keys"]
