"""Test helpers for orders (issue 17): a code good registered, an order's opening, a
delivery, the creator's first sale to a reseller, and the orders' tables as rows. Shared by
the orders, delivery, receipt, evidence, settlement and rebate tests, which set up the same
goods and orders."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, select

from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.delivery import Delivery
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.orders import OrderRequest
from registry.orderstore import OrderView, changes_t, orders_t
from registry.reservations import reservations_t
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.transferrequests import Party
from tests.conftest import Clock
from tests.registry.helpers import NO_ROYALTY, registration
from tests.registry.test_transfers import sale

CREATOR = Party(None, None)
#: An opening's confirm window and reservation (seconds).
WINDOW = 3_600
HOLD = 600


def register_code(
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    *,
    product: str = "30-day-card",
    use: Use = Use.SINGLE,
    policy: RoyaltyPolicy = NO_ROYALTY,
) -> bytes:
    """A fresh code good registered and sequenced, held by its creator; its fingerprint."""
    fingerprint = os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product=product,
            use=use,
            policy=policy,
        )
    )
    registry.sequence_all()
    return fingerprint


def first_sale(
    registry: Registry, fingerprint: bytes, buyer: Party, *, platform: str = "cardhub"
) -> None:
    """The creator's unpriced first-hand sale of the good to ``buyer`` (a reseller)."""
    registry.transfer(sale(fingerprint, CREATOR, buyer, platform=platform, price=None))


def opening(
    fingerprint: bytes,
    *,
    platform: str = "cardhub",
    seller: Party = CREATOR,
    buyer: str = "buyer-1",
    price: int = 1_000,
    key: str | None = None,
) -> OrderRequest:
    return OrderRequest(
        platform=platform,
        good_type=GoodType.CODE,
        fingerprint=fingerprint,
        seller=seller,
        buyer=Party(platform, buyer),
        price=price,
        currency="EUR",
        confirm_window=WINDOW,
        reservation_seconds=HOLD,
        idempotency_key=key,
    )


def open_and_deliver(
    registry: Registry, clock: Clock, code: bytes, **opening_changes: Any
) -> tuple[OrderView, Delivery]:
    """An order opened on cardhub for ``code`` and, 5 s later, the code delivered under the
    Idempotency-Key "d-1"; the opened order and the delivery."""
    order = registry.open_order(opening(code, **opening_changes))
    clock.advance(5)
    done = registry.deliver(order.order_id, [code], platform="cardhub", idempotency_key="d-1")
    return order, done


def snapshot(engine: Engine) -> dict[str, list[Any]]:
    """Every row of the orders' tables: 'changes nothing' means these are equal."""
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t)).all()]
            for t in (orders_t, changes_t, reservations_t)
        }


def racing_registries(db_url: str, registry: Registry, clock: Clock, n: int) -> list[Registry]:
    """``n`` registries on their own engines over ``registry``'s database, keys and clock."""
    found = [
        Registry(
            create_db_engine(db_url),
            domain=DEV_DOMAIN,
            account=registry.account,
            master_key=registry._master_key,
            clock=clock,
        )
        for _ in range(n)
    ]
    for racer in found:
        racer.latest_tree_head()  # connect now, so the race is not about connecting
    return found
