"""The buyer's delivery receipt through the real app (issue 17 item 3), on SQLite and
PostgreSQL: the deliver answer carries it, the platform and the short link read it, it verifies
offline; the public code check answers match / no match behind the public code check's proof
of work and budgets; the code never in an answer, a URL or a log record; the page and its QR."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient

from api.app import create_app
from api.pow import POW_HEADER, body_binding, solve
from api.ratelimit import Limit, RateLimits
from api.settings import ApiSettings
from api.web import CONTENT_SECURITY_POLICY
from readmodels.bundles import build_bundle
from registry.fingerprints import GoodType
from registry.service import Registry
from tests.api.conftest import SIWE_DOMAIN, CodeGood, KeyFactory, bearer
from tests.api.test_order_routes import PROBLEM, open_order
from tests.trust import policy_of
from verifier.bundle import Bundle
from verifier.client import TracemarkClient
from verifier.deliveryreceipt import check_delivery_receipt
from verifier.schemas.deliveryreceipts import DeliveryReceiptOut

ROOMY = Limit(1000, 1000)
#: Cheap proofs for tests not about their cost (one nonce in 2^8 works).
CHEAP = ApiSettings(anon_pow_bits=8)


def make_client(registry: Registry, settings: ApiSettings = CHEAP, **limits: Limit) -> TestClient:
    chosen = {"anonymous": ROOMY, "signed_write": ROOMY, **limits}
    app = create_app(
        registry,
        siwe_domain=SIWE_DOMAIN,
        telemetry_interval=0.05,
        limits=RateLimits(**chosen),
        api_settings=settings,
    )
    return TestClient(app)


def deliver(client: TestClient, key: str, good: CodeGood) -> dict[str, Any]:
    order_id = int(open_order(client, key, good)["order_id"])
    done = client.post(
        f"/v1/orders/{order_id}/deliver",
        json={"code": good.code},
        headers={**bearer(key), "Idempotency-Key": f"deliver-{order_id}"},
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


def check(client: TestClient, receipt: dict[str, Any], code: str, *, proof: bool = True) -> Any:
    """``POST /v1/receipts/<id>/check`` as the page does it: a challenge solved for the code."""
    headers = {}
    if proof:
        issued = client.post("/v1/verify/challenge").json()
        creator = receipt["document"]["receipt"]["facts"]["creator"]
        binding = body_binding("code", creator, None, code)
        headers[POW_HEADER] = solve(issued["challenge"], issued["difficulty"], binding)
    return client.post(
        f"/v1/receipts/{receipt['receipt_id']}/check", json={"code": code}, headers=headers
    )


def test_the_deliver_answer_carries_the_receipt_which_verifies_offline(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(registry)
    cardhub, keyshop = make_key("cardhub", "transfer"), make_key("keyshop", "transfer")
    answer = deliver(client, cardhub, code_good)
    receipt = answer["receipt"]
    DeliveryReceiptOut.model_validate(receipt)
    order_id = answer["order"]["order_id"]
    assert receipt["receipt_id"] != str(order_id) and len(receipt["receipt_id"]) == 22
    assert receipt["link"] == f"http://testserver/r/{receipt['receipt_id']}"
    assert receipt["qr"] == receipt["link"] + "/qr.svg"
    assert receipt["proof"] == f"/v1/goods/code/{code_good.hex}/proof"
    body = receipt["document"]["receipt"]
    assert body["leaf_index"] == answer["delivery"]["leaf_index"]
    assert body["delivery_hash"] == answer["delivery"]["payload_hash"]
    assert body["buyer_commitment"] == answer["order"]["buyer_commitment"]
    assert body["facts"]["never_sold_before"] is True

    # The platform reads it again; the short link gives the same signed receipt to anyone.
    again = client.get(f"/v1/orders/{order_id}/receipt", headers=bearer(cardhub))
    assert again.status_code == 200 and again.json() == receipt
    public = client.get(f"/v1/receipts/{receipt['receipt_id']}")
    assert public.status_code == 200 and public.json() == receipt
    # Offline, with the good's bundle: signed by the registry, the facts the log's.
    bundle = Bundle.parse(build_bundle(registry, GoodType.CODE, code_good.fingerprint).to_json())
    report = check_delivery_receipt(public.json(), policy_of(registry), bundle=bundle)
    assert report.facts_proven and "never sold before" in report.summary()

    # Another platform's order, an undelivered order, an unknown id: the same 404 problems.
    other = client.get(f"/v1/orders/{order_id}/receipt", headers=bearer(keyshop))
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM
    reserved = open_order(client, keyshop, _second_good(registry, code_good))
    undelivered = client.get(f"/v1/orders/{reserved['order_id']}/receipt", headers=bearer(keyshop))
    assert undelivered.status_code == 404 and "not delivered" in undelivered.json()["detail"]
    unknown = client.get("/v1/receipts/" + "A" * 22)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM
    malformed = client.get("/v1/receipts/short")
    assert malformed.status_code in (400, 422)
    assert malformed.headers["content-type"] == PROBLEM
    # The code: in no answer, no log record.
    for text in (again.text, public.text):
        assert code_good.code not in text
    assert all(code_good.code not in record.getMessage() for record in caplog.records)


def _second_good(registry: Registry, good: CodeGood) -> CodeGood:
    """Another registered code of the same creator (its key is enrolled already)."""
    import os

    from registry.fingerprints import CodeFingerprinter, Use
    from tests.registry.helpers import registration

    code = "4321-8765-" + os.urandom(3).hex()
    fingerprint = CodeFingerprinter(good.creator.require_code_key()).fingerprint(code)
    registry.register(
        registration(
            good.creator,
            registry.clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
        )
    )
    registry.sequence_all()
    return CodeGood(good.creator, code, fingerprint)


def test_the_code_check_answers_match_or_no_match_and_never_sees_a_url(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(registry)
    receipt = deliver(client, make_key("cardhub", "transfer"), code_good)["receipt"]
    sent: list[str] = []
    client.event_hooks["request"].append(lambda request: sent.append(str(request.url)))

    right = check(client, receipt, code_good.code)
    assert right.status_code == 200 and right.json() == {"match": True}
    # Lower case is the same code (the fingerprinter normalises it, as verify does).
    assert check(client, receipt, code_good.code.lower()).json() == {"match": True}
    wrong = check(client, receipt, "9999-0000-ffffff")
    assert wrong.status_code == 200 and wrong.json() == {"match": False}
    # Another registered good is no match either, and says nothing more.
    other = _second_good(registry, code_good)
    assert check(client, receipt, other.code).json() == {"match": False}

    # Never in a URL, an answer, a log record.
    for code in (code_good.code, other.code, "9999-0000-ffffff"):
        assert all(code not in url and code.lower() not in url for url in sent)
        assert all(code not in record.getMessage() for record in caplog.records)
    assert code_good.code not in right.text and code_good.code not in wrong.text

    # Without a proof of work: 428; a proof solved for another code: 400; an unknown id: 404.
    bare = check(client, receipt, code_good.code, proof=False)
    assert bare.status_code == 428 and bare.headers["content-type"] == PROBLEM
    issued = client.post("/v1/verify/challenge").json()
    creator = receipt["document"]["receipt"]["facts"]["creator"]
    for_other = solve(
        issued["challenge"], issued["difficulty"], body_binding("code", creator, None, "0000")
    )
    stolen = client.post(
        f"/v1/receipts/{receipt['receipt_id']}/check",
        json={"code": code_good.code},
        headers={POW_HEADER: for_other},
    )
    assert stolen.status_code == 400 and stolen.json()["type"].endswith("/proof-of-work-refused")
    unknown = check(client, {**receipt, "receipt_id": "B" * 22}, code_good.code)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("bucket", ["code_lookup", "code_lookup_all"])
def test_the_code_check_spends_the_public_code_lookup_budgets(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory, bucket: str
) -> None:
    """Three checks a minute in the bucket under test: the fourth is 429 naming it, and a
    public verify from the same address is refused by the same budget (one budget, not two)."""
    if bucket == "code_lookup":
        client = make_client(registry, probe=ROOMY, code_lookup=Limit.per_minute(3, burst=3))
    else:  # everyone's budget is a setting (api.app), per minute
        settings = ApiSettings(anon_pow_bits=8, anon_code_lookups_per_minute=3)
        client = make_client(registry, settings, probe=ROOMY, code_lookup=ROOMY)
    receipt = deliver(client, make_key("cardhub", "transfer"), code_good)["receipt"]
    answers = [check(client, receipt, c) for c in (code_good.code, "1-wrong", "2-wrong")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    refused = check(client, receipt, code_good.code)
    assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
    assert bucket in refused.json()["detail"] and int(refused.headers["Retry-After"]) >= 1
    from tests.pow import lookup

    verify = lookup(
        client,
        {"good_type": "code", "code": code_good.code, "creator": code_good.creator.address},
    )
    assert verify.status_code == 429


def test_wrong_codes_spend_the_failed_probe_budget(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    client = make_client(registry, probe=Limit.per_minute(2, burst=2), code_lookup=ROOMY)
    receipt = deliver(client, make_key("cardhub", "transfer"), code_good)["receipt"]
    # A match costs no probe token; each no match does, and the budget spent refuses.
    assert check(client, receipt, code_good.code).json() == {"match": True}
    assert check(client, receipt, "1-wrong").json() == {"match": False}
    statuses = [check(client, receipt, f"{i}-wrong").status_code for i in range(2, 4)]
    assert 429 in statuses
    assert check(client, receipt, code_good.code).status_code == 429  # flagged now


def test_the_page_shows_the_receipt_and_its_qr_never_the_code(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    client = make_client(registry)
    receipt = deliver(client, make_key("cardhub", "transfer"), code_good)["receipt"]
    page = client.get(f"/r/{receipt['receipt_id']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert code_good.hex in page.text and "Authentic, never sold before" in page.text
    assert receipt["document"]["receipt"]["buyer_commitment"] in page.text
    assert code_good.code not in page.text and code_good.code.lower() not in page.text
    qr = client.get(receipt["qr"])
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
    # The QR encodes exactly the receipt's link: segno draws the same modules for it.
    expected = io.BytesIO()
    segno.make(receipt["link"], error="m").save(
        expected, kind="svg", scale=4, border=4, title="QR code: opens this delivery receipt"
    )
    assert qr.content == expected.getvalue()
    for path in ("/r/" + "C" * 22, "/r/nope", "/r/" + "C" * 22 + "/qr.svg"):
        missing = client.get(path)
        assert missing.status_code == 404 and "no receipt of that id" in missing.text


def test_the_client_reads_the_receipt_and_checks_a_code(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    client = make_client(registry)
    cardhub = make_key("cardhub", "transfer")
    order_id = int(open_order(client, cardhub, code_good)["order_id"])
    with TracemarkClient("http://testserver", api_key=cardhub, http_client=client) as platform:
        done = platform.deliver_order(order_id, fingerprint=code_good.fingerprint)
        assert done.receipt is not None
        assert platform.delivery_receipt(order_id) == done.receipt
    report = check_delivery_receipt(done.receipt.model_dump(), policy_of(registry))
    assert report.receipt.order_id == order_id
    # The buyer, with no credential: the short link's receipt, and the code checked.
    with TracemarkClient("http://testserver", http_client=client) as buyer:
        receipt = buyer.delivery_receipt_by_id(done.receipt.receipt_id)
        assert receipt == done.receipt
        assert buyer.check_receipt_code(receipt, code_good.code) is True
        assert buyer.check_receipt_code(receipt, "0000-1111-222222") is False
