"""Guaranteed-trade orders (issue 17, items 1 and 4): the reservation and the state machine,
on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import rfc8785
from sqlalchemy import Engine, select

from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN, checksum_address, digest
from registry.errors import IdempotencyKeyReused, InvalidInput
from registry.fingerprints import GoodType
from registry.handover import NotTheHolder
from registry.orders import (
    CHANGE_TYPE,
    TIMED_EVENTS,
    TRANSITIONS,
    Event,
    GoodReserved,
    InvalidTransition,
    OrderRequest,
    State,
    buyer_commitment,
    change_document,
    change_hash,
    next_state,
)
from registry.orderstore import OrderView
from registry.reservations import reservations_t
from registry.service import Registry
from registry.signatures import Signature, recover_signer
from registry.transferrequests import DoubleSale, Party, TransferRequest
from registry.transfers import attempts_t
from tests.conftest import Clock
from tests.registry.orderhelpers import (
    CREATOR,
    HOLD,
    WINDOW,
    first_sale,
    opening,
    racing_registries,
    register_code,
    snapshot,
)
from tests.registry.test_concurrency import race


@pytest.fixture
def code(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    """A registered single-use code, still held by its creator."""
    return register_code(registry, creator, clock)


def reserved_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(reservations_t)).all())


#: The events that bring a fresh order to each state (timeouts by the clock and the sweep).
PATHS: dict[State, list[Event | str]] = {
    State.RESERVED: [],
    State.DELIVERED: [Event.DELIVER],
    State.DISPUTED: [Event.DELIVER, Event.DISPUTE],
    State.CONFIRMED: [Event.DELIVER, Event.CONFIRM],
    State.AUTO_CONFIRMED: [Event.DELIVER, "wait"],
    State.RELEASED: [Event.DELIVER, Event.DISPUTE, Event.RELEASE],
    State.REFUNDED: [Event.DELIVER, Event.DISPUTE, Event.REFUND],
    State.EXPIRED: ["wait"],
    State.CANCELLED: [Event.CANCEL],
}


def order_in(registry: Registry, clock: Clock, fingerprint: bytes, state: State) -> OrderView:
    order = registry.open_order(opening(fingerprint))
    for step in PATHS[state]:
        if step == "wait":
            clock.advance(max(WINDOW, HOLD))
            assert registry.sweep_orders() == 1
            order = registry.order(order.order_id)
        else:
            assert isinstance(step, Event)
            order = registry.change_order(order.order_id, step, platform="cardhub")
    assert order.state is state
    return order


def test_the_table_covers_every_state_and_names_only_real_ones() -> None:
    reachable = {State.RESERVED} | set(TRANSITIONS.values())
    assert reachable == set(State)
    assert set(PATHS) == set(State)
    for (state, event), target in TRANSITIONS.items():
        assert next_state(state, event) is target


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_move_outside_the_table_is_refused_and_changes_nothing(
    registry: Registry, clock: Clock, code: bytes, state: State
) -> None:
    """Generated from the table: every (state, event) it lacks, and a timed event before its
    time, is InvalidTransition (409) and leaves every order row as it was."""
    order = order_in(registry, clock, code, state)
    refused = [e for e in Event if (state, e) not in TRANSITIONS or e in TIMED_EVENTS]
    assert refused, state
    for event in refused:
        before = snapshot(registry.engine)
        with pytest.raises(InvalidTransition) as raised:
            registry.change_order(order.order_id, event, platform="cardhub")
        assert raised.value.http_status == 409
        assert snapshot(registry.engine) == before, event
    assert registry.order(order.order_id).state is state


def test_an_opening_reserves_the_good_and_each_change_is_chained_and_signed(
    registry: Registry, code: bytes
) -> None:
    order = registry.open_order(opening(code))
    assert order.state is State.RESERVED and order.open
    assert reserved_rows(registry.engine) == 1
    order = registry.change_order(order.order_id, Event.DELIVER, platform="cardhub")
    order = registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")
    assert order.state is State.CONFIRMED and not order.open
    assert reserved_rows(registry.engine) == 0  # a final state frees the good
    assert [c.event for c in order.changes] == ["open", "deliver", "confirm"]

    previous = None
    for change in order.changes:
        document = change_document(
            order_id=order.order_id,
            sequence=change.sequence,
            event=change.event,
            from_state=None if change.from_state is None else State(change.from_state),
            to_state=State(change.to_state),
            actor=change.actor,
            at=change.at,
            previous=previous,
            good_type=int(GoodType.CODE),
            fingerprint=code,
        )
        assert change_hash(document) == change.change_hash
        message = {
            "orderId": order.order_id,
            "sequence": change.sequence,
            "changeHash": change.change_hash,
            "timestamp": change.at,
        }
        signed = digest(CHANGE_TYPE, message, DEV_DOMAIN)
        assert recover_signer(signed, Signature.parse(change.signature)) == registry.address
        assert checksum_address(change.signer) == registry.address
        assert change.actor == "platform:cardhub"
        previous = change.change_hash


def test_the_buyer_is_kept_only_as_a_keyed_hash_and_a_salted_commitment(
    registry: Registry, code: bytes
) -> None:
    order = registry.open_order(opening(code, buyer="alice@example.com"))
    rows = snapshot(registry.engine)
    assert b"alice@example.com" not in rfc8785.dumps(str(rows))
    assert "alice@example.com" not in str(rows)
    assert order.buyer_commitment == buyer_commitment(
        order.buyer_salt, "cardhub", "alice@example.com"
    )
    assert order.buyer_commitment != buyer_commitment(order.buyer_salt, "cardhub", "bob")


def test_an_expired_reservation_frees_the_good(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    first = registry.open_order(opening(code))
    with pytest.raises(GoodReserved):
        registry.open_order(opening(code, platform="keyshop"))
    clock.advance(HOLD - 1)
    with pytest.raises(GoodReserved):
        registry.open_order(opening(code, platform="keyshop"))
    clock.advance(1)
    # Lapsed: another platform's opening settles the first order and reserves the good.
    second = registry.open_order(opening(code, platform="keyshop"))
    assert second.state is State.RESERVED
    expired = registry.order(first.order_id)
    assert expired.state is State.EXPIRED
    assert expired.changes[-1].actor == "registry" and expired.changes[-1].event == "expire"
    assert reserved_rows(registry.engine) == 1


def test_the_sweep_settles_what_nobody_read(registry: Registry, clock: Clock, code: bytes) -> None:
    reserved = registry.open_order(opening(code))
    clock.advance(HOLD)
    assert registry.sweep_orders() == 1
    assert registry.sweep_orders() == 0
    assert registry.order(reserved.order_id).state is State.EXPIRED
    assert reserved_rows(registry.engine) == 0


def test_auto_confirm_after_the_window_then_no_dispute(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order = registry.open_order(opening(code))
    order = registry.deliver_order(order.order_id, platform="cardhub")
    assert order.confirm_deadline == order.delivered_at + WINDOW  # type: ignore[operator]
    clock.advance(WINDOW - 1)
    assert registry.order(order.order_id).state is State.DELIVERED
    clock.advance(1)
    before = snapshot(registry.engine)
    with pytest.raises(InvalidTransition) as raised:
        registry.change_order(order.order_id, Event.DISPUTE, platform="cardhub")
    assert raised.value.state is State.AUTO_CONFIRMED
    assert snapshot(registry.engine) == before
    # Read lazily: the read applies it and records who did.
    settled = registry.order(order.order_id)
    assert settled.state is State.AUTO_CONFIRMED
    assert settled.changes[-1].actor == "registry"
    assert reserved_rows(registry.engine) == 0


def test_a_disputed_order_holds_the_good_until_resolved(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order = order_in(registry, clock, code, State.DISPUTED)
    clock.advance(100 * WINDOW)
    assert registry.sweep_orders() == 0
    with pytest.raises(GoodReserved):
        registry.open_order(opening(code, platform="keyshop"))
    registry.change_order(order.order_id, Event.REFUND, platform="cardhub")
    assert registry.open_order(opening(code, platform="keyshop")).state is State.RESERVED


def test_a_reserved_good_is_not_sold_by_any_platform(registry: Registry, code: bytes) -> None:
    order = registry.open_order(opening(code))

    def sale(platform: str) -> TransferRequest:
        return TransferRequest(
            platform=platform,
            good_type=GoodType.CODE,
            fingerprint=code,
            seller=CREATOR,
            buyer=Party(platform, "someone"),
            price=500,
            currency="EUR",
        )

    for platform in ("keyshop", "cardhub"):
        with pytest.raises(GoodReserved):
            registry.transfer(sale(platform))
    with registry.engine.connect() as conn:
        reasons = conn.execute(select(attempts_t.c.reason)).scalars().all()
    assert reasons == ["reserved", "reserved"]
    registry.change_order(order.order_id, Event.CANCEL, platform="cardhub")
    assert registry.transfer(sale("keyshop")).platform == "keyshop"


def test_only_the_holders_platform_opens_an_order_for_its_good(
    registry: Registry, code: bytes
) -> None:
    first_sale(registry, code, Party("cardhub", "agent-7"))
    with pytest.raises(NotTheHolder):
        registry.open_order(opening(code, platform="keyshop", seller=Party("cardhub", "agent-7")))
    with pytest.raises(DoubleSale):
        registry.open_order(opening(code, platform="keyshop", seller=Party("keyshop", "agent-7")))
    with pytest.raises(DoubleSale):
        registry.open_order(opening(code, seller=Party("cardhub", "agent-8")))
    with pytest.raises(DoubleSale):
        registry.open_order(opening(code))  # the creator does not hold it any more
    assert reserved_rows(registry.engine) == 0
    order = registry.open_order(opening(code, seller=Party("cardhub", "agent-7")))
    assert order.seller_platform == "cardhub"


def test_another_platform_cannot_read_or_move_an_order(registry: Registry, code: bytes) -> None:
    from registry.errors import NotFound

    order = registry.open_order(opening(code))
    with pytest.raises(NotFound):
        registry.change_order(order.order_id, Event.CANCEL, platform="keyshop")
    assert registry.order(order.order_id).state is State.RESERVED


def test_an_opening_replays_under_its_key_and_refuses_a_reused_one(
    registry: Registry, code: bytes
) -> None:
    first = registry.open_order(opening(code, key="k-1"))
    again = registry.open_order(opening(code, key="k-1"))
    assert again.replayed and again.order_id == first.order_id
    with pytest.raises(IdempotencyKeyReused):
        registry.open_order(opening(code, key="k-1", price=999))


def test_terms_out_of_bounds_are_refused(code: bytes) -> None:
    good = {"platform": "cardhub", "good_type": GoodType.CODE, "fingerprint": code}
    for bad in (
        {"currency": "eur"},
        {"currency": "EURO"},
        {"price": -1},
        {"confirm_window": 59},
        {"reservation_seconds": 10**9},
        {"buyer": Party("keyshop", "b")},
    ):
        fields = {
            **good,
            "seller": CREATOR,
            "buyer": Party("cardhub", "b"),
            "price": 1,
            "currency": "EUR",
            **bad,
        }
        with pytest.raises(InvalidInput):
            OrderRequest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [2, 6])
def test_platforms_racing_to_reserve_one_good_have_exactly_one_winner(
    db_url: str, registry: Registry, clock: Clock, code: bytes, threads: int
) -> None:
    racers = racing_registries(db_url, registry, clock, threads)
    calls: list[Callable[[], object]] = [
        lambda r=racer, i=i: r.open_order(opening(code, platform=f"platform-{i}"))  # type: ignore[misc]
        for i, racer in enumerate(racers)
    ]
    results = race(calls)
    winners = [r for r in results if isinstance(r, OrderView)]
    assert len(winners) == 1, results
    assert all(isinstance(r, GoodReserved) for r in results if r not in winners), results
    rows = snapshot(registry.engine)
    assert len(rows["orders"]) == 1 and len(rows["order_reservations"]) == 1
    for racer in racers:
        racer.engine.dispose()


@pytest.mark.parametrize("same_key", [False, True], ids=["two-requests", "one-retried"])
def test_two_confirmations_race_one_wins(
    db_url: str, registry: Registry, clock: Clock, code: bytes, same_key: bool
) -> None:
    """Two confirmations at once: one confirms; the other is 409 invalid-transition, or, when
    it is a retry of the same request (same Idempotency-Key), the first one's answer."""
    order = order_in(registry, clock, code, State.DELIVERED)
    racers = racing_registries(db_url, registry, clock, 2)
    calls: list[Callable[[], object]] = [
        lambda r=racer, i=i: r.change_order(  # type: ignore[misc]
            order.order_id,
            Event.CONFIRM,
            platform="cardhub",
            idempotency_key="confirm-1" if same_key else f"confirm-{i}",
        )
        for i, racer in enumerate(racers)
    ]
    results = race(calls)
    confirmed = [r for r in results if isinstance(r, OrderView)]
    if same_key:
        assert len(confirmed) == 2, results
        assert sorted(r.replayed for r in confirmed) == [False, True]
    else:
        assert len(confirmed) == 1, results
        refused = [r for r in results if isinstance(r, InvalidTransition)]
        assert len(refused) == 1 and refused[0].state is State.CONFIRMED
    final = registry.order(order.order_id)
    assert [c.event for c in final.changes] == ["open", "deliver", "confirm"]
    for racer in racers:
        racer.engine.dispose()


def test_a_retried_change_replays_and_a_reused_key_is_refused(
    registry: Registry, clock: Clock, code: bytes
) -> None:
    order = order_in(registry, clock, code, State.DELIVERED)
    first = registry.change_order(
        order.order_id, Event.DISPUTE, platform="cardhub", idempotency_key="d"
    )
    again = registry.change_order(
        order.order_id, Event.DISPUTE, platform="cardhub", idempotency_key="d"
    )
    assert again.replayed and again.changes == first.changes
    with pytest.raises(IdempotencyKeyReused):
        registry.change_order(order.order_id, Event.REFUND, platform="cardhub", idempotency_key="d")


@pytest.mark.parametrize("rounds", [3])
def test_an_opening_racing_a_transfer_of_the_good_never_both_win(
    db_url: str,
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
    rounds: int,
) -> None:
    """A platform opens an order on a creator-held good while another reports its first-hand
    sale: either the order reserves it and the sale is refused (reserved), or the sale moves
    it and the order is refused (double-sale), never both."""
    racers = racing_registries(db_url, registry, clock, 2)
    for _ in range(rounds):
        fingerprint = register_code(registry, creator, clock)
        sale = TransferRequest(
            platform="keyshop",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=CREATOR,
            buyer=Party("keyshop", "someone"),
        )
        order_request = opening(fingerprint)
        results = race(
            [
                lambda o=order_request: racers[0].open_order(o),  # type: ignore[misc]
                lambda s=sale: racers[1].transfer(s),  # type: ignore[misc]
            ]
        )
        order, transfer = results
        if isinstance(order, OrderView):
            assert isinstance(transfer, GoodReserved), results
        else:
            assert isinstance(order, DoubleSale), results
            assert not isinstance(transfer, Exception), results
    for racer in racers:
        racer.engine.dispose()
