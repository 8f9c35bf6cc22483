"""The facts credit/v2 reads (``registry.creditfacts``), on real SQLite and PostgreSQL: an
order refunded after a dispute, sales and refusals, counted for the platform and the seller
by the SQL aggregates and by the fold over exported rows alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from registry import creditfacts
from registry.creator import CreatorKeys
from registry.creditfacts import fold, read_credit, read_facts, subject_inputs
from registry.db import create_db_engine, read_transaction
from registry.delivery import NotTheReservedGood
from registry.errors import NotFound
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.orders import Event, OrderRequest
from registry.service import Registry
from registry.transferrequests import DoubleSale, Party, TransferRequest
from registry.transfers import attempts_t
from tests.conftest import Clock
from tests.registry.helpers import registration

DAY = 86_400
CREATOR = Party(None, None)
RESELLER = Party("cardhub", "reseller-1")


def _code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    fingerprint = os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
        )
    )
    registry.sequence_all()
    return fingerprint


def _sale(fingerprint: bytes, seller: Party, buyer: Party) -> TransferRequest:
    return TransferRequest(
        platform="cardhub",
        good_type=GoodType.CODE,
        fingerprint=fingerprint,
        seller=seller,
        buyer=buyer,
        price=100,  # credit/v2 counts only priced sales (tests/registry/test_credit_wash.py)
        currency="EUR",
        final=False,
        idempotency_key=None,
        authorization=None,
    )


def test_a_refund_a_sale_and_a_double_sale_count_for_platform_and_seller(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    start = clock()
    sold, refunded = _code(registry, creator, clock), _code(registry, creator, clock)
    for code in (sold, refunded):
        registry.transfer(_sale(code, CREATOR, RESELLER))  # two first-hand sales to the reseller
    clock.advance(DAY)
    registry.transfer(_sale(sold, RESELLER, Party("cardhub", "buyer-1")))
    with pytest.raises(DoubleSale):
        registry.transfer(_sale(sold, RESELLER, Party("cardhub", "buyer-2")))
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=refunded,
            seller=RESELLER,
            buyer=Party("cardhub", "buyer-3"),
            price=1_000,
            currency="EUR",
            confirm_window=3_600,
            reservation_seconds=600,
            idempotency_key=None,
        )
    )
    registry.deliver_order(order.order_id, platform="cardhub")
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    registry.change_order(order.order_id, Event.REFUND, platform="cardhub")
    clock.advance(40 * DAY)
    now, seller = clock(), registry.reference_hash("cardhub", "reseller-1")

    with read_transaction(registry.engine) as conn:
        platform = subject_inputs(conn, "cardhub", as_of=now, overdue_after=30 * DAY)
        of_seller = subject_inputs(conn, "cardhub", seller, as_of=now, overdue_after=30 * DAY)
        folded = fold(read_facts(conn, as_of=now, overdue_after=30 * DAY), as_of=now)
        answer = read_credit(conn, "cardhub", seller, as_of=now, overdue_after=30 * DAY)
        # As of before the resale, the reseller had sold nothing yet.
        earlier = subject_inputs(conn, "cardhub", seller, as_of=start, overdue_after=30 * DAY)
    assert (platform.sales_completed, platform.disputes_lost, platform.bad_sale_attempts) == (
        3,
        1,
        1,
    )
    assert platform.days_active == (now - start) // DAY == 41
    assert (of_seller.sales_completed, of_seller.disputes_lost, of_seller.bad_sale_attempts) == (
        1,
        1,
        1,
    )
    assert of_seller.days_active == 40  # from its first sale, a day after the start
    assert folded[("platform", "cardhub", None)] == platform
    assert folded[("seller", "cardhub", seller)] == of_seller
    assert answer["rating"] == "unrated" and answer["score"] is None
    assert answer["seller"] == "0x" + seller.hex() and answer["formula"] == "credit/v2"
    assert earlier.sales_completed == 0 and earlier.days_active == 0


def test_a_fake_delivery_refused_is_kept_and_counted(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    code = _code(registry, creator, clock)
    registry.transfer(_sale(code, CREATOR, RESELLER))
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=code,
            seller=RESELLER,
            buyer=Party("cardhub", "buyer-9"),
            price=500,
            currency="EUR",
            confirm_window=3_600,
            reservation_seconds=600,
            idempotency_key=None,
        )
    )
    clock.advance(5)
    with pytest.raises(NotTheReservedGood):
        registry.deliver(order.order_id, [os.urandom(32)], platform="cardhub")
    # Another platform's try at the order is no delivery of its: not kept.
    with pytest.raises(NotFound):
        registry.deliver(order.order_id, [os.urandom(32)], platform="keyshop")
    # The refusal changed nothing of the order: the real good is still deliverable.
    registry.deliver(order.order_id, [code], platform="cardhub")
    seller = registry.reference_hash("cardhub", "reseller-1")
    with read_transaction(registry.engine) as conn:
        rows = conn.execute(
            select(attempts_t.c.reason, attempts_t.c.fingerprint, attempts_t.c.seller_ref)
        ).all()
        platform = subject_inputs(conn, "cardhub", as_of=clock(), overdue_after=30 * DAY)
        of_seller = subject_inputs(conn, "cardhub", seller, as_of=clock(), overdue_after=30 * DAY)
    assert [tuple(r) for r in rows] == [("not-the-reserved-good", code, seller)]
    assert platform.fake_deliveries_refused == of_seller.fake_deliveries_refused == 1


def test_a_subjects_facts_are_found_by_index_never_by_scanning_a_table(tmp_path: Path) -> None:
    """The credit routes are public: a platform's or a seller's lookup must search each fact
    table by an index (the seller party's, migration 0027; the platform's), never scan a whole
    table (a seller's lookup used to scan transfers, orders and the royalty ledger)."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    for sellers in (False, True):
        facts = creditfacts._facts_query(10**10, 30 * 86_400, sellers=sellers).subquery()
        f = facts.c
        where = (
            (f.seller_platform == "cardhub") & (f.seller_ref == b"\x01" * 32)
            if sellers
            else f.platform == "cardhub"
        )
        query = select(f.kind, func.count(), func.min(f.at)).where(where).group_by(f.kind)
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            plan = [str(row[3]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
        searched = [step for step in plan if step.startswith("SEARCH ")]
        scanned = [step for step in plan if step.startswith("SCAN ") and "anon" not in step]
        assert not scanned, (sellers, plan)
        tables = {"transfers", "orders", "transfer_attempts"}
        tables |= set() if sellers else {"royalty_lines"}
        assert {step.split()[1] for step in searched} >= tables, plan
    engine.dispose()
