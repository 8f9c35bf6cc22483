"""Platforms over HTTP: verify by fingerprint, code and file; transfers with royalties and
receipts; double sales; idempotency; the anonymous tier; limits (THREATS 36-41, 46)."""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from anchoring.models import AnchorRecord
from api.app import create_app
from api.ratelimit import Limit, RateLimits
from api.settings import ApiSettings
from readmodels.riskworker import read_probe_flags
from registry.db import write_transaction
from registry.eip712 import Domain, digest
from registry.fingerprints import GoodType
from registry.service import Registry
from registry.signatures import Signature, recover_signer
from registry.transfers import transfers_t
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.conftest import Clock, CreatorFactory
from tests.pow import lookup
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"


def anchor_everything(registry: Registry, *, final: bool = True) -> None:
    """Mark the current head anchored, as the worker would after a mined receipt.

    The anchoring worker is tested against anvil in tests/anchoring; here the API only reads
    the ``anchors`` table it writes.
    """
    head = registry.latest_tree_head()
    assert head is not None
    now = registry.clock()
    table = AnchorRecord.__table__  # type: ignore[attr-defined]
    with write_transaction(registry.engine) as conn:
        conn.execute(
            table.insert().values(
                tree_size=head.tree_size,
                root=head.root,
                previous_size=0,
                state="final" if final else "mined",
                nonce=0,
                tx_hash=b"\x11" * 32,
                block_number=7,
                block_hash=b"\x22" * 32,
                created_at=now,
                updated_at=now,
            )
        )


def verify(client: TestClient, key: str | None, **body: object) -> dict[str, object]:
    headers = bearer(key) if key else {}
    answer = client.post("/v1/verify", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_verify_by_fingerprint_and_by_code(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "verify")
    pending = verify(client, key, good_type="code", fingerprint=code_good.hex)
    assert pending["verdict"] == "pending_anchor"
    anchor_everything(registry)
    by_fp = verify(client, key, good_type="code", fingerprint=code_good.hex)
    assert by_fp["verdict"] == "authentic"
    assert by_fp["creator"] == code_good.creator.address
    assert by_fp["product"] == "30-day-card" and by_fp["use"] == "single"
    assert by_fp["anchor"]["tx_hash"] == "0x" + "11" * 32  # type: ignore[index]
    assert by_fp["anchor"]["state"] == "final"  # type: ignore[index]
    by_code = verify(
        client,
        key,
        good_type="code",
        code=code_good.code,
        creator=code_good.creator.address,
        product="30-day-card",
    )
    assert by_code["verdict"] == "authentic" and by_code["fingerprint"] == code_good.hex
    # Normalisation: the same code typed with spaces, lower case and an en dash.
    sloppy = code_good.code.lower().replace("-", " – ", 1)
    again = verify(client, key, good_type="code", code=sloppy, creator=code_good.creator.address)
    assert again["fingerprint"] == code_good.hex


def test_verified_n_times_by_m_platforms_first_at(
    app: object,
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    clock: Clock,
) -> None:
    anchor_everything(registry)
    a, b = make_key("cardhub", "verify"), make_key("keyshop", "verify")
    first = clock()
    for key in (a, a, b):
        verify(client, key, good_type="code", fingerprint=code_good.hex)
        clock.advance(5)
    client.app.state.context.telemetry.flush()  # type: ignore[attr-defined]
    client.app.state.telemetry_folder.fold()  # type: ignore[attr-defined]  # the role's fold
    seen = verify(client, a, good_type="code", fingerprint=code_good.hex)
    assert seen["verifications"] == {"times": 3, "platforms": 2, "first_at": first}


def test_unknown_revoked_and_mismatched_goods(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    make_creator: CreatorFactory,
    clock: Clock,
) -> None:
    anchor_everything(registry)
    key = make_key("cardhub", "verify")
    unknown = verify(client, key, good_type="file", fingerprint="0x" + os.urandom(32).hex())
    assert unknown["verdict"] == "unknown" and unknown["creator"] is None
    other = make_creator()
    wrong_creator = verify(
        client, key, good_type="code", fingerprint=code_good.hex, creator=other.address
    )
    assert wrong_creator["verdict"] == "conflict"
    codes = {s["code"] for s in wrong_creator["risk"]["signals"]}  # type: ignore[index]
    assert "creator-mismatch" in codes
    wrong_product = verify(
        client, key, good_type="code", fingerprint=code_good.hex, product="7-day-card"
    )
    assert wrong_product["verdict"] == "conflict"
    from registry.creator import sign_revocation
    from registry.eip712 import DEV_DOMAIN

    registry.revoke(
        sign_revocation(
            code_good.creator,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=code_good.fingerprint,
            reason="leaked batch",
            now=clock(),
        )
    )
    revoked = verify(client, key, good_type="code", fingerprint=code_good.hex)
    assert revoked["verdict"] == "revoked" and revoked["risk"]["score"] > 0.5  # type: ignore[index]


def test_verify_by_uploaded_file_is_streamed_and_capped(
    client: TestClient,
    registry: Registry,
    make_creator: CreatorFactory,
    clock: Clock,
    make_key: KeyFactory,
) -> None:
    content = os.urandom(300_000)
    fingerprint = hashlib.sha256(content).digest()
    registry.register(registration(make_creator(), clock(), fingerprint=fingerprint))
    registry.sequence_all()
    key = make_key("cardhub", "verify")
    answer = client.post("/v1/verify/file", content=content, headers=bearer(key))
    assert answer.status_code == 200 and answer.json()["fingerprint"] == "0x" + fingerprint.hex()
    client.app.state.context.max_upload_bytes = 100_000  # type: ignore[attr-defined]
    too_big = client.post("/v1/verify/file", content=content, headers=bearer(key))
    assert too_big.status_code == 413 and too_big.headers["content-type"] == PROBLEM

    def chunks():  # no Content-Length: the cap holds while streaming (THREATS 41)
        for start in range(0, len(content), 65536):
            yield content[start : start + 65536]

    streamed = client.post("/v1/verify/file", content=chunks(), headers=bearer(key))
    assert streamed.status_code == 413


def test_a_sale_chain_with_royalties_double_sale_and_consumption(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    anchor_everything(registry)
    a = make_key("cardhub", "verify", "transfer")
    b = make_key("keyshop", "verify", "transfer")
    good = {"good_type": "code", "fingerprint": code_good.hex}
    # Platform A sells the creator's code to an agent (no royalty: the creator sells).
    first = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"creator": True},
            "buyer": {"reference": "agent-7"},
            "price": "1000",
            "currency": "EUR",
        },
        headers=bearer(a),
    )
    assert first.status_code == 201, first.text
    receipt = first.json()
    assert receipt["royalties"] == [] and receipt["seller_amount"] == "1000"
    # Anyone can check the receipt with the registry's address alone.
    domain = Domain.from_dict(receipt["domain"])
    message = {
        "goodType": 2,
        "fingerprint": code_good.fingerprint,
        "logIndex": receipt["log_index"],
        "transferHash": bytes.fromhex(receipt["transfer_hash"][2:]),
        "timestamp": receipt["timestamp"],
    }
    signer = recover_signer(
        digest("TransferReceipt", message, domain), Signature.parse(receipt["signature"])
    )
    assert signer == registry.address == receipt["signer"]
    # The agent resells on platform B, with platform A's one-time consent: royalties apply.
    consent = client.post(
        "/v1/transfers/authorizations",
        json={**good, "reference": "agent-7", "buyer_platform": "keyshop"},
        headers=bearer(a),
    )
    assert consent.status_code == 201, consent.text
    second = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "cardhub"},
            "buyer": {"reference": "reseller-2"},
            "price": "1999",
            "currency": "EUR",
            "authorization": consent.json()["authorization"],
        },
        headers=bearer(b),
    )
    assert second.status_code == 201, second.text
    assert second.json()["royalties"][0]["amount"] == str(1999 * 750 // 10_000)
    assert int(second.json()["seller_amount"]) + 1999 * 750 // 10_000 == 1999
    # A seller who is not the holder: 409 with the earlier transfer (double sale).
    third = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "cardhub", "reference": "agent-7"},
            "buyer": {"reference": "victim"},
            "price": "900",
            "currency": "EUR",
        },
        headers=bearer(a),
    )
    assert third.status_code == 409 and third.headers["content-type"] == PROBLEM
    assert third.json()["type"].endswith("/double-sale")
    assert third.json()["earlier"]["transfer_id"] == second.json()["transfer_id"]
    # The final sale to the player consumes it; afterwards everything is refused.
    final = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "keyshop", "reference": "reseller-2"},
            "buyer": {"reference": "player"},
            "price": "2500",
            "currency": "EUR",
            "final": True,
        },
        headers=bearer(b),
    )
    assert final.status_code == 201
    after = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "keyshop", "reference": "player"},
            "buyer": {"reference": "x"},
        },
        headers=bearer(b),
    )
    assert after.status_code == 409 and after.json()["type"].endswith("/consumed")
    consumed = verify(client, a, **good)
    assert consumed["verdict"] == "consumed"
    assert consumed["holder"]["platform"] == "keyshop"  # type: ignore[index]


def test_a_retried_transfer_records_once(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "transfer")
    body = {
        "good_type": "code",
        "fingerprint": code_good.hex,
        "seller": {"creator": True},
        "buyer": {"reference": "agent-7"},
        "price": "10",
        "currency": "EUR",
    }
    headers = {**bearer(key), "Idempotency-Key": "order-42"}
    first = client.post("/v1/transfers", json=body, headers=headers)
    retry = client.post("/v1/transfers", json=body, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["transfer_id"] == first.json()["transfer_id"]
    assert retry.json()["replayed"] is True
    other = client.post(
        "/v1/transfers", json={**body, "buyer": {"reference": "agent-8"}}, headers=headers
    )
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    with registry.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(transfers_t)).scalar_one() == 1


def test_transfers_are_scoped_to_their_platform(
    client: TestClient, code_good: CodeGood, make_key: KeyFactory
) -> None:
    """THREATS 36: another platform's transfer is a 404 identical to a missing one."""
    a, b = make_key("cardhub", "transfer"), make_key("keyshop", "transfer")
    made = client.post(
        "/v1/transfers",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "seller": {"creator": True},
            "buyer": {"reference": "agent"},
        },
        headers=bearer(a),
    ).json()
    mine = client.get(f"/v1/transfers/{made['transfer_id']}", headers=bearer(a))
    theirs = client.get(f"/v1/transfers/{made['transfer_id']}", headers=bearer(b))
    missing = client.get("/v1/transfers/999999", headers=bearer(b))
    assert mine.status_code == 200
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace(str(made["transfer_id"]), "N") == missing.json()[
        "detail"
    ].replace("999999", "N")
    assert client.get("/v1/transfers", headers=bearer(b)).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert len(client.get("/v1/transfers", headers=bearer(a)).json()["items"]) == 1


def test_lists_are_cursor_paginated_with_a_capped_limit(
    client: TestClient,
    registry: Registry,
    make_creator: CreatorFactory,
    clock: Clock,
    make_key: KeyFactory,
) -> None:
    creator = make_creator()
    fingerprints = [os.urandom(32) for _ in range(7)]
    for fp in fingerprints:
        registry.register(registration(creator, clock(), fingerprint=fp))
    registry.sequence_all()
    key = make_key("cardhub", "transfer")
    for fp in fingerprints:
        client.post(
            "/v1/transfers",
            json={
                "good_type": "file",
                "fingerprint": "0x" + fp.hex(),
                "seller": {"creator": True},
                "buyer": {"reference": "r"},
            },
            headers=bearer(key),
        )
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/transfers", params=params, headers=bearer(key)).json()
        seen += [item["transfer_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7 and seen == sorted(seen)
    too_many = client.get("/v1/transfers", params={"limit": 10_000}, headers=bearer(key))
    assert too_many.status_code == 422
    bad_cursor = client.get("/v1/transfers", params={"cursor": "garbage!"}, headers=bearer(key))
    # The cursor's grammar is in the OpenAPI (ab2b8ed): a malformed one is a validation error.
    assert bad_cursor.status_code == 422 and bad_cursor.headers["content-type"] == PROBLEM
    assert bad_cursor.json()["errors"][0]["loc"] == ["query", "cursor"]


@pytest.mark.parametrize(
    ("body", "status", "problem", "detail"),
    [
        (
            {"good_type": "code", "fingerprint": "0x" + "00" * 32, "is_admin": True},
            422,
            "validation-error",
            "body.is_admin: Extra inputs are not permitted",
        ),
        ({"good_type": "code"}, 400, "invalid-input", "exactly one of fingerprint or code"),
        (
            {"good_type": "code", "fingerprint": "0x" + "00" * 32, "code": "1234"},
            400,
            "invalid-input",
            "exactly one of fingerprint or code",
        ),
        (
            {"good_type": "banana", "fingerprint": "0x" + "00" * 32},
            422,
            "validation-error",
            "body.good_type:",
        ),
        (
            {"good_type": "code", "fingerprint": "0x1234"},
            422,
            "validation-error",
            "body.fingerprint:",
        ),
        ({"good_type": "code", "code": "1234"}, 400, "invalid-input", "must name the creator"),
    ],
    ids=["unknown-field", "neither", "both", "bad-type", "short-fingerprint", "no-creator"],
)
def test_bad_verify_bodies_are_problems(
    client: TestClient,
    make_key: KeyFactory,
    body: dict[str, object],
    status: int,
    problem: str,
    detail: str,
) -> None:
    """THREATS 39: unknown fields are refused (422, the field named); a body that parses but
    asks the impossible is a 400; every refusal is problem+json naming its own reason."""
    answer = client.post("/v1/verify", json=body, headers=bearer(make_key("p", "verify")))
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith(f"/{problem}") and answer.json()["status"] == status
    assert detail in answer.json()["detail"], answer.json()
    assert "1234" not in answer.text  # a submitted code is never echoed


def test_anonymous_tier_coarse_code_answers_and_a_strict_budget(
    registry: Registry, code_good: CodeGood
) -> None:
    anchor_everything(registry)
    # Room in the per-request budget: each lookup is two requests (challenge, lookup) here.
    roomy = RateLimits(anonymous=Limit(1000, 1000))
    client = TestClient(create_app(registry, limits=roomy, api_settings=ApiSettings()))
    by_fp = verify(client, None, good_type="code", fingerprint=code_good.hex)
    assert by_fp["verdict"] == "authentic"
    # Each anonymous code lookup carries a solved proof of work (tests/pow.py; issue 12).
    genuine = {"good_type": "code", "code": code_good.code, "creator": code_good.creator.address}
    by_code = lookup(client, genuine).json()
    assert by_code == {"verdict": "authentic", "good_type": "code", "coarse": True}
    wrong = lookup(client, {**genuine, "code": "0000-0000"}).json()
    assert wrong["verdict"] == "not_authentic" and wrong["coarse"] is True
    # The per-IP code budget (10 a minute) runs out: 429 with Retry-After.
    statuses = []
    for _ in range(12):
        answer = lookup(client, genuine)
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
            assert answer.headers["content-type"] == PROBLEM
    assert 429 in statuses


def test_probing_unknown_codes_is_throttled_and_flagged(
    client: TestClient, code_good: CodeGood, make_key: KeyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """THREATS 38: a bot guessing codes under one key hits 429 and is flagged."""
    key = make_key("bot", "verify")
    statuses = []
    for guess in range(40):
        answer = client.post(
            "/v1/verify",
            json={
                "good_type": "code",
                "code": f"9999-{guess:04d}",
                "creator": code_good.creator.address,
            },
            headers=bearer(key),
        )
        statuses.append(answer.status_code)
    assert statuses[0] == 200 and 429 in statuses
    flags = client.app.state.limiter.flags()  # type: ignore[attr-defined]
    flagged = [flag for flag in flags if flag.key.startswith("key:")]
    assert len(flagged) == 1 and flagged[0].failed_probes + flagged[0].refused >= 1
    alerts = [r.getMessage() for r in caplog.records if "probing" in r.getMessage()]
    assert alerts == [f"probing: {flagged[0].key} exhausted its failed-code-lookup budget"]
    assert key not in caplog.text and "9999-" not in caplog.text
    # The flag is written with the telemetry, for the risk worker (another process).
    client.app.state.context.telemetry.flush()  # type: ignore[attr-defined]
    with client.app.state.context.registry.engine.connect() as conn:  # type: ignore[attr-defined]
        (stored,) = read_probe_flags(conn, 0)
    assert stored.key == flagged[0].key and stored.failed_probes + stored.refused >= 1
    # Honest lookups by another platform are unaffected.
    other = make_key("honest", "verify")
    ok = client.post(
        "/v1/verify",
        json={"good_type": "code", "code": code_good.code, "creator": code_good.creator.address},
        headers=bearer(other),
    )
    assert ok.status_code == 200


def test_verify_keeps_answering_from_the_database_when_the_chain_is_down(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    """THREATS 30 (the API's side): no RPC, still answers, and says how old its chain view is."""
    from anchoring.chain import Chain
    from anchoring.devchain import free_port
    from api.app import create_app

    anchor_everything(registry)
    dead = Chain.connect(f"http://127.0.0.1:{free_port()}", "0x" + "00" * 20, timeout=0.5)
    app = create_app(registry, dead)
    with TestClient(app) as client:
        started = time.monotonic()
        answer = verify(
            client, make_key("p", "verify"), good_type="code", fingerprint=code_good.hex
        )
        assert time.monotonic() - started < 5
        assert answer["verdict"] == "authentic"
        assert answer["chain_block"] is None and answer["anchor"]["confirmations"] is None  # type: ignore[index]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "chain" in ready.json()["detail"]


def test_the_registry_says_who_it_is(client: TestClient, registry: Registry) -> None:
    answer = client.get("/v1/registry").json()
    assert answer["address"] == registry.address
    assert Domain.from_dict(answer["domain"]) == registry.domain


def test_a_locked_sqlite_database_is_a_503_with_retry_after(
    tmp_path: object, clock: Clock, make_creator: CreatorFactory
) -> None:
    """THREATS 47: SQLITE_BUSY becomes 503 + Retry-After, never a 500, and nothing is written."""
    import secrets
    import sqlite3
    from pathlib import Path

    from eth_account import Account

    from api.apikeys import create_api_key
    from api.app import create_app
    from registry.db import create_db_engine
    from registry.eip712 import DEV_DOMAIN
    from registry.migrate import upgrade

    path = Path(str(tmp_path)) / "busy.db"
    engine = create_db_engine(f"sqlite:///{path}", busy_timeout_ms=200)
    upgrade(engine)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    fingerprint = os.urandom(32)
    registry.register(registration(make_creator(), clock(), fingerprint=fingerprint))
    registry.sequence_all()
    key, _ = create_api_key(engine, "cardhub", ["transfer"], "t", clock())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        with TestClient(create_app(registry)) as client:
            answer = client.post(
                "/v1/transfers",
                json={
                    "good_type": "file",
                    "fingerprint": "0x" + fingerprint.hex(),
                    "seller": {"creator": True},
                    "buyer": {"reference": "r"},
                },
                headers=bearer(key),
            )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.headers["content-type"] == PROBLEM
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(transfers_t)).scalar_one() == 0


def test_the_verify_front_answers_as_the_stack_does(
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``TracemarkApp`` answers ``POST /v1/verify`` in front of its middleware stack; every
    answer, errors and a crash included, is the one the stack and the FastAPI route give."""
    roomy = Limit(1000, 1000)
    app = create_app(registry, limits=RateLimits(api_key=roomy, anonymous=roomy, code_lookup=roomy))
    client = TestClient(app)
    assert app.verify_front is not None
    front = app.verify_front
    verify_key, audit_key = make_key("cardhub", "verify"), make_key("cardhub", "audit")
    fp = {"good_type": "code", "fingerprint": code_good.hex}
    by_code = {"good_type": "code", "code": code_good.code, "creator": code_good.creator.address}
    json_type = {"Content-Type": "application/json"}
    requests: list[dict[str, object]] = [
        {"json": fp, "headers": bearer(verify_key)},
        {"json": by_code, "headers": bearer(verify_key)},
        {"json": fp},  # anonymous
        {"json": by_code},  # anonymous, without a proof of work: 428
        {"json": fp, "headers": bearer("tm_live_" + "1" * 44)},  # unknown key: 401
        {"json": fp, "headers": bearer(audit_key)},  # no verify scope: 403
        {"json": {**fp, "code": "X"}, "headers": bearer(verify_key)},  # both: 400
        {"json": {**fp, "price": 1}, "headers": bearer(verify_key)},  # unknown field: 422
        {"content": b"{not json", "headers": {**bearer(verify_key), **json_type}},
        {"content": b"good_type=code", "headers": {"Content-Type": "text/plain"}},
        {"content": b" " * (70 * 1024) + b"{}", "headers": json_type},  # over the cap: 413
    ]

    def ask(request: dict[str, object]) -> tuple[int, str | None, object, str | None]:
        answer = client.post("/v1/verify", **request)  # type: ignore[arg-type]
        body = answer.json()
        if isinstance(body, dict):
            body.pop("chain_seen_at", None)
            body.pop("verifications", None)  # telemetry: counts this very request's twin
        return (
            answer.status_code,
            answer.headers.get("content-type"),
            body,
            answer.headers.get("www-authenticate"),
        )

    statuses = []
    for request in requests:
        app.verify_front = front
        through_front = ask(request)
        app.verify_front = None
        through_stack = ask(request)
        assert through_front == through_stack, request
        statuses.append(through_front[0])
    assert statuses == [200, 200, 200, 428, 401, 403, 400, 422, 422, 422, 413]
    app.verify_front = front

    # A crash is a 500 problem that says nothing of it, as ServerErrorMiddleware answers.
    def broken(*_: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(app.state.context.lookup, "facts", broken)
    crash = TestClient(app, raise_server_exceptions=False).post(
        "/v1/verify", json=fp, headers=bearer(verify_key)
    )
    assert crash.status_code == 500 and crash.headers["content-type"] == PROBLEM
    assert "secret" not in crash.text
    monkeypatch.undo()

    # A middleware added later would not see what the front answers: the front steps aside.
    later = create_app(registry)

    @later.middleware("http")
    async def stamp(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["x-stamped"] = "yes"
        return response

    assert later.verify_front is None
    stamped = TestClient(later).post("/v1/verify", json=fp, headers=bearer(verify_key))
    assert stamped.status_code == 200 and stamped.headers["x-stamped"] == "yes"
