"""``GET /v1/orders/{id}/evidence`` (issue 17 item 5) through the real app, on SQLite and
PostgreSQL: the order's platform and an auditor get evidence that verifies offline; another
platform gets exactly the 404 of a missing order; the typed client fetches it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_order_routes import PROBLEM, open_order
from tests.trust import policy_of
from verifier.client import TracemarkClient
from verifier.orderevidence import OrderEvidence, check_order_evidence


def _problem(answer: Any) -> dict[str, Any]:
    assert answer.headers["content-type"] == PROBLEM, answer.text
    body = dict(answer.json())
    body.pop("instance", None)  # the request's own path
    return body


def test_the_parties_and_auditors_fetch_verifiable_evidence_and_nobody_else(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    cardhub = make_key("cardhub", "transfer")
    auditor = make_key("auditco", "audit")
    keyshop = make_key("keyshop", "transfer", "verify")
    verifier_only = make_key("cardhub", "verify")
    order_id = int(open_order(client, cardhub, code_good)["order_id"])
    url = f"/v1/orders/{order_id}/evidence"

    early = client.get(url, headers=bearer(cardhub))
    assert early.status_code == 409 and _problem(early)["type"].endswith("/not-delivered")

    delivered = client.post(
        f"/v1/orders/{order_id}/deliver",
        json={"fingerprint": code_good.hex},
        headers=bearer(cardhub),
    )
    assert delivered.status_code == 200, delivered.text

    documents = []
    for key in (cardhub, auditor):
        answer = client.get(url, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        evidence = OrderEvidence.parse(answer.content)
        report = check_order_evidence(evidence, policy_of(registry), None)
        assert report.order_id == order_id and report.state == "delivered" and report.clean
        documents.append(evidence)
    assert documents[0].changes == documents[1].changes

    # Another platform: the very answer a missing order gets (no oracle for ids).
    theirs = client.get(url, headers=bearer(keyshop))
    missing = client.get("/v1/orders/999999/evidence", headers=bearer(keyshop))
    assert theirs.status_code == missing.status_code == 404
    assert _problem(theirs) == _problem(missing)
    assert str(order_id) not in theirs.text.replace(url, "")
    # A key of neither scope, and no key at all: refused whatever the id.
    assert client.get(url, headers=bearer(verifier_only)).status_code == 403
    assert client.get(url).status_code == 401

    with TracemarkClient("http://testserver", api_key=auditor, http_client=client) as platform:
        fetched = platform.order_evidence(order_id)
    assert check_order_evidence(fetched, policy_of(registry), None).clean
