"""A face value judges only the sales made while it was in force (migration 0034), on real
SQLite and PostgreSQL: through the registry's use case and the risk worker (incremental,
restarted, full recompute), a face value set after sales leaves them alone, a changed one
judges each sale by its own, a cleared one judges none after; a compliance report of a period
before the face value was set shows no ``below-face-value``; the history is append-only and the
migration counts today's face values from its own time."""

from __future__ import annotations

import secrets
import time

import pytest
from alembic import command
from eth_account import Account
from sqlalchemy import Engine, text, update
from sqlalchemy.exc import DBAPIError

from readmodels import signals as S
from readmodels.compliance import build_report
from readmodels.market import FaceSetting
from readmodels.marketreads import read_inputs
from readmodels.riskworker import RiskWorker
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN, address_bytes
from registry.facevalue import FaceValue, face_history, face_value_history_t, set_face_value
from registry.fingerprints import GoodType, Use
from registry.migrate import alembic_config, upgrade
from registry.registration import products_t
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.conftest import Clock
from tests.readmodels.test_launderrules_worker import _good, _standing
from tests.registry.helpers import registration

CODE = int(GoodType.CODE)
MIN, DAY = 60, 86_400
PRODUCT = "card-100"


class Shop:
    """Codes of one product: each sold first-hand to cardhub's ``a`` at 9,000, then resold by
    ``a`` to ``b`` at a price of the test's; the creator sets its face value with the clock."""

    def __init__(self, engine: Engine, creator: CreatorKeys, clock: Clock, codes: int) -> None:
        self.registry = Registry(
            engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=clock,
        )
        self.creator, self.clock = address_bytes(creator.account.address), clock
        self.codes = [secrets.token_bytes(32) for _ in range(codes)]
        for i, code in enumerate(self.codes):
            self.registry.register(
                registration(
                    creator, clock(), fingerprint=code, good_type=GoodType.CODE,
                    product=PRODUCT, use=Use.SINGLE, new_product=i == 0,
                )
            )  # fmt: skip
        self.registry.sequence_all()

    def resell(self, code: int, price: int) -> None:
        for seller, buyer, paid in ((None, "a", 9_000), ("a", "b", price)):
            self.clock.advance(MIN)
            self.registry.transfer(
                TransferRequest(
                    platform="cardhub", good_type=GoodType.CODE, fingerprint=self.codes[code],
                    seller=Party(None, None) if seller is None else Party("cardhub", seller),
                    buyer=Party("cardhub", buyer), price=paid, currency="CNY",
                )
            )  # fmt: skip

    def onward(self, code: int, price: int) -> None:
        """``b`` sells the code on to ``c``."""
        self.clock.advance(MIN)
        self.registry.transfer(
            TransferRequest(
                platform="cardhub", good_type=GoodType.CODE, fingerprint=self.codes[code],
                seller=Party("cardhub", "b"), buyer=Party("cardhub", "c"), price=price,
                currency="CNY",
            )
        )  # fmt: skip

    def face(self, value: int | None) -> None:
        self.clock.advance(MIN)
        face = None if value is None else FaceValue(value, "CNY")
        set_face_value(self.registry.engine, self.creator, PRODUCT, face, now=self.clock())


def _below(engine: Engine) -> dict[str, str]:
    """The standing ``below-face-value`` signals: each one's good and its detail."""
    return {
        str(doc["goods"][0]): str(doc["detail"])  # type: ignore[index]
        for doc in _standing(engine).get(S.BELOW_FACE_VALUE, [])
    }


def test_each_sale_is_judged_by_the_face_value_in_force_when_it_was_made(
    engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    shop = Shop(engine, creator, clock, 5)
    worker = RiskWorker(engine, clock=clock, refit_seconds=0)
    worker.run_once()
    shop.resell(0, 1_000)  # no face value yet
    worker.run_once()
    shop.face(10_000)
    clock.advance(MIN)
    worker.run_once()
    # Set after code 0's resale at a tenth of it: that sale stays unjudged.
    assert _below(engine) == {}
    # Code 0 sold on at a tenth after it: judged (the worker kept code 0's entry from before
    # the setting, and re-made it with the new history), that sale only.
    shop.onward(0, 1_000)
    worker.run_once()
    [only] = _standing(engine)[S.BELOW_FACE_VALUE]
    assert only["goods"] == [_good(shop.codes[0])]
    assert "resold 1 time(s)" in str(only["detail"])
    shop.resell(1, 4_000)  # below half of 10,000
    shop.face(2_000)  # lowered
    shop.resell(2, 4_000)  # fair against 2,000 (it would be below half of 10,000)
    worker.run_once()
    shop.face(100_000)  # raised a hundredfold: each earlier sale keeps its own
    shop.resell(3, 40_000)  # below half of 100,000
    worker.run_once()
    shop.face(None)  # cleared: later sales are not judged
    shop.resell(4, 1)
    clock.advance(MIN)
    worker.run_once()
    found = _below(engine)
    assert set(found) == {_good(shop.codes[i]) for i in (0, 1, 3)}
    assert "face value 10000 CNY: lowest 4000 (40%)" in found[_good(shop.codes[1])]
    assert "face value 100000 CNY: lowest 40000 (40%)" in found[_good(shop.codes[3])]
    # The history: every setting, with the registry's clock and the creator that made it.
    history = face_history(engine, shop.creator, PRODUCT)
    assert [None if h.face is None else h.face.value for h in history] == [
        10_000,
        2_000,
        100_000,
        None,
    ]
    assert all(h.set_by == shop.creator for h in history)
    assert [h.set_at for h in history] == sorted({h.set_at for h in history})
    # A worker started afresh (reading the history with the entries) and the full recompute
    # agree with the one that refreshed along.
    assert worker.state is not None
    restarted = RiskWorker(engine, clock=clock, refit_seconds=0)
    assert restarted.run_once().raised == 0
    assert restarted.state is not None
    assert restarted.state.all_signals() == worker.state.all_signals()
    full = RiskWorker(engine, clock=clock, full_recompute=True)
    full.run_once()
    assert full.index is not None and list(full.index.signals) == worker.state.all_signals()


def test_a_report_of_the_days_before_the_face_value_was_set_shows_no_below_face_value(
    engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    start = clock()
    shop = Shop(engine, creator, clock, 2)
    shop.resell(0, 1_000)  # day 0: a tenth of what the creator will say on day 1
    clock.advance(DAY)
    shop.face(10_000)
    clock.advance(DAY)
    shop.resell(1, 4_000)  # day 2: below half of it
    shop.registry.sequence_all()
    RiskWorker(engine, clock=clock).run_once()
    before = build_report(shop.registry, "cardhub", start=start, end=start + DAY)
    assert [s for s in before.signals if s.code == S.BELOW_FACE_VALUE] == []
    after = build_report(shop.registry, "cardhub", start=start + 2 * DAY, end=start + 3 * DAY)
    [below] = [s for s in after.signals if s.code == S.BELOW_FACE_VALUE]
    assert below.subject.id == _good(shop.codes[1])


def test_the_history_refuses_to_be_rewritten(
    engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    shop = Shop(engine, creator, clock, 1)
    shop.face(10_000)
    shop.face(20_000)
    c = face_value_history_t.c
    refused = [
        update(face_value_history_t).values(face_value=1),
        update(face_value_history_t).where(c.face_value == 20_000).values(set_at=0),
        face_value_history_t.delete().where(c.face_value == 20_000),
        face_value_history_t.delete(),
    ]
    copy_of = (
        "INSERT {} INTO face_value_history (id, product_id, face_value, face_currency, set_at, "
        "set_by) SELECT id, product_id, 1, face_currency, 0, set_by FROM face_value_history {}"
    )
    if engine.dialect.name == "postgresql":
        refused.append(text("TRUNCATE face_value_history"))
        refused.append(text(copy_of.format("", "ON CONFLICT (id) DO UPDATE SET set_at = 0")))
    else:  # REPLACE deletes the old row without firing delete triggers
        refused.append(text(copy_of.format("OR REPLACE", "")))
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    history = face_history(engine, shop.creator, PRODUCT)
    assert [h.face for h in history] == [FaceValue(10_000, "CNY"), FaceValue(20_000, "CNY")]


def test_the_migration_counts_todays_face_values_from_its_own_time(
    engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    shop = Shop(engine, creator, clock, 1)
    shop.resell(0, 1_000)
    # A face value the product had before migration 0034 (no history then).
    with engine.begin() as conn:
        conn.execute(
            update(products_t)
            .where(products_t.c.slug == PRODUCT)
            .values(face_value=10_000, face_currency="CNY")
        )
    command.downgrade(alembic_config(engine), "0033")
    first = int(time.time())
    upgrade(engine)
    last = int(time.time())
    [carried] = face_history(engine, shop.creator, PRODUCT)
    assert first <= carried.set_at <= last
    assert (carried.face, carried.set_by) == (FaceValue(10_000, "CNY"), None)
    inputs, _ = read_inputs(engine)
    entry = inputs.registrations[(CODE, shop.codes[0])]
    assert entry.faces == (FaceSetting(carried.set_at, 10_000, "CNY"),)
    # The resale was made before the migration (the test's clock is in 2026-09): not judged.
    RiskWorker(engine, clock=clock).run_once()
    assert _below(engine) == {}
