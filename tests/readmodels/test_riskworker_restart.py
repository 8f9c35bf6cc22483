"""The risk worker on the incremental engine, on SQLite and PostgreSQL: a worker started
afresh (the state rebuilt from the look-back in the database) converges to the state of one
that refreshed all along, and writes nothing; a refresh writes only the goods that changed."""

from __future__ import annotations

import os
import random
import secrets

import pytest
from eth_account import Account
from sqlalchemy import Engine, select

from readmodels.riskworker import RiskWorker, risk_goods_t, risk_signals_t
from readmodels.signals import Thresholds
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock
from tests.registry.helpers import registration

CODE = int(GoodType.CODE)
TH = Thresholds(probe_min_failures=5, code_min_platforms=2, offer_min_platforms=2)


@pytest.fixture
def market(engine: Engine, clock: Clock) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def _tables(engine: Engine) -> tuple[dict[bytes, tuple[float, str]], dict[str, str]]:
    with engine.connect() as conn:
        goods = {
            bytes(r.fingerprint): (float(r.score), r.signals)
            for r in conn.execute(select(risk_goods_t))
        }
        signals = {
            r.signal_id: r.document
            for r in conn.execute(select(risk_signals_t.c.signal_id, risk_signals_t.c.document))
        }
    return goods, signals


def test_a_restarted_worker_converges_and_a_refresh_writes_only_what_changed(
    market: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    rng = random.Random(7)
    codes = [os.urandom(32) for _ in range(12)]
    for i, code in enumerate(codes):
        market.register(
            registration(
                creator, clock(), fingerprint=code, good_type=GoodType.CODE, product="card",
                use=Use.SINGLE, new_product=i == 0,
            )
        )  # fmt: skip
    market.sequence_all()
    running = RiskWorker(engine, clock=clock, thresholds=TH, refit_seconds=0)
    platforms = ["gamemart", "keyshop", "shadowkeys", "cardhub"]
    for round_ in range(6):
        events = [
            Telemetry(clock() - rng.randrange(30), rng.choice(platforms), CODE,
                      rng.choice(codes), "code", "authentic")
            for _ in range(8)
        ]  # fmt: skip
        events += [
            Telemetry(clock(), "rogue", CODE, os.urandom(32), "code", "unknown") for _ in range(3)
        ]
        market.record_verifications(events)
        if round_ % 2 == 0:
            buyer = Party(rng.choice(platforms), f"u{round_}")
            market.transfer(
                TransferRequest(
                    platform=buyer.platform or "cardhub", good_type=GoodType.CODE,
                    fingerprint=codes[round_], seller=Party(None, None), buyer=buyer,
                    price=1_000, currency="EUR", final=False,
                )
            )  # fmt: skip
        running.run_once()
        clock.advance(rng.choice((60, 900, 3_600)))
    running.run_once()
    assert running.state is not None
    written = _tables(engine)
    assert written[1] and written[0], "the stream raised signals and risky goods"

    restarted = RiskWorker(engine, clock=clock, thresholds=TH, refit_seconds=0)
    report = restarted.run_once()
    assert restarted.state is not None
    assert (report.raised, report.goods_written, report.goods_deleted) == (0, 0, 0)
    assert restarted.state.goods == running.state.goods
    assert restarted.state.all_signals() == running.state.all_signals()
    assert restarted.state.platforms == running.state.platforms
    assert _tables(engine) == written

    # Between refits, one new verification rewrites at most its own good.
    steady = RiskWorker(engine, clock=clock, thresholds=TH)
    steady.run_once()
    clock.advance(10)
    market.record_verifications(
        [Telemetry(clock(), "gamemart", CODE, codes[-1], "code", "authentic")]
    )
    report = steady.run_once()
    assert report.goods_written + report.goods_deleted <= 1
