"""The current holder's credit in verify answers (issue 18 item 1), on SQLite and PostgreSQL.

A verify answer reads the holder's scores as the risk worker last wrote them
(``registry.creditscores``), never an aggregate per request: between two refreshes the answer
stays put while the live credit route moves; after one it equals the live route, and its
inputs recompute its number."""

from __future__ import annotations

import secrets
from pathlib import Path

from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from bench.scenario import SMALL, run_scenario
from readmodels.riskworker import RiskWorker
from registry.credit import CreditInputs, credit_score
from registry.creditscores import CreditRefresh, credit_sellers_t, refresh_credit_scores
from registry.db import create_db_engine, read_transaction
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.holding import holdings_t
from registry.models import Entry
from registry.service import Registry
from tests.conftest import Clock
from verifier.client import TracemarkClient
from verifier.schemas.credit import CreditOut

DAY = 86_400


def _recomputed(score: CreditOut) -> int | None:
    return credit_score(CreditInputs(**score.inputs.model_dump())).score


def test_a_verify_answer_carries_the_holders_credit_as_last_refreshed(
    db_url: str, tmp_path: Path
) -> None:
    run = run_scenario(SMALL, 402, workdir=tmp_path, db_url=db_url)
    clock = Clock(run.now + DAY)
    registry = Registry(
        create_db_engine(db_url),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    overdue_after = registry.payout_overdue_seconds
    first = refresh_credit_scores(registry.engine, as_of=clock(), overdue_after=overdue_after)
    assert first.subjects == first.written > 10
    h, s, e = holdings_t.c, credit_sellers_t.c, Entry.__table__.c  # type: ignore[attr-defined]
    with read_transaction(registry.engine) as conn:
        # A good whose holder has sold before (it has a seller's score) ...
        held = conn.execute(
            select(h.good_type, h.fingerprint, h.holder_platform, h.holder_ref)
            .join(
                credit_sellers_t, (s.platform == h.holder_platform) & (s.seller_ref == h.holder_ref)
            )
            .where(h.consumed.is_(False))
            .limit(1)
        ).one()
        # ... and one its creator still holds.
        unsold = conn.execute(
            select(e.good_type, e.fingerprint)
            .where(e.kind == 1, e.fingerprint.not_in(select(h.fingerprint)))
            .limit(1)
        ).one()
    good_type, fingerprint = GoodType(held.good_type), bytes(held.fingerprint)
    seller = "0x" + bytes(held.holder_ref).hex()

    app = create_app(registry, siwe_domain="testserver", telemetry_interval=0.05)
    with TestClient(app) as http, TracemarkClient("http://testserver", http_client=http) as api:
        answer = api.verify(good_type, fingerprint=fingerprint).credit
        assert answer is not None and answer.platform is not None and answer.seller is not None
        # The holder's very scores, as the live routes read them at the refresh's time.
        assert answer.platform == api.platform_credit(held.holder_platform)
        assert answer.seller == api.seller_credit(held.holder_platform, seller)
        assert answer.seller.subject == "seller" and answer.seller.seller == seller
        assert answer.platform_url == f"/v1/credit/platforms/{held.holder_platform}"
        assert answer.seller_url == f"{answer.platform_url}/sellers/{seller}"
        assert answer.refreshed_every == 60
        # Anyone recomputes the numbers from the inputs the answer carries.
        for score in (answer.platform, answer.seller):
            assert score.formula == "credit/v2" and _recomputed(score) == score.score
        # The auditor's table: every platform's kept score, equal to the live route's.
        listed = api.platform_credits()
        assert listed.refreshed_every == 60 and len(listed.items) >= 3
        assert [c.platform for c in listed.items] == sorted(c.platform for c in listed.items)
        for kept in listed.items:
            assert kept == api.platform_credit(kept.platform)
        # The creator holds the other good: no holder's credit.
        assert (
            api.verify(GoodType(unsold.good_type), fingerprint=bytes(unsold.fingerprint)).credit
            is None
        )

        # A year later the live route has moved (days active, overdue royalties); the answer
        # has not: it is read, not computed, until the next refresh.
        clock.advance(365 * DAY)
        live = api.platform_credit(held.holder_platform)
        assert live.inputs != answer.platform.inputs
        assert api.verify(good_type, fingerprint=fingerprint).credit == answer
        # The risk worker's next pass (its own clock, every minute at most) catches up.
        worker = RiskWorker(
            registry.engine,
            clock=clock,
            credit=CreditRefresh(registry.engine, overdue_after=overdue_after),
        )
        worker.run_once()
        assert worker.credit is not None and worker.credit.last == clock()
        again = api.verify(good_type, fingerprint=fingerprint).credit
        assert again is not None and again.platform == live
        assert again.seller == api.seller_credit(held.holder_platform, seller)
        # A pass with nothing changed rewrites nothing (an unchanged score keeps its as_of).
        same = refresh_credit_scores(registry.engine, as_of=clock(), overdue_after=overdue_after)
        assert same.subjects == first.subjects and same.written == same.deleted == 0
        # Within the minute no pass runs at all.
        assert worker.credit.maybe_refresh(clock() + 59) is None
    registry.engine.dispose()
