"""The orders' routes (issue 17): open, read, confirm, dispute, resolve, cancel, through the
real app on SQLite and PostgreSQL; every refusal a problem+json, every invalid move a 409
that changes nothing (generated from the state table)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.orders import TRANSITIONS, Event, State
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.conftest import Clock
from tests.registry.orderhelpers import snapshot
from verifier.client import TracemarkClient
from verifier.problems import ApiProblem

PROBLEM = "application/problem+json"

#: The events a route asks for, and how.
ROUTE_EVENTS: dict[Event, tuple[str, dict[str, Any] | None]] = {
    Event.CONFIRM: ("confirm", None),
    Event.DISPUTE: ("dispute", None),
    Event.RELEASE: ("resolve", {"outcome": "release"}),
    Event.REFUND: ("resolve", {"outcome": "refund"}),
    Event.CANCEL: ("cancel", None),
}


def order_body(good: CodeGood, **changes: Any) -> dict[str, Any]:
    return {
        "good_type": "code",
        "fingerprint": good.hex,
        "seller": {"creator": True},
        "buyer_reference": "buyer-1",
        "price": "1999",
        "currency": "CNY",
        "confirm_window": 3_600,
        "reservation_seconds": 600,
        **changes,
    }


def open_order(client: TestClient, key: str, good: CodeGood, **changes: Any) -> dict[str, Any]:
    answer = client.post("/v1/orders", json=order_body(good, **changes), headers=bearer(key))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def move(client: TestClient, key: str, order_id: int, event: Event, **headers: str) -> Any:
    action, body = ROUTE_EVENTS[event]
    return client.post(
        f"/v1/orders/{order_id}/{action}", json=body, headers={**bearer(key), **headers}
    )


def order_in_state(
    client: TestClient, registry: Registry, clock: Clock, key: str, good: CodeGood, state: State
) -> int:
    """An order of platform cardhub brought to ``state`` (delivery through the facade: its
    route is issue 17 item 2; timeouts by the clock and the sweep)."""
    order_id = int(open_order(client, key, good)["order_id"])
    paths: dict[State, list[Event | str]] = {
        State.RESERVED: [],
        State.DELIVERED: [Event.DELIVER],
        State.DISPUTED: [Event.DELIVER, Event.DISPUTE],
        State.CONFIRMED: [Event.DELIVER, Event.CONFIRM],
        State.AUTO_CONFIRMED: [Event.DELIVER, "wait"],
        State.RELEASED: [Event.DELIVER, Event.DISPUTE, Event.RELEASE],
        State.REFUNDED: [Event.DELIVER, Event.DISPUTE, Event.REFUND],
        State.EXPIRED: ["wait"],
        State.CANCELLED: [Event.CANCEL],
    }
    for step in paths[state]:
        if step == "wait":
            clock.advance(3_600)
            registry.sweep_orders()
        elif step is Event.DELIVER:
            registry.deliver_order(order_id, platform="cardhub")
        else:
            assert isinstance(step, Event)
            assert move(client, key, order_id, step).status_code == 200
    answer = client.get(f"/v1/orders/{order_id}", headers=bearer(key))
    assert answer.json()["state"] == state.value
    return order_id


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_invalid_move_is_a_409_problem_that_changes_nothing(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    code_good: CodeGood,
    make_key: KeyFactory,
    state: State,
) -> None:
    key = make_key("cardhub", "transfer")
    order_id = order_in_state(client, registry, clock, key, code_good, state)
    refused = [e for e in ROUTE_EVENTS if (state, e) not in TRANSITIONS]
    for event in refused:
        before = snapshot(registry.engine)
        answer = move(client, key, order_id, event, **{"Idempotency-Key": f"k-{event.value}"})
        assert answer.status_code == 409, (event, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("/invalid-transition")
        assert state.value in answer.json()["detail"]
        assert snapshot(registry.engine) == before, event


def test_an_order_from_opening_to_confirmation(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    code_good: CodeGood,
    make_key: KeyFactory,
) -> None:
    cardhub = make_key("cardhub", "verify", "transfer")
    keyshop = make_key("keyshop", "verify", "transfer")
    headers = {**bearer(cardhub), "Idempotency-Key": "open-1"}
    first = client.post("/v1/orders", json=order_body(code_good), headers=headers)
    again = client.post("/v1/orders", json=order_body(code_good), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    order = first.json()
    assert again.json()["order_id"] == order["order_id"] and again.json()["replayed"] is True
    assert order["state"] == "reserved" and order["open"] is True
    assert order["price"] == "1999" and order["currency"] == "CNY"
    assert "buyer-1" not in first.text
    reused = client.post("/v1/orders", json=order_body(code_good, price="1"), headers=headers)
    assert reused.status_code == 422

    # Reserved: verify says so; another platform can neither sell it nor reserve it.
    verified = client.post(
        "/v1/verify",
        json={"good_type": "code", "fingerprint": code_good.hex},
        headers=bearer(cardhub),
    )
    assert verified.json()["holder"]["reserved"] is True
    sale = {
        "good_type": "code",
        "fingerprint": code_good.hex,
        "seller": {"creator": True},
        "buyer": {"reference": "someone"},
    }
    refused = client.post("/v1/transfers", json=sale, headers=bearer(keyshop))
    assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/reserved")
    taken = client.post("/v1/orders", json=order_body(code_good), headers=bearer(keyshop))
    assert taken.status_code == 409 and taken.json()["type"].endswith("/reserved")

    # Not keyshop's order: the same 404 as one that does not exist.
    order_id = order["order_id"]
    theirs = client.get(f"/v1/orders/{order_id}", headers=bearer(keyshop))
    missing = client.get(f"/v1/orders/{order_id + 1000}", headers=bearer(keyshop))
    assert theirs.status_code == missing.status_code == 404
    assert move(client, keyshop, order_id, Event.CANCEL).status_code == 404

    registry.deliver_order(order_id, platform="cardhub")
    confirmed = move(client, cardhub, order_id, Event.CONFIRM)
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "confirmed"
    assert [c["event"] for c in confirmed.json()["changes"]] == ["open", "deliver", "confirm"]
    twice = move(client, cardhub, order_id, Event.CONFIRM)
    assert twice.status_code == 409 and twice.json()["type"].endswith("/invalid-transition")
    verified = client.post(
        "/v1/verify",
        json={"good_type": "code", "fingerprint": code_good.hex},
        headers=bearer(cardhub),
    )
    assert verified.json()["holder"]["reserved"] is False
    listed = client.get("/v1/orders", headers=bearer(cardhub)).json()
    assert [o["order_id"] for o in listed["items"]] == [order_id]
    assert client.get("/v1/orders", headers=bearer(keyshop)).json()["items"] == []


def test_a_lapsed_reservation_is_not_reserved_to_verify_before_any_sweep(
    client: TestClient, clock: Clock, code_good: CodeGood, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "verify", "transfer")
    open_order(client, key, code_good)
    clock.advance(600)
    verified = client.post(
        "/v1/verify", json={"good_type": "code", "fingerprint": code_good.hex}, headers=bearer(key)
    )
    assert verified.json()["holder"]["reserved"] is False


def test_a_dispute_resolved_by_refund_frees_the_good(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    code_good: CodeGood,
    make_key: KeyFactory,
) -> None:
    key = make_key("cardhub", "transfer")
    order_id = order_in_state(client, registry, clock, key, code_good, State.DISPUTED)
    refunded = move(client, key, order_id, Event.REFUND)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert refunded.json()["open"] is False
    assert open_order(client, make_key("keyshop", "transfer"), code_good)["state"] == "reserved"


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "cny"},
        {"currency": "CNYX"},
        {"price": "-1"},
        {"confirm_window": 10},
        {"reservation_seconds": 10**8},
        {"buyer_reference": ""},
        {"seller": {"creator": True, "reference": "x"}},
        {"unknown": 1},
    ],
)
def test_bad_openings_are_problems(
    client: TestClient, code_good: CodeGood, make_key: KeyFactory, changes: dict[str, Any]
) -> None:
    key = make_key("cardhub", "transfer")
    answer = client.post("/v1/orders", json=order_body(code_good, **changes), headers=bearer(key))
    assert answer.status_code in (400, 422), answer.text
    assert answer.headers["content-type"] == PROBLEM


def test_the_verify_scope_alone_cannot_open_an_order(
    client: TestClient, code_good: CodeGood, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "verify")
    answer = client.post("/v1/orders", json=order_body(code_good), headers=bearer(key))
    assert answer.status_code == 403


def test_the_typed_client_opens_disputes_and_resolves(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "transfer")
    with TracemarkClient("http://testserver", api_key=key, http_client=client) as platform:
        order = platform.open_order(
            good_type="code",
            fingerprint=code_good.fingerprint,
            seller={"creator": True},
            buyer_reference="buyer-9",
            price=500,
            currency="EUR",
            idempotency_key="typed-1",
        )
        assert order.state == "reserved" and not order.replayed
        registry.deliver_order(order.order_id, platform="cardhub")
        disputed = platform.dispute_order(order.order_id, idempotency_key="d-1")
        assert disputed.state == "disputed"
        assert platform.dispute_order(order.order_id, idempotency_key="d-1").replayed
        released = platform.resolve_order(order.order_id, "release")
        assert released.state == "released" and platform.order(order.order_id) == released
        assert [o.order_id for o in platform.orders().items] == [order.order_id]
        with pytest.raises(ApiProblem) as raised:
            platform.cancel_order(order.order_id)
        assert raised.value.status == 409
