"""Orders as read: an order and its signed changes (``OrderView``), the ids of a platform's
orders, and the timeout due on one (issue 17; written by ``registry.orderstore``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, select

from registry.errors import NotFound
from registry.fingerprints import GoodType
from registry.models import Order, OrderChange
from registry.orders import OPEN_STATES, Event, State

orders_t: Table = Order.__table__  # type: ignore[attr-defined]
changes_t: Table = OrderChange.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OrderChangeView:
    sequence: int
    event: str
    from_state: str | None
    to_state: str
    actor: str
    at: int
    change_hash: bytes
    signature: bytes
    signer: bytes


@dataclass(frozen=True)
class OrderView:
    """An order as stored, with its changes in order (what the API answers)."""

    order_id: int
    platform: str
    good_type: GoodType
    fingerprint: bytes
    seller_platform: str | None
    buyer_platform: str
    buyer_commitment: bytes
    buyer_salt: bytes
    price: int
    currency: str
    confirm_window: int
    state: State
    created_at: int
    reserved_until: int
    delivered_at: int | None
    confirm_deadline: int | None
    updated_at: int
    changes: tuple[OrderChangeView, ...] = field(default_factory=tuple)
    replayed: bool = False

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def order_row(conn: Connection, order_id: int, *, for_update: bool = False) -> Any:
    query = select(orders_t).where(orders_t.c.id == order_id)
    if for_update and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def load_order(conn: Connection, order_id: int) -> OrderView:
    row = order_row(conn, order_id)
    if row is None:
        raise NotFound(f"no order {order_id}")
    c = changes_t.c
    changes = conn.execute(
        select(changes_t).where(c.order_id == order_id).order_by(c.sequence)
    ).all()
    return OrderView(
        order_id=int(row.id),
        platform=row.platform,
        good_type=GoodType(int(row.good_type)),
        fingerprint=bytes(row.fingerprint),
        seller_platform=row.seller_platform,
        buyer_platform=row.buyer_platform,
        buyer_commitment=bytes(row.buyer_commitment),
        buyer_salt=bytes(row.buyer_salt),
        price=int(row.price),
        currency=row.currency,
        confirm_window=int(row.confirm_window),
        state=State(row.state),
        created_at=int(row.created_at),
        reserved_until=int(row.reserved_until),
        delivered_at=None if row.delivered_at is None else int(row.delivered_at),
        confirm_deadline=None if row.confirm_deadline is None else int(row.confirm_deadline),
        updated_at=int(row.updated_at),
        changes=tuple(
            OrderChangeView(
                sequence=int(ch.sequence),
                event=ch.event,
                from_state=ch.from_state,
                to_state=ch.to_state,
                actor=ch.actor,
                at=int(ch.at),
                change_hash=bytes(ch.change_hash),
                signature=bytes(ch.signature),
                signer=bytes(ch.signer),
            )
            for ch in changes
        ),
    )


def due_event(row: Any, now: int) -> Event | None:
    """The timeout due on an order row at ``now``, if any."""
    if row.state == State.RESERVED and now >= int(row.reserved_until):
        return Event.EXPIRE
    if (
        row.state == State.DELIVERED
        and row.confirm_deadline is not None
        and now >= int(row.confirm_deadline)
    ):
        return Event.AUTO_CONFIRM
    return None


def order_ids(conn: Connection, platform: str, *, after: int, limit: int) -> list[int]:
    c = orders_t.c
    query = select(c.id).where(c.platform == platform, c.id > after).order_by(c.id).limit(limit)
    return [int(i) for i in conn.execute(query).scalars()]


__all__ = [
    "OrderChangeView",
    "OrderView",
    "changes_t",
    "due_event",
    "load_order",
    "order_ids",
    "order_row",
    "orders_t",
]
