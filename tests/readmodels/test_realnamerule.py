"""The ``unattested-seller`` rule (issue 18 item 4) on SQLite and PostgreSQL: sales above a
currency's limit by a seller not attested at the required level raise it, with the sales as
evidence, through the risk worker's incremental engine and its full recompute alike; the
near misses (at the limit, attested in time, another currency, out of the window) do not."""

from __future__ import annotations

import dataclasses
import json
import secrets

import pytest
from eth_account import Account
from sqlalchemy import Engine, select

from readmodels.realnamerule import RealNameRule, level_at, read_histories, rule_of
from readmodels.riskworker import RiskWorker, risk_signals_t
from readmodels.signals import UNATTESTED_SELLER
from registry.attestations import Level
from registry.creator import CreatorKeys
from registry.db import read_transaction
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.orders import Event
from registry.service import Registry
from registry.transferrequests import Party, TransferRequest
from tests.conftest import Clock
from tests.platformkeys import signed_attest
from tests.registry.orderhelpers import first_sale, opening, register_code

DAY = 86_400
SELLER = Party("cardhub", "seller-1")
RULE = RealNameRule(min_level=Level.ID_CARD, limits={"CNY": 100_000}, window=30 * DAY)


@pytest.fixture
def registry(engine: Engine, clock: Clock) -> Registry:
    """On the parametrised database (this package's conftest gives a SQLite one)."""
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def _resell(
    registry: Registry, creator: CreatorKeys, clock: Clock, price: int, currency: str = "CNY"
) -> None:
    """A code bought first-hand by the seller, then sold by it to a buyer for ``price``."""
    code = register_code(registry, creator, clock)
    first_sale(registry, code, SELLER)
    clock.advance(1)
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=code,
            seller=SELLER,
            buyer=Party("cardhub", f"buyer-{price}-{clock()}"),
            price=price,
            currency=currency,
        )
    )


def _raised(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        c = risk_signals_t.c
        documents = conn.execute(select(c.document).where(c.code == UNATTESTED_SELLER)).scalars()
        return [json.loads(d) for d in documents]


def test_yuan_sold_under_another_spelling_counts_as_yuan(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    # The red team's dodge: yuan reported as RMB or CNH escaped a CNY limit.
    worker = RiskWorker(engine, clock=clock, payout_overdue_every=0, realname=RULE)
    _resell(registry, creator, clock, 60_000, currency="RMB")
    _resell(registry, creator, clock, 40_001, currency="CNH")
    worker.run_once()
    [signal] = _raised(engine)
    assert "100001 CNY (limit 100000)" in str(signal["detail"])
    assert len(signal["evidence"]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize("full_recompute", [False, True], ids=["incremental", "full"])
def test_sales_above_the_limit_without_an_attestation_raise_it(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock, full_recompute: bool
) -> None:
    worker = RiskWorker(
        engine, clock=clock, full_recompute=full_recompute, payout_overdue_every=0, realname=RULE
    )
    _resell(registry, creator, clock, 60_000)
    _resell(registry, creator, clock, 40_000)  # exactly the limit: a near miss
    _resell(registry, creator, clock, 500, currency="USD")  # no USD limit in RULE
    worker.run_once()
    assert _raised(engine) == []

    # A phone-level attestation is below id-card: the next sale takes it over the limit.
    signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.PHONE)
    _resell(registry, creator, clock, 1)
    worker.run_once()
    [signal] = _raised(engine)
    seller = registry.reference_hash("cardhub", "seller-1").hex()
    assert signal["subject"] == {"kind": "party", "id": f"cardhub/0x{seller}"}
    assert signal["platforms"] == ["cardhub"]
    assert "100001 CNY (limit 100000)" in str(signal["detail"])
    assert "its level now: phone" in str(signal["detail"])
    assert len(signal["evidence"]) == 3  # type: ignore[arg-type]  # the CNY sales only
    assert "seller-1" not in json.dumps(signal)  # the reference never appears

    # Attested at id-card now: the earlier sales still count (their level was lower)...
    clock.advance(1)
    signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.ID_CARD)
    _resell(registry, creator, clock, 99_999)  # ... the new sale does not add to them
    worker.run_once()
    [signal] = _raised(engine)
    assert "100001 CNY" in str(signal["detail"]) and "its level now: id-card" in str(
        signal["detail"]
    )
    # ... until they leave the window.
    clock.advance(30 * DAY)
    worker.run_once()
    assert _raised(engine) == []


def test_attested_in_time_or_by_its_own_platform_only(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    worker = RiskWorker(engine, clock=clock, payout_overdue_every=0, realname=RULE)
    # Another platform attesting the same reference attests another seller: it does not count.
    signed_attest(registry, platform="keyshop", reference="seller-1", level=Level.FACE)
    signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.FACE)
    clock.advance(1)
    _resell(registry, creator, clock, 150_000)
    worker.run_once()
    assert _raised(engine) == []
    # Withdrawn (attested "none"): from then on its sales count again.
    signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.NONE)
    clock.advance(1)
    _resell(registry, creator, clock, 100_001)
    worker.run_once()
    [signal] = _raised(engine)
    assert len(signal["evidence"]) == 1  # type: ignore[arg-type]
    with read_transaction(engine) as conn:
        history = read_histories(conn)[("cardhub", registry.reference_hash("cardhub", "seller-1"))]
    assert [level_at(history, leaf) for leaf in (0, history[0][0], 10**6)] == [
        Level.NONE,
        Level.FACE,
        Level.NONE,
    ]


def test_the_settings_text_makes_the_rule() -> None:
    rule = rule_of("face", "CNY=100000,EUR=5")
    assert (rule.min_level, dict(rule.limits)) == (Level.FACE, {"CNY": 100_000, "EUR": 5})
    assert dict(rule_of("none", "").limits) == {}
    for bad in ("cny=1", "CNY=", "CNY=1;USD=2"):
        with pytest.raises(ValueError):
            rule_of("id-card", bad)
    with pytest.raises(InvalidInput):
        rule_of("passport", "CNY=1")


def test_an_order_counts_from_delivery_and_once(
    registry: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    """A seller's delivered order counts at its DELIVERY (the buyer paid); once confirmed its
    settling TRANSFER counts instead, not both; a refunded order does not count."""
    worker = RiskWorker(engine, clock=clock, payout_overdue_every=0, realname=RULE)
    code = register_code(registry, creator, clock)
    first_sale(registry, code, SELLER)
    order = registry.open_order(
        dataclasses.replace(opening(code, seller=SELLER, price=100_001), currency="CNY")
    )
    worker.run_once()
    assert _raised(engine) == []  # reserved, not delivered: nothing paid yet
    clock.advance(5)
    registry.deliver(order.order_id, [code], platform="cardhub")
    worker.run_once()
    [signal] = _raised(engine)
    assert [e["ref"] for e in signal["evidence"]] == [f"order {order.order_id}"]  # type: ignore[union-attr]
    registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")
    worker.run_once()
    [signal] = _raised(engine)
    assert "100001 CNY" in str(signal["detail"])  # counted once
    assert [e["ref"].split()[0] for e in signal["evidence"]] == ["transfer"]  # type: ignore[union-attr]

    # Another order, refunded after a dispute: it stops counting.
    code = register_code(registry, creator, clock)
    first_sale(registry, code, SELLER)
    other = registry.open_order(
        dataclasses.replace(opening(code, seller=SELLER, price=7, buyer="b2"), currency="CNY")
    )
    registry.deliver(other.order_id, [code], platform="cardhub")
    worker.run_once()
    assert "100008 CNY" in str(_raised(engine)[0]["detail"])
    registry.change_order(other.order_id, Event.DISPUTE, platform="cardhub")
    worker.run_once()
    assert "100008 CNY" in str(_raised(engine)[0]["detail"])  # disputed: still paid
    registry.change_order(other.order_id, Event.REFUND, platform="cardhub")
    worker.run_once()
    assert "100001 CNY" in str(_raised(engine)[0]["detail"])
