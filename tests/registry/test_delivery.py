"""Delivery for an order (issue 17 item 2): the delivered good is checked and a DELIVERY entry
is logged, lands in the good's state-map history and verifies offline in its bundle; on real
SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from readmodels.bundles import build_bundle
from registry.creator import CreatorKeys, sign_revocation
from registry.delivery import Delivery, NotTheReservedGood
from registry.deliverypayload import DELIVERY_FORMAT, DeliveryPayload
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType
from registry.leaf import EntryKind, LeafData, encode_leaf
from registry.merkle import hash_leaf
from registry.orders import InvalidTransition, State
from registry.service import Registry
from registry.transferrequests import GoodRevoked
from tests.conftest import Clock
from tests.registry.orderhelpers import (
    open_and_deliver,
    opening,
    racing_registries,
    register_code,
    snapshot,
)
from tests.registry.test_concurrency import race
from tests.trust import policy_of
from verifier.bundle import Bundle
from verifier.offline import BundleInvalid, check_bundle

# -- known answers (no database) -------------------------------------------------------------

#: A DELIVERY leaf: kind word 8, good type 2 (code), and the other five words as before.
VECTOR_FIELDS = (8, 2, bytes([0x11]) * 32, bytes([0x22]) * 20, bytes([0x33]) * 32, 1_700_000_000)
VECTOR_LEAF_HASH = "80a093af05bcafa7a7c74bd24eaa74ed9ec0ee5f0de033b68734e64471384099"
"""Cross-checked: SHA-256(0x00 || eth_abi.encode of the seven words)."""


def test_a_delivery_leaf_has_known_bytes() -> None:
    data = encode_leaf(*VECTOR_FIELDS)
    assert data[32:64] == bytes(31) + b"\x08" and data[64:96] == bytes(31) + b"\x02"
    assert hash_leaf(data).hex() == VECTOR_LEAF_HASH
    assert LeafData.decode(data).kind is EntryKind.DELIVERY
    # Kinds 1-7 keep their numbers: the new kind is an addition, never a renumbering.
    assert [int(k) for k in EntryKind][:8] == list(range(1, 9))


def _payload(**changes: object) -> DeliveryPayload:
    fields: dict[str, object] = {
        "order_id": 7,
        "opened": bytes([0x44]) * 32,
        "good_type": GoodType.CODE,
        "fingerprint": bytes([0x11]) * 32,
        "platform": "cardhub",
        "seller_platform": None,
        "buyer_commitment": bytes([0x55]) * 32,
        "price": 1_000,
        "currency": "EUR",
        "delivered_at": 1_700_000_000,
        "registry": "0x" + "22" * 20,
        "domain": DEV_DOMAIN,
    }
    fields.update(changes)
    return DeliveryPayload(**fields)  # type: ignore[arg-type]


VECTOR_PAYLOAD_HASH = "35327a893babc29536a5d7df4ca45316e680e17106d5c11d7ec4e349dcf6b958"


def test_a_delivery_payload_has_known_bytes_and_parses_back_only_from_them() -> None:
    payload = _payload()
    assert payload.payload_hash().hex() == VECTOR_PAYLOAD_HASH
    assert DeliveryPayload.from_json(payload.to_json()) == payload
    document = payload.document()
    assert document["format"] == DELIVERY_FORMAT
    # Nothing secret: no code, no buyer reference, no salt.
    assert set(document["delivery"]) == {
        "order",
        "opened",
        "good_type",
        "fingerprint",
        "platform",
        "seller_platform",
        "buyer_commitment",
        "price",
        "currency",
        "delivered_at",
    }
    # A document that parses to the same value but is not what it writes back: refused.
    padded = dict(document, delivery=dict(document["delivery"], price="01000"))
    with pytest.raises(InvalidInput, match="canonical"):
        DeliveryPayload.from_document(padded)
    other = dict(document, format="tracemark-delivery/v2")
    with pytest.raises(InvalidInput):
        DeliveryPayload.from_document(other)


# -- on the databases ------------------------------------------------------------------------


@pytest.fixture
def code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    """A registered single-use code, still held by its creator."""
    return register_code(registry, creator, clock)


def _log_size(registry: Registry) -> int:
    return registry.latest_tree_head().tree_size


def test_delivering_the_reserved_good_logs_a_delivery_that_verifies_offline(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order, done = open_and_deliver(registry, clock, code)
    assert isinstance(done, Delivery)
    assert done.order.state is State.DELIVERED
    assert done.payload.order_id == order.order_id
    assert done.payload.buyer_commitment == order.buyer_commitment
    assert (done.payload.price, done.payload.currency) == (1_000, "EUR")
    assert done.payload.opened == order.changes[0].change_hash
    history = registry.history(GoodType.CODE, code)
    deliveries = [e for e in history if e.kind is EntryKind.DELIVERY]
    assert [e.leaf_index for e in deliveries] == [done.leaf_index]
    assert deliveries[0].payload_hash == done.payload_hash == done.payload.payload_hash()

    bundle = Bundle.parse(build_bundle(registry, GoodType.CODE, code).to_json())
    assert [e.kind for e in bundle.later_entries] == [EntryKind.DELIVERY]
    report = check_bundle(bundle, policy_of(registry), None)
    delivered = [p for p in report.entries if p.kind is EntryKind.DELIVERY]
    assert len(delivered) == 1 and delivered[0].order_id == order.order_id
    assert "delivered for order" in delivered[0].describe()
    # The bundle's state-map value counts the DELIVERY in the good's history.
    assert bundle.state is not None and bundle.state.value is not None
    assert bundle.state.value.entry_count == 2

    # A retry under the same key replays: the same entry, no second one.
    size = _log_size(registry)
    again = registry.deliver(order.order_id, [code], platform="cardhub", idempotency_key="d-1")
    assert again.order.replayed and again.leaf_index == done.leaf_index
    assert _log_size(registry) == size
    # Without the key it is a second delivery: refused, the order is delivered already.
    with pytest.raises(InvalidTransition):
        registry.deliver(order.order_id, [code], platform="cardhub")


def test_a_tampered_delivery_in_a_bundle_is_refused(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order = registry.open_order(opening(code))
    registry.deliver(order.order_id, [code], platform="cardhub")
    document = json.loads(build_bundle(registry, GoodType.CODE, code).to_json())
    check_bundle(Bundle.parse(json.dumps(document)), policy_of(registry), None)
    document["later_entries"][0]["payload"]["delivery"]["price"] = "1"
    with pytest.raises(BundleInvalid):
        check_bundle(Bundle.parse(json.dumps(document)), policy_of(registry), None)


def test_a_wrong_code_is_refused_and_changes_nothing(
    registry: Registry, engine: Engine, clock: Clock, code: bytes, creator: CreatorKeys
) -> None:
    order = registry.open_order(opening(code))
    other = register_code(registry, creator, clock, product="other-card")
    before, size = snapshot(engine), _log_size(registry)
    for candidates, says in (
        ([other], "another registered good"),
        ([os.urandom(32)], "not registered"),
        ([], "no code key"),
    ):
        with pytest.raises(NotTheReservedGood, match=says):
            registry.deliver(order.order_id, candidates, platform="cardhub")
    assert snapshot(engine) == before and _log_size(registry) == size
    assert registry.order(order.order_id).state is State.RESERVED
    # Another platform cannot deliver it at all (the same answer as no such order).
    with pytest.raises(NotFound):
        registry.deliver(order.order_id, [code], platform="keyshop")


def test_a_revoked_good_is_refused_and_changes_nothing(
    registry: Registry, engine: Engine, clock: Clock, code: bytes, creator: CreatorKeys
) -> None:
    order = registry.open_order(opening(code))
    registry.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=code,
            reason="leaked",
            now=clock(),
        )
    )
    registry.sequence_all()
    before, size = snapshot(engine), _log_size(registry)
    with pytest.raises(GoodRevoked):
        registry.deliver(order.order_id, [code], platform="cardhub")
    assert snapshot(engine) == before and _log_size(registry) == size


def test_a_delivery_racing_the_expiry_is_exactly_one_of_them(
    db_url: str, registry: Registry, clock: Clock, code: bytes, creator: CreatorKeys
) -> None:
    """The deliverer's clock is one second before the reservation ends, the sweeper's at its
    end: whichever takes the order's row first wins; the other finds it moved."""
    for round_ in range(3):
        fingerprint = code
        if round_:
            fingerprint = register_code(registry, creator, clock, product=f"race-{round_}")
        order = registry.open_order(opening(fingerprint))
        early, late = Clock(order.reserved_until - 1), Clock(order.reserved_until)
        deliverer = racing_registries(db_url, registry, early, 1)[0]
        sweeper = racing_registries(db_url, registry, late, 1)[0]
        calls: list[Callable[[], object]] = [
            lambda d=deliverer, o=order.order_id, f=fingerprint: d.deliver(  # type: ignore[misc]
                o, [f], platform="cardhub"
            ),
            sweeper.sweep_orders,
        ]
        delivered, swept = race(calls)
        final = registry.order(order.order_id)
        entries = [
            e for e in registry.history(GoodType.CODE, fingerprint) if e.kind is EntryKind.DELIVERY
        ]
        if isinstance(delivered, Delivery):
            assert swept == 0 and final.state is State.DELIVERED and len(entries) == 1
        else:
            assert isinstance(delivered, InvalidTransition), delivered
            assert swept == 1 and final.state is State.EXPIRED and entries == []
        for racer in (deliverer, sweeper):
            racer.engine.dispose()
