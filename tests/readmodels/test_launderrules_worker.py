"""The laundering red flags through the real database and the risk worker, on SQLite and
PostgreSQL: a market written through the registry (a product's face value, registrations,
transfers, verifications), refreshed incrementally (each refresh reads only the new rows);
every rule's pattern raises its signal, its near miss does not, and a worker started afresh
and the full recompute agree with the incremental one."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from eth_account import Account
from sqlalchemy import Engine, select

from readmodels import signals as S
from readmodels.launderrules import party_subject
from readmodels.riskworker import RiskWorker, risk_signals_t
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN, address_bytes
from registry.facevalue import FaceValue, set_face_value
from registry.fingerprints import GoodType, Use
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock
from tests.registry.helpers import registration

CODE = int(GoodType.CODE)
MIN = 60
#: The defaults, but fan-in and verify-per-purchase at a size a test market reaches.
TH = S.Thresholds(fan_in_min_sources=3, verify_min_events=4, verify_min_per_purchase=2.0)


@pytest.fixture
def market(engine: Engine, clock: Clock) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def _standing(engine: Engine) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(risk_signals_t.c.code, risk_signals_t.c.document)):
            found.setdefault(row.code, []).append(json.loads(row.document))
    return found


def _good(fingerprint: bytes) -> str:
    return f"code:0x{fingerprint.hex()}"


def test_each_red_flag_is_raised_through_the_worker_and_its_near_miss_is_not(
    market: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    codes = [os.urandom(32) for _ in range(14)]
    for i, code in enumerate(codes):
        market.register(
            registration(
                creator, clock(), fingerprint=code, good_type=GoodType.CODE, product="card-100",
                use=Use.SINGLE, new_product=i == 0,
            )
        )  # fmt: skip
    market.sequence_all()  # the leaves' time: the registrations' for fast-cash-out
    set_face_value(
        engine,
        address_bytes(creator.account.address),
        "card-100",
        FaceValue(10_000, "CNY"),
        now=clock(),
    )
    worker = RiskWorker(engine, clock=clock, thresholds=TH, refit_seconds=0)
    worker.run_once()

    def sell(
        code: int,
        seller: tuple[str, str] | None,
        buyer: tuple[str, str],
        price: int,
        *,
        final: bool = False,
        reporter: str | None = None,
    ) -> None:
        clock.advance(MIN)
        market.transfer(
            TransferRequest(
                platform=reporter or (buyer[0] if seller is None else seller[0]),
                good_type=GoodType.CODE, fingerprint=codes[code],
                seller=Party(None, None) if seller is None else Party(*seller),
                buyer=Party(*buyer), price=price, currency="CNY", final=final,
            )
        )  # fmt: skip

    a, b, end = ("cardhub", "a"), ("cardhub", "b"), ("cardhub", "end")
    # fast-cash-out: registered, resold and consumed within minutes ...
    sell(0, None, a, 9_000)
    sell(0, a, b, 9_500)
    sell(0, b, end, 9_800, final=True)
    worker.run_once()  # a refresh between: the rules see the rest as new rows
    # below-face-value: resold at 40 % of the face value; its near miss at 60 %.
    sell(1, None, a, 9_000)
    sell(1, a, b, 4_000)
    sell(2, None, a, 9_000)
    sell(2, a, b, 6_000)
    # round-trip: back to a at another price; its near miss a refund (same price, straight back).
    sell(3, None, a, 9_000)
    sell(3, a, b, 9_000)
    sell(3, b, a, 8_000)
    sell(4, None, a, 9_000)
    sell(4, a, b, 9_000)
    sell(4, b, a, 9_000)
    # redeemed-elsewhere: bought on gamemart, consumed by a recycler on cashpoint below the
    # price paid; near miss: consumed on gamemart itself.
    sell(5, None, ("gamemart", "u"), 9_000)
    sell(5, ("gamemart", "u"), ("cashpoint", "v"), 8_000, final=True)
    sell(6, None, ("gamemart", "u"), 9_000)
    sell(6, ("gamemart", "u"), ("gamemart", "w"), 9_000, final=True)
    # fan-in: three mules buy first-hand and sell to one boss; near miss: two sell to another.
    for i, code in enumerate((7, 8, 9)):
        sell(code, None, (f"site{i}", "mule"), 9_000)
        sell(code, (f"site{i}", "mule"), ("cardhub", "boss"), 9_000)
    for i, code in enumerate((10, 11)):
        sell(code, None, (f"site{i}", "mule2"), 9_000)
        sell(code, (f"site{i}", "mule2"), ("cardhub", "boss2"), 9_000)
    # buyer-daily-amount: one card above 1,000 yuan; its near miss exactly 1,000 yuan.
    sell(12, None, ("keyshop", "whale"), 100_001)
    sell(13, None, ("keyshop", "edge"), 100_000)
    # verify-per-purchase: code 12 (one transfer) verified four times; code 13 three times.
    market.record_verifications(
        [Telemetry(clock(), "keyshop", CODE, codes[12], "code", "authentic")] * 4
        + [Telemetry(clock(), "keyshop", CODE, codes[13], "code", "authentic")] * 3
    )
    # fast-cash-out's near miss: the same flow, consumed 40 minutes after registration.
    clock.advance(40 * MIN)
    sell(2, b, end, 6_000, final=True)
    worker.run_once()

    found = _standing(engine)

    def goods(code: str) -> set[str]:
        return {g for doc in found.get(code, []) for g in doc["goods"]}  # type: ignore[attr-defined]

    assert goods(S.FAST_CASH_OUT) == {_good(codes[0])}
    assert goods(S.BELOW_FACE_VALUE) == {_good(codes[1])}
    assert goods(S.ROUND_TRIP) == {_good(codes[3])}
    assert goods(S.REDEEMED_ELSEWHERE) == {_good(codes[5])}
    assert goods(S.VERIFY_PER_PURCHASE) == {_good(codes[12])}
    [fan] = found[S.FAN_IN]
    assert fan["subject"] == {
        "kind": "party",
        "id": party_subject(("cardhub", market.reference_hash("cardhub", "boss"))).id,
    }
    assert set(fan["goods"]) == {_good(codes[i]) for i in (7, 8, 9)}  # type: ignore[arg-type]
    [whale] = found[S.BUYER_DAILY_AMOUNT]
    assert whale["goods"] == [_good(codes[12])]
    assert "above 100000 CNY" in str(whale["detail"])

    # A worker started afresh (reading the whole look-back at once) and the full recompute
    # agree with the one that refreshed along.
    assert worker.state is not None
    restarted = RiskWorker(engine, clock=clock, thresholds=TH, refit_seconds=0)
    report = restarted.run_once()
    assert restarted.state is not None and report.raised == 0
    assert restarted.state.all_signals() == worker.state.all_signals()
    full = RiskWorker(engine, clock=clock, thresholds=TH, full_recompute=True)
    full.run_once()
    assert full.index is not None
    assert list(full.index.signals) == worker.state.all_signals()
