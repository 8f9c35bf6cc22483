"""A good's reservation for an open order (issue 17): is it reserved, and the transfer's check.

One ``order_reservations`` row per reserved good, keyed by the good: two orders racing for a
good cannot both insert one, on SQLite or PostgreSQL. A row whose ``expires_at`` has passed
has *lapsed*: the good is free for everyone who reads it, whether or not the order was settled
yet (``registry.orderstore`` settles it lazily and by the sweep). Kept apart from the orders'
storage so that the transfer path can ask without importing it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select

from registry.models import OrderReservation
from registry.orders import GoodReserved

reservations_t: Table = OrderReservation.__table__  # type: ignore[attr-defined]


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
    platform (its own order's completion will not come through here: issue 17 item 2)."""
    if holds(reservation_of(conn, good_type, fingerprint), now):
        raise GoodReserved(f"{good} is reserved for an open order; it may not change hands now")


__all__ = ["holds", "lapsed", "refuse_if_reserved", "reservation_of", "reservations_t"]
