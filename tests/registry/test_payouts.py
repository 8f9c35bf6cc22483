"""Payouts against the ledger (issue 17 item 7), on SQLite and PostgreSQL: a payout clears its
lines, every refusal changes nothing, racing payouts of one line pay it once, balances and the
overdue signal."""

from __future__ import annotations

import csv
import io
import secrets
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from readmodels.riskworker import RiskWorker, risk_signals_t
from readmodels.signals import PAYOUT_OVERDUE
from registry.balances import DAY, BalanceScope
from registry.db import create_db_engine, write_transaction
from registry.errors import IdempotencyKeyReused, InvalidInput
from registry.payouts import (
    LineAlreadyPaid,
    LineNotPayable,
    PayoutRefused,
    PayoutRequest,
    payout_lines_t,
    payouts_t,
)
from registry.records import checksum
from registry.service import Registry
from registry.transfers import royalty_lines_t
from tests.conftest import START, Clock

ALICE = bytes.fromhex("a1" * 20)
BOB = bytes.fromhex("b0" * 20)
CREATOR = bytes.fromhex("c0" * 20)
AGENT = "shop:" + "ab" * 32


def add_line(
    engine: Engine,
    *,
    platform: str = "shop",
    kind: str = "royalty",
    recipient: bytes | None = ALICE,
    payee: str | None = None,
    amount: int = 100,
    currency: str = "EUR",
    status: str = "due",
    created_at: int = START,
    settled_at: int | None = None,
    creator: bytes = CREATOR,
) -> int:
    """A ledger line written directly, as settlement (or a plain transfer) leaves one."""
    if kind == "rebate":
        recipient, payee = None, payee or AGENT
    with write_transaction(engine) as conn:
        return int(
            conn.execute(
                royalty_lines_t.insert()
                .values(
                    creator=creator,
                    recipient=recipient,
                    bps=500,
                    amount=str(amount),
                    currency=currency,
                    platform=platform,
                    good_type=2,
                    fingerprint=secrets.token_bytes(32),
                    created_at=created_at,
                    status=status,
                    kind=kind,
                    payee=payee,
                    level=1 if kind == "rebate" else None,
                    settled_at=settled_at,
                )
                .returning(royalty_lines_t.c.id)
            ).scalar_one()
        )


def pay(
    lines: list[int],
    amount: int,
    *,
    platform: str = "shop",
    recipient: bytes | None = ALICE,
    payee: str | None = None,
    kind: str = "royalty",
    currency: str = "EUR",
    key: str | None = None,
    reference: str = "bank-tx-1",
) -> PayoutRequest:
    return PayoutRequest(
        platform=platform,
        kind=kind,  # type: ignore[arg-type]
        recipient=recipient if kind == "royalty" else None,
        payee=payee if kind == "rebate" else None,
        amount=amount,
        currency=currency,
        reference=reference,
        paid_at=START,
        line_ids=tuple(lines),
        idempotency_key=key,
    )


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Every row a payout could write or change."""
    with engine.connect() as conn:
        return (
            conn.execute(select(payouts_t).order_by(payouts_t.c.id)).all(),
            conn.execute(select(payout_lines_t).order_by(payout_lines_t.c.line_id)).all(),
            conn.execute(select(royalty_lines_t).order_by(royalty_lines_t.c.id)).all(),
        )


def test_a_payout_clears_its_lines(registry: Registry, engine: Engine) -> None:
    first = add_line(engine, amount=120)
    second = add_line(engine, amount=80, settled_at=START + 5)
    other = add_line(engine, amount=7, recipient=BOB)
    owed = registry.owed_lines("shop", recipient=ALICE)
    assert [line.line_id for line in owed] == [first, second]
    payout = registry.record_payout(pay([first, second], 200, key="k1"))
    assert payout.line_ids == (first, second) and payout.amount == 200
    assert payout.as_dict()["recipient"] == checksum(ALICE) and not payout.replayed
    assert [line.line_id for line in registry.owed_lines("shop")] == [other]
    assert registry.payout(payout.payout_id, platform="shop") == payout
    balance = registry.balances(
        BalanceScope(platform="shop"), since=0, until=START + DAY, period="all"
    )
    by_payee = {line.payee: line for line in balance.lines}
    assert by_payee[checksum(ALICE)].paid == 200 and by_payee[checksum(ALICE)].owed == 0
    assert by_payee[checksum(BOB)].owed == 7 and by_payee[checksum(BOB)].paid == 0
    assert balance.totals() == [
        {"platform": "shop", "currency": "EUR", "owed": "7", "paid": "200", "overdue": "0"}
    ]


def test_a_retry_replays_and_a_reused_key_is_refused(registry: Registry, engine: Engine) -> None:
    line = add_line(engine)
    first = registry.record_payout(pay([line], 100, key="k1"))
    again = registry.record_payout(pay([line], 100, key="k1"))
    assert again.replayed and again.payout_id == first.payout_id
    before = snapshot(engine)
    with pytest.raises(IdempotencyKeyReused):
        registry.record_payout(pay([line], 100, key="k1", reference="another"))
    assert snapshot(engine) == before


def test_a_line_is_paid_once(registry: Registry, engine: Engine) -> None:
    line = add_line(engine)
    other = add_line(engine)
    registry.record_payout(pay([line], 100))
    before = snapshot(engine)
    with pytest.raises(LineAlreadyPaid, match=f"line {line} was already paid"):
        registry.record_payout(pay([other, line], 200))
    assert snapshot(engine) == before


def test_a_wrong_total_is_refused_and_nothing_written(registry: Registry, engine: Engine) -> None:
    lines = [add_line(engine, amount=100), add_line(engine, amount=55)]
    before = snapshot(engine)
    for amount in (154, 156, 100):
        with pytest.raises(PayoutRefused, match="add up to 155 EUR"):
            registry.record_payout(pay(lines, amount))
        assert snapshot(engine) == before
    assert registry.record_payout(pay(lines, 155)).amount == 155


def test_another_platforms_line_is_refused_as_unknown(registry: Registry, engine: Engine) -> None:
    theirs = add_line(engine, platform="market")
    mine = add_line(engine)
    before = snapshot(engine)
    with pytest.raises(PayoutRefused) as foreign:
        registry.record_payout(pay([mine, theirs], 200))
    with pytest.raises(PayoutRefused) as unknown:
        registry.record_payout(pay([mine, theirs + 1000], 200))
    # The same answer for another platform's line as for none: no probing of others' ledgers.
    assert str(foreign.value).replace(str(theirs), "N") == str(unknown.value).replace(
        str(theirs + 1000), "N"
    )
    assert snapshot(engine) == before


@pytest.mark.parametrize("status", ["held", "reversed"])
def test_held_or_reversed_lines_are_refused(
    registry: Registry, engine: Engine, status: str
) -> None:
    line = add_line(engine, status=status)
    due = add_line(engine)
    before = snapshot(engine)
    with pytest.raises(LineNotPayable, match=f"is {status}"):
        registry.record_payout(pay([due, line], 200))
    assert snapshot(engine) == before
    assert [owed.line_id for owed in registry.owed_lines("shop")] == [due]


def test_the_payee_kind_and_currency_must_match(registry: Registry, engine: Engine) -> None:
    alice = add_line(engine)
    usd = add_line(engine, currency="USD")
    rebate = add_line(engine, kind="rebate")
    before = snapshot(engine)
    refusals = [
        pay([alice], 100, recipient=BOB),
        pay([usd], 100),
        pay([rebate], 100),
        pay([alice], 100, kind="rebate", payee=AGENT),
        pay([rebate], 100, kind="rebate", payee="shop:" + "cd" * 32),
    ]
    for request in refusals:
        with pytest.raises(PayoutRefused):
            registry.record_payout(request)
    assert snapshot(engine) == before
    paid = registry.record_payout(pay([rebate], 100, kind="rebate", payee=AGENT))
    assert paid.payee == AGENT and paid.recipient is None


@pytest.mark.parametrize(
    "change",
    [
        {"line_ids": ()},
        {"line_ids": (1, 1)},
        {"amount": 0},
        {"currency": "eur"},
        {"reference": ""},
        {"reference": "a\nb"},
        {"paid_at": START + 3600},
        {"recipient": None},
    ],
)
def test_malformed_payouts_are_refused(registry: Registry, engine: Engine, change: dict) -> None:
    line = add_line(engine)
    request = pay([line], 100)
    with pytest.raises(InvalidInput):
        registry.record_payout(PayoutRequest(**{**request.__dict__, **change}))
    assert snapshot(engine)[0] == []


def race_payouts(registry: Registry, db_url: str, requests: list[PayoutRequest]) -> list[object]:
    """Each request from a thread with an engine of its own, released together."""
    engines = [create_db_engine(db_url) for _ in requests]
    barrier = threading.Barrier(len(requests))
    outcomes: list[object] = [None] * len(requests)

    def race(i: int) -> None:
        racer = Registry(
            engines[i],
            domain=registry.domain,
            account=registry.account,
            master_key=secrets.token_bytes(32),
            clock=registry.clock,
        )
        barrier.wait()
        try:
            outcomes[i] = racer.record_payout(requests[i])
        except LineAlreadyPaid as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for racer_engine in engines:
        racer_engine.dispose()
    return outcomes


def test_racing_payouts_of_one_line_pay_it_once(
    registry: Registry, engine: Engine, db_url: str
) -> None:
    """Threads on engines of their own, released together, each paying the same line (with
    another line of its own): exactly one payout is recorded, the others are 409."""
    for round_ in range(3):
        shared = add_line(engine)
        own = [add_line(engine) for _ in range(4)]
        requests = [pay([line, shared], 200, key=f"r{round_}-{i}") for i, line in enumerate(own)]
        outcomes = race_payouts(registry, db_url, requests)
        won = [o for o in outcomes if not isinstance(o, LineAlreadyPaid)]
        assert len(won) == 1, outcomes
        with engine.connect() as conn:
            paid = conn.execute(
                select(func.count()).where(payout_lines_t.c.line_id == shared)
            ).scalar()
            rows = conn.execute(
                select(func.count()).where(payout_lines_t.c.line_id.in_([*own, shared]))
            ).scalar()
        assert paid == 1 and rows == 2  # the winner's two lines, nothing of the losers'


def test_overdue_after_the_age_and_the_signal_is_raised(
    registry: Registry, engine: Engine, clock: Clock
) -> None:
    raised: list[str] = []
    worker = RiskWorker(
        engine,
        clock=clock,
        publish=lambda conn, signals, now: raised.extend(s.code for s in signals),
        payout_overdue_seconds=30 * DAY,
        payout_overdue_every=0,  # the ledger read every refresh: exact to the second
    )
    line = add_line(engine, amount=300, settled_at=START)
    add_line(engine, platform="market", amount=5, settled_at=START + 10 * DAY)
    add_line(engine, status="held", amount=999)
    scope = BalanceScope(platform="shop")

    def overdue_signals() -> list[Any]:
        with engine.connect() as conn:
            c = risk_signals_t.c
            return conn.execute(
                select(c.subject_kind, c.subject_id, c.document).where(c.code == PAYOUT_OVERDUE)
            ).all()

    clock.now = START + 30 * DAY - 1
    balance = registry.balances(scope, since=0, until=clock.now, period="month")
    assert [(b.owed, b.overdue) for b in balance.lines] == [(300, 0)]
    worker.run_once()
    assert overdue_signals() == [] and raised == []

    clock.now = START + 30 * DAY
    balance = registry.balances(scope, since=0, until=clock.now, period="month")
    assert [(b.owed, b.overdue, b.lines_overdue) for b in balance.lines] == [(300, 300, 1)]
    worker.run_once()
    [signal] = overdue_signals()
    assert signal.subject_kind == "platform" and signal.subject_id == "shop"
    assert "300 EUR" in signal.document and f"line {line}" in signal.document
    assert raised == [PAYOUT_OVERDUE]
    worker.run_once()  # standing: not raised again
    assert raised == [PAYOUT_OVERDUE]

    # A restarted worker compares with the table: nothing raised twice.
    RiskWorker(engine, clock=clock, payout_overdue_seconds=30 * DAY).run_once()
    assert len(overdue_signals()) == 1

    registry.record_payout(pay([line], 300))
    worker.run_once()
    assert overdue_signals() == []

    clock.now = START + 40 * DAY  # the market's line is overdue now: about market only
    worker.run_once()
    assert [s.subject_id for s in overdue_signals()] == ["market"]


def test_the_full_recompute_raises_it_too(engine: Engine, clock: Clock) -> None:
    add_line(engine, settled_at=START)
    clock.now = START + 31 * DAY
    worker = RiskWorker(engine, clock=clock, full_recompute=True, payout_overdue_seconds=30 * DAY)
    worker.run_once()
    worker.run_once()
    with engine.connect() as conn:
        codes = conn.execute(select(risk_signals_t.c.code)).scalars().all()
    assert codes == [PAYOUT_OVERDUE]


def test_balances_csv_and_scopes(registry: Registry, engine: Engine, clock: Clock) -> None:
    paid = add_line(engine, amount=10, created_at=START)
    add_line(engine, amount=20, created_at=START + 40 * DAY)
    add_line(engine, kind="rebate", amount=3, created_at=START)
    add_line(engine, kind="rebate", platform="market", amount=4, created_at=START)
    add_line(engine, amount=50, creator=bytes.fromhex("dd" * 20))
    registry.record_payout(pay([paid], 10))
    clock.now = START + 41 * DAY
    creator = registry.balances(
        BalanceScope(creator=CREATOR), since=0, until=clock.now, period="month"
    )
    assert [(b.period, b.kind, b.owed, b.paid) for b in creator.lines] == [
        ("2026-09", "royalty", 0, 10),
        ("2026-10", "royalty", 20, 0),
    ]
    agents = registry.balances(
        BalanceScope(agents_of="shop"), since=0, until=clock.now, period="all"
    )
    assert sorted((b.platform, b.payee, b.owed, b.overdue) for b in agents.lines) == [
        ("market", AGENT, 4, 4),
        ("shop", AGENT, 3, 3),
    ]
    rows = list(csv.reader(io.StringIO("".join(creator.csv_rows()))))
    assert rows[0] == [
        "period",
        "platform",
        "kind",
        "payee",
        "currency",
        "owed",
        "paid",
        "overdue",
        "lines_owed",
        "lines_paid",
        "lines_overdue",
        "oldest_owed_at",
    ]
    assert rows[1:] == [
        ["2026-09", "shop", "royalty", checksum(ALICE), "EUR", "0", "10", "0", "0", "1", "0", ""],
        [
            "2026-10",
            "shop",
            "royalty",
            checksum(ALICE),
            "EUR",
            "20",
            "0",
            "0",
            "1",
            "0",
            "0",
            str(START + 40 * DAY),
        ],
    ]


def test_the_worker_reads_the_ledger_again_when_paid_or_a_minute_passed(
    registry: Registry, engine: Engine, clock: Clock
) -> None:
    """Between reads a line may become overdue up to a minute late; a payout is seen at the
    next refresh."""
    worker = RiskWorker(engine, clock=clock, payout_overdue_seconds=30 * DAY)
    first = add_line(engine, settled_at=START)
    second = add_line(engine, amount=1, settled_at=START + 10)

    def documents() -> list[str]:
        with engine.connect() as conn:
            c = risk_signals_t.c
            return list(conn.execute(select(c.document).where(c.code == PAYOUT_OVERDUE)).scalars())

    clock.now = START + 30 * DAY
    worker.run_once()
    [document] = documents()
    assert f"line {first}" in document and f"line {second}" not in document
    clock.advance(10)  # the second line is overdue now, but the ledger is not read again yet
    worker.run_once()
    assert f"line {second}" not in documents()[0]
    clock.advance(60)
    worker.run_once()
    assert f"line {second}" in documents()[0]
    registry.record_payout(pay([first], 100))
    worker.run_once()  # the same second: the payout makes it read again
    [document] = documents()
    assert f"line {first}" not in document and f"line {second}" in document
