"""Payouts of an order's own lines (issue 17 items 4 and 7), through the real settlement on
SQLite and PostgreSQL: held lines cannot be paid, due ones can, reversed ones never; overdue
counts from when the sale stood. And a Hypothesis property of the ledger: whatever payouts
are tried, each line is paid at most once and the balances add up."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.balances import DAY, BalanceScope
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN, address_bytes
from registry.errors import InvalidInput
from registry.migrate import upgrade
from registry.orders import Event
from registry.payouts import LineAlreadyPaid, LineNotPayable, PayoutRequest
from registry.service import Registry
from tests.conftest import START, Clock
from tests.registry.test_payouts import add_line, pay
from tests.registry.test_settlement import RECIPIENTS, ROYALTIES, code, delivered, lines

__all__ = ["code"]  # the fixture, imported for its name


def pay_line(registry: Registry, line: object, *, key: str | None = None) -> PayoutRequest:
    return PayoutRequest(
        platform="cardhub",
        kind="royalty",
        recipient=bytes(line.recipient),  # type: ignore[attr-defined]
        payee=None,
        amount=int(line.amount),  # type: ignore[attr-defined]
        currency="EUR",
        reference=f"SEPA-{line.id}",  # type: ignore[attr-defined]
        paid_at=registry.clock(),
        line_ids=(int(line.id),),  # type: ignore[attr-defined]
        idempotency_key=key,
    )


def test_an_orders_lines_are_paid_once_its_sale_stands(
    registry: Registry, code: bytes, clock: Clock
) -> None:
    order = delivered(registry, code)
    held = lines(registry.engine, order.order_id)
    assert [line.status for line in held] == ["held", "held"]
    with pytest.raises(LineNotPayable, match="is held"):
        registry.record_payout(pay_line(registry, held[0]))
    assert registry.owed_lines("cardhub") == []

    clock.advance(60)
    registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")
    due = lines(registry.engine, order.order_id)
    assert [(line.status, int(line.amount)) for line in due] == [
        ("due", ROYALTIES[0]),
        ("due", ROYALTIES[1]),
    ]
    assert {line.line_id for line in registry.owed_lines("cardhub")} >= {d.id for d in due}
    settled = clock()

    clock.now = settled + 30 * DAY - 1
    scope = BalanceScope(platform="cardhub", kind="royalty")
    before = registry.balances(scope, since=settled, until=clock() + 1, period="all")
    assert sum(b.owed for b in before.lines) == sum(ROYALTIES)
    assert sum(b.overdue for b in before.lines) == 0
    clock.advance(1)  # 30 days after the sale stood, not after the delivery
    late = registry.balances(scope, since=settled, until=clock() + 1, period="all")
    assert sum(b.overdue for b in late.lines) == sum(ROYALTIES)

    for line in due:
        registry.record_payout(pay_line(registry, line, key=f"k{line.id}"))
    with pytest.raises(LineAlreadyPaid):
        registry.record_payout(pay_line(registry, due[0]))
    after = registry.balances(scope, since=settled, until=clock() + 1, period="all")
    assert {(b.payee, b.paid, b.owed, b.overdue) for b in after.lines} == {
        (RECIPIENTS[0], ROYALTIES[0], 0, 0),
        (RECIPIENTS[1], ROYALTIES[1], 0, 0),
    }


def test_a_refunded_orders_lines_are_never_paid(registry: Registry, code: bytes) -> None:
    order = delivered(registry, code)
    registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    registry.change_order(order.order_id, Event.REFUND, platform="cardhub")
    reversed_ = lines(registry.engine, order.order_id)
    assert [line.status for line in reversed_] == ["reversed", "reversed"]
    for line in reversed_:
        with pytest.raises(LineNotPayable, match="is reversed"):
            registry.record_payout(pay_line(registry, line))


# -- the ledger's property ---------------------------------------------------------------------

ALICE = address_bytes(Account.create().address)
BOB = address_bytes(Account.create().address)
LINE = st.tuples(
    st.sampled_from(["due", "due", "due", "held", "reversed"]),
    st.sampled_from(["shop", "market"]),
    st.sampled_from([ALICE, BOB]),
    st.sampled_from(["EUR", "USD"]),
    st.integers(1, 2**70),
    st.integers(0, 90),  # days after START the line became due
)
ATTEMPT = st.tuples(
    st.lists(st.integers(0, 11), min_size=1, max_size=4, unique=True),
    st.sampled_from(["shop", "market"]),
    st.sampled_from([ALICE, BOB]),
    st.sampled_from(["EUR", "USD"]),
    st.integers(-2, 2),  # off the lines' sum by this much
)


_TEMPLATE: list[Path] = []


def _migrated() -> Path:
    """An empty database migrated to head, made once for the run."""
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp()) / "template.db"
        engine = create_db_engine(f"sqlite:///{path.as_posix()}")
        upgrade(engine)
        engine.dispose()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(LINE, min_size=1, max_size=12), st.lists(ATTEMPT, max_size=10))
def test_whatever_is_tried_each_line_is_paid_once_and_balances_add_up(
    specs: list[tuple[str, str, bytes, str, int, int]],
    attempts: list[tuple[list[int], str, bytes, str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as home:
        database = Path(home) / "r.db"
        shutil.copyfile(_migrated(), database)  # migrating each example's database is slow
        engine = create_db_engine(f"sqlite:///{database.as_posix()}")
        clock = Clock(START + 60 * DAY)
        registry = Registry(
            engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=clock,
        )
        ids = [
            add_line(
                engine,
                status=status,
                platform=platform,
                recipient=recipient,
                currency=currency,
                amount=amount,
                created_at=START + days * DAY,
            )
            for status, platform, recipient, currency, amount, days in specs
        ]
        by_id = dict(zip(ids, specs, strict=True))
        paid: dict[int, int] = {}  # line -> its payout's amount share
        payouts_total = 0
        for picks, platform, recipient, currency, off in attempts:
            chosen = [ids[i] for i in picks if i < len(ids)]
            if not chosen:
                continue
            total = sum(by_id[line][4] for line in chosen)
            request = pay(
                chosen, total + off, platform=platform, recipient=recipient, currency=currency
            )
            fits = (
                off == 0
                and total + off > 0
                and all(
                    by_id[line][:4] == ("due", platform, recipient, currency) for line in chosen
                )
                and not any(line in paid for line in chosen)
            )
            try:
                registry.record_payout(request)
            except (InvalidInput, LineNotPayable, LineAlreadyPaid):
                assert not fits, (request, by_id)
                continue
            assert fits, (request, by_id)  # accepted only what fits, exactly
            payouts_total += total
            paid.update((line, by_id[line][4]) for line in chosen)
        assert sum(paid.values()) == payouts_total
        for platform in ("shop", "market"):
            found = registry.balances(
                BalanceScope(platform=platform), since=0, until=2**62, period="all"
            )
            due = [(line, spec) for line, spec in by_id.items() if spec[:2] == ("due", platform)]
            assert sum(b.paid for b in found.lines) == sum(paid.get(line, 0) for line, _ in due)
            assert sum(b.owed for b in found.lines) == sum(
                spec[4] for line, spec in due if line not in paid
            )
            overdue = sum(
                spec[4]
                for line, spec in due
                if line not in paid and START + spec[5] * DAY <= clock() - 30 * DAY
            )
            assert sum(b.overdue for b in found.lines) == overdue
            assert all(b.overdue <= b.owed for b in found.lines)
            owed_ids = {line.line_id for line in registry.owed_lines(platform, limit=100)}
            assert owed_ids == {line for line, _ in due if line not in paid}
        engine.dispose()
