"""``order.changed`` webhooks (issue 17 item 8): each recorded order state change queues
exactly one event for the order's platform's subscriptions, in the change's own transaction
(a change that rolls back queues none), on SQLite and PostgreSQL. Sending, signing, retries
and the SSRF guard are the existing outbox's (tests/api/test_webhooks.py)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from sqlalchemy import select

from api.webhooks import WebhookService, WebhookSettings
from api.webhooks.store import deliveries_t
from registry.creator import CreatorKeys
from registry.delivery import NotTheReservedGood
from registry.fingerprints import GoodType, Use
from registry.orders import Event, InvalidTransition
from registry.service import Registry
from tests.api.conftest import KeyFactory
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.registry.orderhelpers import opening

SETTINGS = WebhookSettings(allow_http=True, allow_loopback=True)


def queued(registry: Registry) -> list[dict[str, Any]]:
    d = deliveries_t.c
    with registry.engine.connect() as conn:
        rows = conn.execute(
            select(d.subscription_id, d.event_type, d.event_key, d.payload).order_by(d.id)
        ).all()
    return [dict(row._mapping) for row in rows]


def test_each_order_change_queues_exactly_one_event_and_a_rolled_back_one_none(
    registry: Registry, clock: Clock, creator: CreatorKeys, make_key: KeyFactory
) -> None:
    make_key("cardhub", "transfer")
    make_key("keyshop", "transfer")
    service = WebhookService(registry, SETTINGS)  # wires registry.order_listener
    mine, _ = service.create("cardhub", "http://127.0.0.1:9/hook", ["order.changed"])
    service.create("keyshop", "http://127.0.0.1:9/other", ["order.changed"])
    service.create("cardhub", "http://127.0.0.1:9/anchors", ["anchor.final"])
    code = os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=code,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
        )
    )
    registry.sequence_all()

    order = registry.open_order(opening(code))
    assert len(queued(registry)) == 1
    # Rolled back: a wrong code (the deliver change is made, then the check refuses) and an
    # invalid move queue nothing.
    with pytest.raises(NotTheReservedGood):
        registry.deliver(order.order_id, [os.urandom(32)], platform="cardhub")
    with pytest.raises(InvalidTransition):
        registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")
    assert len(queued(registry)) == 1
    registry.deliver(order.order_id, [code], platform="cardhub")
    assert len(queued(registry)) == 2
    # A retry of a change replays it: no second event.
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub", idempotency_key="d")
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub", idempotency_key="d")
    assert len(queued(registry)) == 3
    registry.change_order(order.order_id, Event.RELEASE, platform="cardhub")

    events = queued(registry)
    final = registry.order(order.order_id)
    assert [c.event for c in final.changes] == ["open", "deliver", "dispute", "release"]
    keys = [e["event_key"] for e in events]
    assert keys == [f"order:{order.order_id}:{c.sequence}" for c in final.changes]
    assert {e["subscription_id"] for e in events} == {mine.id}
    assert {e["event_type"] for e in events} == {"order.changed"}
    for event, change in zip(events, final.changes, strict=True):
        body = json.loads(event["payload"])
        assert body["type"] == "order.changed"
        data = body["data"]
        assert (data["order_id"], data["sequence"], data["event"], data["to_state"]) == (
            order.order_id,
            change.sequence,
            change.event,
            change.to_state,
        )
        assert data["change_hash"] == "0x" + change.change_hash.hex()
        assert "buyer-1" not in event["payload"]
        assert order.buyer_salt.hex() not in event["payload"]
