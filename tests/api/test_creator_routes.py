"""Creators over HTTP: code keys, single and bulk registrations (streamed jobs), revocations,
their goods and royalty statements behind Sign-In with Ethereum (THREATS 35, 39, 40)."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import Limit, RateLimits
from registry.codesfile import prepare_code_batch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_batch_revocation,
    sign_enrollment,
    sign_revocation,
)
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.royalty import policy_document
from registry.service import Registry
from registry.signatures import SECP256K1_HALF_N, SECP256K1_N
from tests.api.conftest import POLICY, CodeGood, KeyFactory, bearer, sign_in
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"


def registration_body(request: object) -> dict[str, object]:
    return {
        "signed": request.signed.document(),  # type: ignore[attr-defined]
        "royalty_policy": policy_document(request.royalty_policy),  # type: ignore[attr-defined]
        "metadata": dict(request.metadata),  # type: ignore[attr-defined]
        "new_product": request.new_product,  # type: ignore[attr-defined]
    }


def wait_job(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"/v1/jobs/{job_id}")
        if answer.status_code == 429:  # the anonymous budget: poll as told
            time.sleep(float(answer.headers["Retry-After"]))
            continue
        job = answer.json()
        if job["state"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def codes_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "codes.txt"
    path.write_text("".join(f"CARD-{i:08d}-{os.urandom(2).hex()}\n" for i in range(count)))
    return path


def test_enrol_register_and_revoke_one_good(
    client: TestClient, creator: CreatorKeys, clock: Clock
) -> None:
    enrollment = sign_enrollment(creator, DEV_DOMAIN, now=clock())
    enrolled = client.post(
        "/v1/creators/code-key",
        json={"signed": enrollment.document(), "code_key": "0x" + creator.require_code_key().hex()},
    )
    assert enrolled.status_code == 201 and enrolled.json()["creator"] == creator.address
    assert creator.require_code_key().hex() not in enrolled.text

    request = registration(creator, clock(), product="art", new_product=True)
    made = client.post("/v1/registrations", json=registration_body(request))
    assert made.status_code == 201 and made.json()["status"] == "queued"
    replay = client.post("/v1/registrations", json=registration_body(request))
    assert replay.status_code == 201 and replay.json()["status"] == "already-registered"

    fingerprint = request.signed.message["fingerprint"]
    revocation = sign_revocation(
        creator,
        DEV_DOMAIN,
        good_type=GoodType.FILE,
        fingerprint=fingerprint,  # type: ignore[arg-type]
        reason="sold in error",
        now=clock(),
    )
    revoked = client.post("/v1/revocations", json={"signed": revocation.signed.document()})
    assert revoked.status_code == 201 and revoked.json()["kind"] == "REVOKE"


def test_signed_writes_have_their_own_budget(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """A creator's signed writes without a session are charged to ``signed_write`` per IP,
    not to the public page's ``anonymous`` budget, and that budget is enforced too."""
    limits = RateLimits(anonymous=Limit.per_minute(2), signed_write=Limit.per_minute(3))
    with TestClient(create_app(registry, limits=limits)) as client:
        assert [client.get("/v1/registry").status_code for _ in range(3)] == [200, 200, 429]
        answers = [
            client.post(
                "/v1/registrations",
                json=registration_body(
                    registration(creator, clock(), product=f"p{n}", new_product=True)
                ),
            )
            for n in range(4)
        ]
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        # A token every 20 s: the wait is 20 s less the time the four writes took (15 s was
        # seen at load), never more.
        refused = re.fullmatch(
            r"rate limit 'signed_write' exceeded; retry in (\d+) s", answers[3].json()["detail"]
        )
        assert refused is not None and 1 <= int(refused.group(1)) <= 20
        assert client.get("/v1/registry").status_code == 429  # still the page's own budget


def test_bad_signatures_and_unknown_fields_change_nothing(
    client: TestClient, registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    request = registration(creator, clock())
    body = registration_body(request)
    tampered = json.loads(json.dumps(body))
    tampered["signed"]["message"]["use"] = 1
    wrong = client.post("/v1/registrations", json=tampered)
    assert wrong.status_code == 400 and wrong.headers["content-type"] == PROBLEM
    extra = client.post("/v1/registrations", json={**body, "leaf_index": 0})
    assert extra.status_code == 422
    assert wrong.json()["type"].endswith("/wrong-signer"), wrong.json()
    # The high-s twin of the creator's own signature (r, n - s, v ^ 1): it recovers the
    # creator too (EIP-2), so only the low-s rule can refuse it.
    sig = request.signed.signature
    s = int.from_bytes(sig[32:64], "big")
    assert 0 < s <= SECP256K1_HALF_N
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    high_s = json.loads(json.dumps(body))
    high_s["signed"]["signature"] = "0x" + twin.hex()
    refused = client.post("/v1/registrations", json=high_s)
    assert refused.status_code == 400 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/malformed-signature"), refused.json()
    assert "high-s twin" in refused.json()["detail"]
    assert registry.latest_tree_head() is None
    assert registry.history(GoodType.FILE, request.signed.message["fingerprint"]) == []  # type: ignore[arg-type]
    # The untouched body is accepted: every refusal above was for its flaw alone.
    assert client.post("/v1/registrations", json=body).status_code == 201


def test_idempotency_key_replays_the_reply_and_refuses_another_body(
    client: TestClient, creator: CreatorKeys, clock: Clock
) -> None:
    first = registration(creator, clock())
    headers = {"Idempotency-Key": "reg-1"}
    a = client.post("/v1/registrations", json=registration_body(first), headers=headers)
    b = client.post("/v1/registrations", json=registration_body(first), headers=headers)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    other = registration(creator, clock())
    c = client.post("/v1/registrations", json=registration_body(other), headers=headers)
    assert c.status_code == 422 and c.headers["content-type"] == PROBLEM


def test_bulk_registration_as_ndjson_and_csv_jobs(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    tmp_path: Path,
) -> None:
    batch = prepare_code_batch(codes_file(tmp_path, 3000).open(), creator.require_code_key())
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="30-day-card",
        use=Use.SINGLE,
        royalty_policy=POLICY,
        metadata={},
        now=clock(),
        new_product=True,
    )
    lines = [json.dumps(registration_body(request))] + [
        "0x" + fp.hex() for fp in batch.fingerprints()
    ]
    accepted = client.post(
        "/v1/registrations/batches",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == f"/v1/jobs/{accepted.json()['job_id']}"
    done = wait_job(client, accepted.json()["job_id"])
    assert done["state"] == "done", done
    assert done["result"]["registered"] == 3000  # type: ignore[index]

    # The same fingerprints as CSV, the signed request in a header: a revocation batch.
    revocation = sign_batch_revocation(
        creator, DEV_DOMAIN, batch, good_type=GoodType.CODE, reason="leaked", now=clock()
    )
    header = base64.urlsafe_b64encode(
        json.dumps({"signed": revocation.signed.document()}).encode()
    ).decode()
    csv_body = "fingerprint\n" + "".join("0x" + fp.hex() + "\n" for fp in batch.fingerprints())
    revoked = client.post(
        "/v1/revocations/batches",
        content=csv_body.encode(),
        headers={"Content-Type": "text/csv", "Tracemark-Request": header},
    )
    assert revoked.status_code == 202, revoked.text
    assert wait_job(client, revoked.json()["job_id"])["state"] == "done"


def test_bulk_refusals_are_fast_and_write_nothing(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    tmp_path: Path,
) -> None:
    batch = prepare_code_batch(codes_file(tmp_path, 50).open(), creator.require_code_key())
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="30-day-card",
        use=Use.SINGLE,
        royalty_policy=POLICY,
        metadata={},
        now=clock(),
        new_product=True,
    )
    body = registration_body(request)
    fps = ["0x" + fp.hex() for fp in batch.fingerprints()]
    ndjson = {"Content-Type": "application/x-ndjson"}
    # A wrong media type: 415.
    assert (
        client.post(
            "/v1/registrations/batches", content=b"x", headers={"Content-Type": "application/json"}
        ).status_code
        == 415
    )
    # A bad signature: refused before the upload is queued.
    tampered = json.loads(json.dumps(body))
    tampered["signed"]["message"]["count"] = "51"
    bad = client.post(
        "/v1/registrations/batches",
        content="\n".join([json.dumps(tampered), *fps]).encode(),
        headers=ndjson,
    )
    assert bad.status_code == 400
    # Over the cap: 413.
    client.app.state.context.max_bulk_bytes = 1_000  # type: ignore[attr-defined]
    big = client.post(
        "/v1/registrations/batches",
        content="\n".join([json.dumps(body), *fps]).encode(),
        headers=ndjson,
    )
    assert big.status_code == 413
    client.app.state.context.max_bulk_bytes = 10**8  # type: ignore[attr-defined]
    # One fingerprint too few: the job fails, and nothing of it is in the log.
    short = client.post(
        "/v1/registrations/batches",
        content="\n".join([json.dumps(body), *fps[:-1]]).encode(),
        headers=ndjson,
    )
    failed = wait_job(client, short.json()["job_id"])
    assert failed["state"] == "failed" and "49 were sent" in str(failed["error"])
    assert failed["error_code"] == "invalid-input"
    assert registry.latest_tree_head() is None


def test_goods_and_statements_behind_sign_in_with_ethereum(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    creator = code_good.creator
    for _ in range(4):
        registry.register(registration(creator, clock()))
    key = make_key("cardhub", "transfer")
    good = {"good_type": "code", "fingerprint": code_good.hex}
    client.post(
        "/v1/transfers",
        json={**good, "seller": {"creator": True}, "buyer": {"reference": "agent"}},
        headers=bearer(key),
    )
    client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "cardhub", "reference": "agent"},
            "buyer": {"reference": "player"},
            "price": "10000",
            "currency": "EUR",
            "final": True,
        },
        headers=bearer(key),
    )

    # No session: 401 with a Bearer challenge; a platform key: 403.
    anonymous = client.get("/v1/creators/me/goods")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["WWW-Authenticate"]
    assert client.get("/v1/creators/me/goods", headers=bearer(key)).status_code == 403

    token = sign_in(client, creator, clock())
    goods = client.get("/v1/creators/me/goods", params={"limit": 2}, headers=bearer(token))
    assert goods.status_code == 200 and len(goods.json()["items"]) == 2
    rest = client.get(
        "/v1/creators/me/goods",
        params={"limit": 10, "cursor": goods.json()["next_cursor"]},
        headers=bearer(token),
    ).json()
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None

    statement = client.get("/v1/creators/me/royalties", headers=bearer(token)).json()
    assert statement["totals"] == [
        {"recipient": POLICY.recipients[0].address, "currency": "EUR", "amount": "750"}
    ]
    csv_text = client.get(
        "/v1/creators/me/royalties", params={"format": "csv"}, headers=bearer(token)
    )
    assert csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[1].endswith(",750,1")

    # Another creator's session sees only their own (empty) goods and statement (THREATS 35).
    stranger = sign_in(client, make_creator(), clock())
    assert client.get("/v1/creators/me/goods", headers=bearer(stranger)).json()["items"] == []
    assert client.get("/v1/creators/me/royalties", headers=bearer(stranger)).json()["lines"] == []
    # A token is not accepted in the query string (THREATS 37).
    leaked = client.get("/v1/creators/me/goods", params={"token": token})
    assert leaked.status_code == 401


@pytest.mark.slow
def test_a_million_codes_through_the_api(
    tmp_path: Path, clock: Clock, make_creator: CreatorFactory
) -> None:
    """The issue's bar: 10^6 codes in one streamed upload, on SQLite."""
    from eth_account import Account

    from api.app import create_app
    from registry.db import create_db_engine
    from registry.migrate import upgrade

    engine = create_db_engine(f"sqlite:///{tmp_path / 'big.db'}")
    upgrade(engine)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=os.urandom(32),
        clock=clock,
    )
    creator = make_creator()
    batch = prepare_code_batch(codes_file(tmp_path, 1_000_000).open(), creator.require_code_key())
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="30-day-card",
        use=Use.SINGLE,
        royalty_policy=POLICY,
        metadata={},
        now=clock(),
        new_product=True,
    )

    def body():
        yield (json.dumps(registration_body(request)) + "\n").encode()
        chunk = []
        for fp in batch.fingerprints():
            chunk.append("0x" + fp.hex() + "\n")
            if len(chunk) == 10_000:
                yield "".join(chunk).encode()
                chunk = []
        yield "".join(chunk).encode()

    with TestClient(create_app(registry)) as client:
        accepted = client.post(
            "/v1/registrations/batches",
            content=body(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert accepted.status_code == 202, accepted.text
        done = wait_job(client, accepted.json()["job_id"], timeout=600)
    assert done["state"] == "done", done
    assert done["result"]["registered"] == 1_000_000  # type: ignore[index]
    head = registry.latest_tree_head()
    # One head for the whole batch, ending with its state commitment (issue 14).
    assert head is not None and head.tree_size == done["result"]["tree_size"]  # type: ignore[index]
    assert head.tree_size == 1_000_000 + 1


def test_every_json_body_is_capped_while_it_streams(client: TestClient) -> None:
    """THREATS 40: a huge JSON document is refused before it is parsed or buffered."""
    big = b'{"signed": {"type": "Registration", "message": {"x": "' + b"a" * 200_000 + b'"}}}'
    declared = client.post(
        "/v1/registrations", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM

    def chunks():
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = client.post(
        "/v1/registrations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_a_creator_names_its_distributors_and_others_cannot_sell_first_hand(
    client: TestClient, code_good: CodeGood, make_key: KeyFactory, clock: Clock
) -> None:
    session = bearer(sign_in(client, code_good.creator, clock()))
    assert client.get("/v1/creators/me/distribution", headers=session).json() == {
        "restricted": False,
        "platforms": [],
        "updated_at": None,
    }
    put = client.put(
        "/v1/creators/me/distribution",
        json={"restricted": True, "platforms": ["cardhub"]},
        headers=session,
    )
    assert put.status_code == 200 and put.json()["platforms"] == ["cardhub"]
    assert client.get("/v1/creators/me/distribution", headers=session).json() == put.json()
    bad = client.put(
        "/v1/creators/me/distribution",
        json={"restricted": True, "platforms": ["Card Hub"]},
        headers=session,
    )
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM

    first_sale = {
        "good_type": "code",
        "fingerprint": code_good.hex,
        "seller": {"creator": True},
        "buyer": {"reference": "agent-1"},
    }
    refused = client.post(
        "/v1/transfers", json=first_sale, headers=bearer(make_key("shadowkeys", "transfer"))
    )
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/not-a-distributor")
    accepted = client.post(
        "/v1/transfers", json=first_sale, headers=bearer(make_key("cardhub", "transfer"))
    )
    assert accepted.status_code == 201, accepted.text
    # A platform key is not a creator session.
    platform_key = bearer(make_key("cardhub", "verify"))
    assert client.get("/v1/creators/me/distribution", headers=platform_key).status_code == 403
