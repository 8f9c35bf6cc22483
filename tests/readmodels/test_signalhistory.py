"""The signal history (``readmodels.signalhistory``, migration 0032) on real SQLite and
PostgreSQL: a signal whose evidence aged out of the risk worker's look-back is still in the
compliance report of its period, with its evidence, and verifies offline; a report of a later
period leaves it out; a changed signal is a new version, the old one kept with the evidence it
had; a refresh writes the history of what changed only; the table refuses any rewrite."""

from __future__ import annotations

import copy
import json
import secrets
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.exc import DBAPIError

from readmodels.compliance import build_report
from readmodels.riskindex import LOOKBACK
from readmodels.riskworker import RiskWorker, risk_signals_t
from readmodels.signalhistory import signal_history_t
from readmodels.signals import PAYOUT_OVERDUE, SOLD_BY_NON_HOLDER, Evidence, Signal, Subject
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry
from tests.conftest import Clock
from tests.readmodels.test_compliance import Market, _check, _market, _signed_by
from verifier.errors import BundleInvalid

DAY = 86_400


@pytest.fixture
def market(engine: Engine, creator: CreatorKeys, clock: Clock) -> Market:
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    return _market(registry, creator, clock)


def _history(engine: Engine) -> list[Any]:
    c = signal_history_t.c
    with engine.connect() as conn:
        return list(conn.execute(select(signal_history_t).order_by(c.signal_id, c.version)))


def _write(market: Market, signals: list[Signal], now: int) -> None:
    """Signals no scenario raises, written beside the rules' own as the worker writes them."""
    worker = market.worker
    assert worker.state is not None
    worker.write_all(worker.state.goods, [*worker.state.all_signals(), *signals], now, now)


def test_a_signal_aged_out_of_the_look_back_stays_in_its_periods_report(
    market: Market, clock: Clock
) -> None:
    registry, engine = market.registry, market.registry.engine
    period = {"start": market.start, "end": market.start + DAY}
    before = build_report(registry, "cardhub", **period)
    [double] = [s for s in before.signals if s.code == SOLD_BY_NON_HOLDER]
    assert double.stopped_at is None and double.raised_at == market.start + 120
    # The records leave the 30-day look-back: the worker no longer stands by the signal.
    later = market.start + LOOKBACK + 2 * DAY
    clock.now = later
    market.worker.clock = lambda: later
    market.worker.run_once()
    with engine.connect() as conn:
        standing = set(conn.execute(select(risk_signals_t.c.signal_id)).scalars())
    assert double.signal_id not in standing
    [row] = [r for r in _history(engine) if r.signal_id == double.signal_id]
    assert (row.ended_at, row.ended_by, row.version) == (later, "stopped", 1)
    assert row.seen_at == market.start + 120  # the last refresh it stood at

    clock.advance(60)
    after = build_report(registry, "cardhub", **period)
    [kept] = [s for s in after.signals if s.signal_id == double.signal_id]
    # The same signal with the same evidence (the logged sale cited with its proof)...
    assert kept.model_dump(exclude={"stopped_at"}) == double.model_dump(exclude={"stopped_at"})
    assert [e.entry["price"] for e in kept.evidence if e.entry is not None] == ["1000"]
    # ...that says it had stopped standing by the report's time.
    assert kept.stopped_at == later
    document = json.loads(after.to_json())
    check = _check(registry, document)
    assert check.summary_document["facts"]["stopped"] == len(after.signals) >= 1
    assert "stopped standing" in check.summary_document["en"][-1]
    assert check.summary_document["zh"][-1].startswith(f"其中 {len(after.signals)} 条")
    # A later period (its evidence long past, the signal gone): not in it.
    late = build_report(registry, "cardhub", start=later - DAY, end=later)
    assert all(s.signal_id != double.signal_id for s in late.signals)


def _stop_then_hide(d: dict[str, Any]) -> None:
    """The registry hiding that a signal had stopped standing."""
    d["signals"][0]["stopped_at"] = None


def _stopped_before_raised(d: dict[str, Any]) -> None:
    d["signals"][0]["stopped_at"] = d["signals"][0]["raised_at"] - 1


def test_a_stopped_signals_times_cannot_be_doctored(market: Market, clock: Clock) -> None:
    later = market.start + LOOKBACK + 2 * DAY
    clock.now = later
    market.worker.clock = lambda: later
    market.worker.run_once()
    report = build_report(market.registry, "cardhub", start=market.start, end=market.start + DAY)
    document = json.loads(report.to_json())
    assert document["signals"][0]["stopped_at"] == later
    for tamper, step, resigned_step in (
        (_stop_then_hide, "signature", "summary"),
        (_stopped_before_raised, "signature", "signals"),
    ):
        doctored = copy.deepcopy(document)
        tamper(doctored)
        with pytest.raises(BundleInvalid) as refused:
            _check(market.registry, doctored)
        assert refused.value.step == step, tamper.__name__
        with pytest.raises(BundleInvalid) as refused:
            _check(market.registry, _signed_by(market.registry, doctored))
        assert refused.value.step == resigned_step, tamper.__name__


def test_a_changed_signal_is_a_new_version_and_each_period_gets_its_own(
    market: Market, clock: Clock
) -> None:
    """cardhub has an unpaid line on day 0, replaced by another on
    day 1 (the first paid), then none; later a new spell. Each version keeps its evidence."""
    registry, engine, t0 = market.registry, market.registry.engine, market.start + 200
    subject = Subject("platform", "cardhub")

    def overdue(at: int) -> Signal:
        return Signal(
            PAYOUT_OVERDUE, f"line due {at}", (Evidence("line", f"l{at}", at, "x"),), subject
        )

    _write(market, [overdue(t0)], t0 + 10)
    _write(market, [overdue(t0 + DAY)], t0 + DAY + 10)
    # A restarted worker: it finds the open version in the table, and closes it.
    worker = RiskWorker(engine, clock=lambda: t0 + 2 * DAY)
    worker.run_once()
    rows = [r for r in _history(engine) if r.code == PAYOUT_OVERDUE]
    assert [(r.version, r.raised_at, r.since_at, r.ended_at, r.ended_by) for r in rows] == [
        (1, t0 + 10, t0 + 10, t0 + DAY + 10, "changed"),
        (2, t0 + 10, t0 + DAY + 10, t0 + 2 * DAY, "stopped"),
    ]
    assert rows[0].seen_at == t0 + 10  # the heartbeat before the change
    market.worker = worker
    _write(market, [overdue(t0 + 3 * DAY)], t0 + 3 * DAY + 10)
    rows = [r for r in _history(engine) if r.code == PAYOUT_OVERDUE]
    assert [(r.version, r.raised_at, r.ended_at) for r in rows][2] == (3, t0 + 3 * DAY + 10, None)

    clock.now = t0 + 4 * DAY

    def listed(day: int) -> list[Any]:
        start = market.start + day * DAY
        report = build_report(registry, "cardhub", start=start, end=start + DAY - 1)
        return [s for s in report.signals if s.code == PAYOUT_OVERDUE]

    [first] = listed(0)
    assert [e.ref for e in first.evidence] == [f"l{t0}"]  # version 1, as it stood
    assert (first.raised_at, first.stopped_at) == (t0 + 10, t0 + 2 * DAY)
    [second] = listed(1)
    assert [e.ref for e in second.evidence] == [f"l{t0 + DAY}"]
    assert listed(2) == []
    [third] = listed(3)
    assert (third.raised_at, third.stopped_at) == (t0 + 3 * DAY + 10, None)


def test_an_undated_signal_is_in_the_periods_it_stood_in(market: Market, clock: Clock) -> None:
    t0 = market.start + 200
    undated = Signal(
        PAYOUT_OVERDUE,
        "unpaid",
        (Evidence("line", "l1", None, "x"),),
        Subject("platform", "cardhub"),
    )
    _write(market, [undated], t0 + DAY)
    _write(market, [], t0 + 3 * DAY)
    clock.now = t0 + 5 * DAY

    def listed(start: int, end: int) -> bool:
        report = build_report(market.registry, "cardhub", start=start, end=end)
        return any(s.code == PAYOUT_OVERDUE for s in report.signals)

    assert not listed(t0, t0 + DAY - 1)  # before it was raised
    assert listed(t0 + 2 * DAY, t0 + 2 * DAY + 60)
    assert not listed(t0 + 3 * DAY + 1, t0 + 4 * DAY)  # after it stopped


def test_a_refresh_writes_the_history_of_what_changed_only(market: Market) -> None:
    """The incremental engine's promise (issue 16 item 4): no statement on the history when
    no signal changed, whatever stands; one insert and one close for one changed signal."""
    engine, worker = market.registry.engine, market.worker
    standing = [Signal(PAYOUT_OVERDUE, "x", (), Subject("platform", f"p{i}")) for i in range(50)]
    now = market.start + 300
    _write(market, standing, now)
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "signal_history" in statement:
            statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        _write(market, standing, now + 5)
        assert statements == []
        changed = [*standing[:-1], Signal(PAYOUT_OVERDUE, "y", (), standing[-1].subject)]
        _write(market, changed, now + 10)
        assert statements == ["UPDATE", "INSERT"]  # the close, the append
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert worker.history._open is not None and len(worker.history._open) >= 50


def test_the_history_refuses_to_be_rewritten(market: Market) -> None:
    engine = market.registry.engine
    [row] = [r for r in _history(engine) if r.code == SOLD_BY_NON_HOLDER][:1]
    c = signal_history_t.c
    refused = [
        update(signal_history_t).where(c.id == row.id).values(document="{}"),
        update(signal_history_t).where(c.id == row.id).values(raised_at=0),
        update(signal_history_t).where(c.id == row.id).values(ended_at=None),
        signal_history_t.delete().where(c.id == row.id),
        signal_history_t.delete(),
    ]
    copy_of = (
        "INSERT {} INTO signal_history SELECT id, signal_id, version, code, subject_kind, "
        "subject_id, platforms, '{{}}', raised_at, since_at, seen_at, ended_at, ended_by "
        "FROM signal_history WHERE id = :id {}"
    )
    if engine.dialect.name == "postgresql":
        refused.append(text("TRUNCATE signal_history"))
        update_it = "ON CONFLICT (id) DO UPDATE SET document = excluded.document"
        refused.append(text(copy_of.format("", update_it)).bindparams(id=row.id))
    else:  # REPLACE deletes the old row without firing delete triggers
        refused.append(text(copy_of.format("OR REPLACE", "")).bindparams(id=row.id))
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    # Its closing is the one update it takes, once.
    close = update(signal_history_t).where(c.id == row.id)
    with engine.begin() as conn:
        conn.execute(close.values(ended_at=row.since_at + 1, ended_by="stopped"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(close.values(ended_at=row.since_at + 2))
    assert len(_history(engine)) >= 1
