"""credit/v2 against the red team's wash trade (issue 18 item 1), through the registry on
real SQLite and PostgreSQL: a platform with refused double sales passing one good back and
forth between two of its own references, unpriced (what raised it from unrated to 695
under credit/v1), moves neither its score nor its inputs; priced round trips count the good
once per seller party; honest priced sales still raise the score the documented way."""

from __future__ import annotations

import os

import pytest

from registry.creator import CreatorKeys
from registry.credit import CreditInputs, credit_score
from registry.creditfacts import fold, read_credit, read_facts
from registry.db import read_transaction
from registry.fingerprints import GoodType
from registry.service import Registry
from registry.transferrequests import DoubleSale, Party, TransferRequest
from tests.conftest import Clock
from tests.registry.helpers import registration

DAY = 86_400
OVERDUE = 30 * DAY
CREATOR = Party(None, None)
RESELLER = Party("cardhub", "reseller-1")
WASH_A, WASH_B = Party("cardhub", "wash-a"), Party("cardhub", "wash-b")


def _good(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint))
    registry.sequence_all()
    return fingerprint


def _move(
    registry: Registry, fingerprint: bytes, seller: Party, buyer: Party, price: int | None
) -> None:
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.FILE,
            fingerprint=fingerprint,
            seller=seller,
            buyer=buyer,
            price=price,
            currency=None if price is None else "CNY",
            final=False,
            idempotency_key=None,
            authorization=None,
        )
    )


def _read(registry: Registry, now: int, seller: str | None = None) -> dict[str, object]:
    ref = None if seller is None else registry.reference_hash("cardhub", seller)
    with read_transaction(registry.engine) as conn:
        return read_credit(conn, "cardhub", ref, as_of=now, overdue_after=OVERDUE)


def _sales(document: dict[str, object]) -> int:
    inputs = document["inputs"]
    assert isinstance(inputs, dict)
    return int(inputs["sales_completed"])


def test_unpriced_wash_trades_between_own_references_do_not_move_the_score(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    # An honest history: 10 goods bought from their creator and resold, priced, to 10
    # buyers; 5 refused double sales; 40 days.
    goods = [_good(registry, creator, clock) for _ in range(10)]
    for number, good in enumerate(goods):
        _move(registry, good, CREATOR, RESELLER, 100)
        _move(registry, good, RESELLER, Party("cardhub", f"buyer-{number}"), 150)
    for good in goods[:5]:
        with pytest.raises(DoubleSale):
            _move(registry, good, RESELLER, Party("cardhub", "buyer-x"), 150)
    washed = _good(registry, creator, clock)
    _move(registry, washed, CREATOR, WASH_A, 100)  # bought honestly once
    clock.advance(40 * DAY)
    now = clock()
    before = _read(registry, now)
    assert _sales(before) == 21 and before["formula"] == "credit/v2"
    assert before["rating"] == "rated"

    # The attack: 300 unpriced transfers of the one file between two own references, with a
    # transfer to the seller's own reference and a priced-at-0 one among them.
    holder, other = WASH_A, WASH_B
    for _ in range(300):
        _move(registry, washed, holder, other, None)
        holder, other = other, holder
    _move(registry, washed, holder, holder, 100)
    _move(registry, washed, holder, other, 0)
    after = _read(registry, now)
    assert after == before  # score, rating and every input
    for seller in ("wash-a", "wash-b"):
        assert _sales(_read(registry, now, seller)) == 0

    # Priced round trips: the good counts once per seller party (here two), not 100 times.
    holder, other = other, holder
    for _ in range(100):
        _move(registry, washed, holder, other, 1)
        holder, other = other, holder
    priced = _read(registry, now)
    assert _sales(priced) == 21 + 2
    assert [_sales(_read(registry, now, s)) for s in ("wash-a", "wash-b")] == [1, 1]

    # The fold over the exported facts (what the recompute does) agrees with the SQL.
    with read_transaction(registry.engine) as conn:
        folded = fold(read_facts(conn, as_of=now, overdue_after=OVERDUE), as_of=now)
    assert folded[("platform", "cardhub", None)].sales_completed == 23


def test_honest_priced_sales_still_raise_the_score_the_documented_way(
    registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    """Each distinct good sold priced to another party is one sale: 16 resales of 16 goods
    by one reseller, plus their 16 first-hand sales, rate the platform at 32 sales."""
    goods = [_good(registry, creator, clock) for _ in range(16)]
    for number, good in enumerate(goods):
        _move(registry, good, CREATOR, RESELLER, 100)
        _move(registry, good, RESELLER, Party("othermart", f"buyer-{number}"), 150)
    clock.advance(40 * DAY)
    now = clock()
    platform, seller = _read(registry, now), _read(registry, now, "reseller-1")
    assert (_sales(platform), _sales(seller)) == (32, 16)
    # 500 + 30 * bit_length(32) + 200 * 40 // 365 = 500 + 180 + 21
    assert platform["score"] == 701
    expected = credit_score(CreditInputs(sales_completed=32, days_active=40)).score
    assert platform["score"] == expected
    # seller: 16 sales, 40 days: 500 + 30 * 5 + 21
    assert seller["score"] == 671
