"""``POST /v1/orders/{id}/deliver`` (issue 17 item 2) through the real app, on SQLite and
PostgreSQL: the code hashed as verify hashes it, a wrong code a problem that changes nothing,
the code never echoed, and the delivery's entry verifies offline in the good's bundle."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from readmodels.bundles import build_bundle
from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_order_routes import PROBLEM, open_order
from tests.registry.orderhelpers import snapshot
from tests.trust import policy_of
from verifier.bundle import Bundle
from verifier.client import TracemarkClient
from verifier.offline import check_bundle


def test_delivering_the_code_logs_it_and_a_wrong_one_changes_nothing(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cardhub = make_key("cardhub", "transfer")
    keyshop = make_key("keyshop", "transfer")
    order_id = int(open_order(client, cardhub, code_good)["order_id"])
    url = f"/v1/orders/{order_id}/deliver"

    before = snapshot(registry.engine)
    for body, code in (
        ({"code": "9999-0000-ffffff"}, "not-the-reserved-good"),
        ({"fingerprint": "0x" + "ab" * 32}, "not-the-reserved-good"),
    ):
        wrong = client.post(url, json=body, headers=bearer(cardhub))
        assert wrong.status_code == 409, wrong.text
        assert wrong.headers["content-type"] == PROBLEM
        assert wrong.json()["type"].endswith("/" + code)
        assert "9999-0000-ffffff" not in wrong.text
    both = client.post(
        url, json={"code": code_good.code, "fingerprint": code_good.hex}, headers=bearer(cardhub)
    )
    assert both.status_code == 400 and both.headers["content-type"] == PROBLEM
    other = client.post(url, json={"code": code_good.code}, headers=bearer(keyshop))
    assert other.status_code == 404
    assert snapshot(registry.engine) == before

    headers = {**bearer(cardhub), "Idempotency-Key": "deliver-1"}
    done = client.post(url, json={"code": code_good.code}, headers=headers)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["order"]["state"] == "delivered"
    assert code_good.code not in done.text
    delivery = answer["delivery"]
    assert delivery["payload"]["delivery"]["order"] == order_id
    assert delivery["payload"]["delivery"]["fingerprint"] == code_good.hex
    again = client.post(url, json={"code": code_good.code}, headers=headers)
    assert again.status_code == 200 and again.json()["order"]["replayed"] is True
    assert again.json()["delivery"]["leaf_index"] == delivery["leaf_index"]
    # The code never reaches a log line.
    assert all(code_good.code not in record.getMessage() for record in caplog.records)

    bundle = Bundle.parse(build_bundle(registry, GoodType.CODE, code_good.fingerprint).to_json())
    report = check_bundle(bundle, policy_of(registry), None)
    assert [(p.kind, p.leaf_index) for p in report.entries][-1] == (
        EntryKind.DELIVERY,
        delivery["leaf_index"],
    )


def test_the_client_delivers(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    cardhub = make_key("cardhub", "transfer")
    order_id = int(open_order(client, cardhub, code_good)["order_id"])
    with TracemarkClient("http://testserver", api_key=cardhub, http_client=client) as platform:
        done = platform.deliver_order(order_id, fingerprint=code_good.fingerprint)
    assert done.order.state == "delivered" and done.delivery.leaf_index > 0
