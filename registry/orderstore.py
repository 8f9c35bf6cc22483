"""Orders in the database: opening one (with its reservation), moving it, settling timeouts.

The rules are ``registry.orders`` (the state table) and ``registry.reservations`` (the good's
reservation); this module applies them in the caller's transaction:

- **opening** takes the log's lock (as a transfer does: the holder it checks cannot move
  before the order and its reservation are written), checks the good (registered, not
  revoked, not consumed), that the seller holds it and is on the opening platform (else 403
  ``not-the-holder`` before any reference is compared, as transfers), settles a lapsed
  reservation of the good, and inserts the order and the reservation row under the good's
  primary key: of two racing openings exactly one inserts it, the other is 409 ``reserved``;
- **a change** locks the order's row (``FOR UPDATE`` on PostgreSQL; SQLite's write
  transaction holds the one write lock), replays a retried change (same Idempotency-Key),
  applies a timeout that is due first, takes the next state from the table, and writes it by
  a conditional UPDATE on (state, sequence) plus a change row UNIQUE on (order, sequence):
  a lost race can never record two changes as one;
- **timeouts** (expire, auto_confirm) are applied by the registry to an order past its time,
  lazily by whoever meets it (a read, a change, an opening on the same good) and by
  the sweep (``registry.ordersweep``, one order a transaction through ``settle_order``); a
  reservation past its time is ignored by every reader before that.

Each change is a JSON document hashed with the previous change's hash (a chain per order) and
signed by the registry's key (EIP-712 ``OrderStateChange``): recording one is
``registry.orderchanges``. Reading orders is ``registry.orderviews`` (re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from registry import log
from registry.distribution import check_first_sale
from registry.errors import IdempotencyKeyReused, NotFound
from registry.fingerprints import fingerprint_hex
from registry.handover import NotTheHolder
from registry.holding import check_seller, current_holding
from registry.idempotentwrites import earlier_write
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.orderchanges import ChangeSigner, record_change
from registry.orders import (
    OPEN_STATES,
    OPENED,
    TIMED_EVENTS,
    Event,
    GoodReserved,
    InvalidTransition,
    OrderRequest,
    State,
    buyer_commitment,
    next_state,
)
from registry.orderviews import (
    OrderChangeView,
    OrderView,
    changes_t,
    due_event,
    load_order,
    order_ids,
    order_row,
    orders_t,
)
from registry.parties import ReferenceKeys
from registry.reservations import lapsed, reservation_of, reservations_t
from registry.transferrequests import GoodConsumed, GoodRevoked, TransferRequest

#: Who a timeout is applied by.
REGISTRY_ACTOR = "registry"


def platform_actor(platform: str) -> str:
    return f"platform:{platform}"


# -- opening ----------------------------------------------------------------------------------


def _registered_creator(conn: Connection, good_type: int, fingerprint: bytes, good: str) -> bytes:
    """The good's creator; ``NotFound`` if unregistered, ``GoodRevoked`` if revoked."""
    c = entries_t.c
    kinds = conn.execute(
        select(c.kind, c.actor).where(
            c.good_type == good_type,
            c.fingerprint == fingerprint,
            c.kind.in_((int(EntryKind.REGISTER), int(EntryKind.REVOKE))),
        )
    ).all()
    creator = next((bytes(r.actor) for r in kinds if r.kind == int(EntryKind.REGISTER)), None)
    if creator is None:
        raise NotFound(f"no {good} is registered")
    if any(r.kind == int(EntryKind.REVOKE) for r in kinds):
        raise GoodRevoked(f"{good} was revoked by its creator; it may not be sold")
    return creator


def _check_seller(
    conn: Connection, request: OrderRequest, keys: ReferenceKeys, creator: bytes, good: str
) -> bytes | None:
    """Refuse the opening unless its seller holds the good; the seller's stored hash."""
    holding, previous = current_holding(conn, int(request.good_type), request.fingerprint)
    if holding is not None and holding.consumed:
        raise GoodConsumed(f"{good} was consumed by a final sale; it may not be sold")
    seller = request.seller
    if not seller.is_creator and seller.platform != request.platform:
        # Before any reference is compared (as transfers: no oracle for guesses).
        raise NotTheHolder(
            f"the seller is a party on {seller.platform}: only {seller.platform} may open "
            "an order for a good it holds"
        )
    as_transfer = TransferRequest(
        platform=request.platform,
        good_type=request.good_type,
        fingerprint=request.fingerprint,
        seller=seller,
        buyer=request.buyer,
    )
    check_seller(as_transfer, holding, previous, keys, good)
    if seller.is_creator:
        check_first_sale(conn, creator, request.platform, good)
        return None
    return seller.ref_hash(keys.reference_hash)


def open_order(
    conn: Connection,
    request: OrderRequest,
    *,
    keys: ReferenceKeys,
    signer: ChangeSigner,
    now: int,
) -> OrderView:
    """Check and open an order, reserving its good; the order as stored."""
    log.lock_log(conn)
    replay = earlier_write(conn, orders_t, request, "order")
    if replay is not None:
        return replace(load_order(conn, replay), replayed=True)
    good_type, fingerprint = int(request.good_type), request.fingerprint
    good = f"{request.good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    creator = _registered_creator(conn, good_type, fingerprint, good)
    # A lapsed reservation's order is settled before the seller is checked: an auto-confirm
    # records its sale, and the good is then its buyer's (``registry.settlement``).
    held = reservation_of(conn, good_type, fingerprint, for_update=True)
    if held is not None and lapsed(held.expires_at, now):
        _settle(conn, int(held.order_id), signer=signer, now=now)
    seller_ref = _check_seller(conn, request, keys, creator, good)
    if held is not None and not lapsed(held.expires_at, now):
        raise GoodReserved(f"{good} is reserved for another open order")

    buyer = request.buyer
    assert buyer.platform is not None and buyer.reference is not None
    salt = os.urandom(16)
    reserved_until = now + request.reservation_seconds
    order_id = int(
        conn.execute(
            orders_t.insert()
            .values(
                platform=request.platform,
                good_type=good_type,
                fingerprint=fingerprint,
                seller_platform=request.seller.platform,
                seller_ref=seller_ref,
                buyer_platform=buyer.platform,
                buyer_ref=buyer.ref_hash(keys.reference_hash),
                buyer_commitment=buyer_commitment(salt, buyer.platform, buyer.reference),
                buyer_salt=salt,
                price=str(request.price),
                currency=request.currency,
                confirm_window=request.confirm_window,
                state=State.RESERVED.value,
                sequence=0,
                created_at=now,
                reserved_until=reserved_until,
                updated_at=now,
                idempotency_key=request.idempotency_key,
                request_hash=request.request_hash(),
            )
            .returning(orders_t.c.id)
        ).scalar_one()
    )
    try:
        with conn.begin_nested():
            conn.execute(
                reservations_t.insert().values(
                    good_type=good_type,
                    fingerprint=fingerprint,
                    order_id=order_id,
                    platform=request.platform,
                    expires_at=reserved_until,
                )
            )
    except IntegrityError as exc:  # the backstop: a racing opening reserved it first
        raise GoodReserved(f"{good} was just reserved for another order") from exc
    record_change(
        conn,
        order_id=order_id,
        sequence=0,
        event=OPENED,
        from_state=None,
        to_state=State.RESERVED,
        actor=platform_actor(request.platform),
        now=now,
        previous=None,
        good=(good_type, fingerprint),
        signer=signer,
        idempotency_key=None,
        platform=request.platform,
    )
    return load_order(conn, order_id)


# -- changing ---------------------------------------------------------------------------------


def change_order(
    conn: Connection,
    order_id: int,
    event: Event,
    *,
    platform: str | None,
    signer: ChangeSigner,
    now: int,
    idempotency_key: str | None = None,
) -> OrderView:
    """Apply ``event`` to the order (``platform``: the caller, who must have opened it; None:
    the registry itself). A timeout due first is applied first, so a dispute after the
    deadline meets an auto-confirmed order. ``InvalidTransition`` changes nothing."""
    row = order_row(conn, order_id, for_update=True)
    if row is None or (platform is not None and row.platform != platform):
        # The same answer for "not yours" and "does not exist".
        raise NotFound(f"no order {order_id} of yours")
    if idempotency_key is not None:
        done = conn.execute(
            select(changes_t.c.event).where(
                changes_t.c.order_id == order_id, changes_t.c.idempotency_key == idempotency_key
            )
        ).first()
        if done is not None:
            if done.event != event.value:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for another change of this order"
                )
            return replace(load_order(conn, order_id), replayed=True)
    due = due_event(row, now)
    if due is not None and due is not event:
        row = _apply(conn, row, due, actor=REGISTRY_ACTOR, now=now, signer=signer, key=None)
    if event in TIMED_EVENTS and due is not event:
        raise InvalidTransition(
            f"'{event.value}' applies only past the order's time", State(row.state)
        )
    actor = REGISTRY_ACTOR if platform is None else platform_actor(platform)
    _apply(conn, row, event, actor=actor, now=now, signer=signer, key=idempotency_key)
    return load_order(conn, order_id)


def _settle(conn: Connection, order_id: int, *, signer: ChangeSigner, now: int) -> bool:
    """Apply the order's due timeout, if one is; whether one was."""
    row = order_row(conn, order_id, for_update=True)
    if row is None:
        return False
    due = due_event(row, now)
    if due is None:
        return False
    _apply(conn, row, due, actor=REGISTRY_ACTOR, now=now, signer=signer, key=None)
    return True


def settle_order(conn: Connection, order_id: int, *, signer: ChangeSigner, now: int) -> bool:
    """The lazy path of a read: apply the order's due timeout, if any."""
    return _settle(conn, order_id, signer=signer, now=now)


def _apply(
    conn: Connection,
    row: Any,
    event: Event,
    *,
    actor: str,
    now: int,
    signer: ChangeSigner,
    key: str | None,
) -> Any:
    """Move the order by the table, update its reservation, record the change; the new row."""
    state = State(row.state)
    target = next_state(state, event)
    sequence = int(row.sequence) + 1
    values: dict[str, Any] = {"state": target.value, "sequence": sequence, "updated_at": now}
    if target is State.DELIVERED:
        values["delivered_at"] = now
        values["confirm_deadline"] = now + int(row.confirm_window)
    # A delivery's checks, entry and held lines are ``registry.delivery``; the sale made or
    # refunded is ``signer.settle`` below; each change's webhook ``signer.on_change``.
    o = orders_t.c
    moved = conn.execute(
        update(orders_t)
        .where(o.id == row.id, o.state == row.state, o.sequence == row.sequence)
        .values(**values)
    ).rowcount
    if moved != 1:  # the backstop: somebody changed it between our read and our write
        raise InvalidTransition(f"order {row.id} changed meanwhile; read it again", state)
    r = reservations_t.c
    if target in OPEN_STATES:
        expires = values["confirm_deadline"] if target is State.DELIVERED else None
        conn.execute(update(reservations_t).where(r.order_id == row.id).values(expires_at=expires))
    else:
        conn.execute(delete(reservations_t).where(r.order_id == row.id))
    if signer.settle is not None:  # after the reservation: it must not refuse its own sale
        signer.settle(conn, row, target, now)
    previous = conn.execute(
        select(changes_t.c.change_hash).where(
            changes_t.c.order_id == row.id, changes_t.c.sequence == row.sequence
        )
    ).scalar_one()
    record_change(
        conn,
        order_id=int(row.id),
        sequence=sequence,
        event=event.value,
        from_state=state,
        to_state=target,
        actor=actor,
        now=now,
        previous=bytes(previous),
        good=(int(row.good_type), bytes(row.fingerprint)),
        signer=signer,
        idempotency_key=key,
        platform=str(row.platform),
    )
    return order_row(conn, int(row.id))


__all__ = [
    "REGISTRY_ACTOR",
    "OrderChangeView",
    "OrderView",
    "change_order",
    "changes_t",
    "due_event",
    "load_order",
    "open_order",
    "order_ids",
    "orders_t",
    "platform_actor",
    "settle_order",
]
