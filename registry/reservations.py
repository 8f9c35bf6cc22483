"""A good's reservation for an open order (issue 17): is it reserved, and the transfer's check.

One ``order_reservations`` row per reserved good, keyed by the good: two orders racing for a
good cannot both insert one, on SQLite or PostgreSQL. A row whose ``expires_at`` has passed
has *lapsed*: the good is free for everyone who reads it, whether or not the order was settled
yet (``registry.orderstore`` settles it lazily and by the sweep), unless its order was
delivered (``refuse_if_reserved``; a verify answer's ``holder.reserved`` reads the same from
the facts statement, ``readmodels.authenticity.GoodFacts.reserved_at``). Kept apart from the
orders' storage so that the transfer path can ask without importing it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select

from registry.models import Order, OrderReservation
from registry.orders import GoodReserved, State

reservations_t: Table = OrderReservation.__table__  # type: ignore[attr-defined]
_orders_t: Table = Order.__table__  # type: ignore[attr-defined]


def reservation_of(
    conn: Connection, good_type: int, fingerprint: bytes, *, for_update: bool = False
) -> Any:
    """The good's reservation row (lapsed or not), or None."""
    c = reservations_t.c
    query = select(reservations_t).where(c.good_type == good_type, c.fingerprint == fingerprint)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def lapsed(expires_at: int | None, now: int) -> bool:
    """Whether a reservation that runs until ``expires_at`` (None: until resolved) is over."""
    return expires_at is not None and now >= expires_at


def holds(row: Any, now: int) -> bool:
    """Whether a reservation row (or None) still reserves its good at ``now``."""
    return row is not None and not lapsed(row.expires_at, now)


def refuse_if_reserved(
    conn: Connection, good_type: int, fingerprint: bytes, now: int, good: str
) -> None:
    """The transfer path's check: a good reserved for an open order may not be sold, by any
    platform (its own order's sale is recorded by ``registry.settlement``, not through here).

    A delivered order past its confirmation deadline has lapsed too, but its sale stands: the
    good is its buyer's as soon as the auto-confirm is applied (lazily or by the sweep, within
    seconds), so until then it is refused as reserved as well; an expired reservation (never
    delivered) frees the good at once."""
    row = reservation_of(conn, good_type, fingerprint)
    if holds(row, now):
        raise GoodReserved(f"{good} is reserved for an open order; it may not change hands now")
    if row is not None:
        state = conn.execute(
            select(_orders_t.c.state).where(_orders_t.c.id == row.order_id)
        ).scalar_one_or_none()
        if state == State.DELIVERED:
            raise GoodReserved(
                f"{good} was delivered for an order whose sale now stands; it is being settled"
            )


__all__ = ["holds", "lapsed", "refuse_if_reserved", "reservation_of", "reservations_t"]
