"""Getting events into the webhook outbox: one event queued for one subscription, and signals
published inside the caller's own transaction (the transactional-outbox pattern: the signal
and its notifications commit together or not at all)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from api.webhooks import events
from api.webhooks.store import PENDING, deliveries_t, subscriptions_t, wall_ms
from readmodels.signals import Signal
from registry.fingerprints import GoodType
from registry.orderchanges import OrderChangeNote

logger = logging.getLogger("tracemark.api.webhooks")


def new_msg_id() -> str:
    """A ``webhook-id``: random, so it says nothing about the event or how many there were."""
    return "msg_" + secrets.token_urlsafe(18)


def _insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    result = conn.execute(dialect.insert(table).values(values).on_conflict_do_nothing())
    return int(result.rowcount or 0)


def queue_delivery(
    conn: Connection,
    subscription_id: int,
    event_type: str,
    event_key: str,
    payload: str,
    *,
    now: int,
    due_ms: int,
) -> bool:
    """Queue one event for one subscription; False if it was already queued."""
    return (
        _insert_ignore(
            conn,
            deliveries_t,
            {
                "msg_id": new_msg_id(),
                "subscription_id": subscription_id,
                "event_type": event_type,
                "event_key": event_key,
                "payload": payload,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_ms": due_ms,
                "created_at": now,
                "updated_at": now,
            },
        )
        == 1
    )


def _subscribers(conn: Connection, event_type: str, platform: str | None) -> list[int]:
    c = subscriptions_t.c
    query = select(c.id, c.event_types).where(c.deleted_at.is_(None))
    if platform is not None:
        query = query.where(c.platform_id == platform)
    return [row.id for row in conn.execute(query) if event_type in row.event_types.split()]


def publish_signal(
    conn: Connection,
    *,
    platform: str,
    signal_id: str,
    code: str,
    detail: str,
    now: int,
    good_type: str | None = None,
    fingerprint: bytes | None = None,
    evidence: dict[str, Any] | None = None,
) -> int:
    """Queue ``signal.raised`` for ``platform``'s subscriptions, in the caller's transaction.

    ``signal_id`` names the signal for good: publishing it again queues nothing new. Returns
    how many deliveries were queued.
    """
    payload = events.envelope(
        events.SIGNAL_RAISED,
        now,
        events.signal_data(
            signal_id=signal_id,
            code=code,
            detail=detail,
            good_type=good_type,
            fingerprint=fingerprint,
            evidence=evidence or {},
        ),
    )
    due = wall_ms()
    return sum(
        queue_delivery(
            conn, sid, events.SIGNAL_RAISED, f"signal:{signal_id}", payload, now=now, due_ms=due
        )
        for sid in _subscribers(conn, events.SIGNAL_RAISED, platform)
    )


def publish_signals(conn: Connection, signals: Sequence[Signal], now: int) -> int:
    """Queue ``signal.raised`` to each platform a signal concerns, in the caller's transaction
    (the risk worker's, which records the signals as raised in it: ``readmodels.riskworker``).

    The event's ``evidence`` is the signal's document, what ``GET /v1/signals`` lists. A
    signal about creators only (duplicate claims) concerns no platform and is queued to
    nobody; it is in the signals list. Returns how many deliveries were queued.
    """
    queued = 0
    for signal in signals:
        good = signal.goods[0] if signal.subject.kind == "good" and signal.goods else None
        evidence = signal.document()
        for platform in signal.platforms:
            queued += publish_signal(
                conn,
                platform=platform,
                signal_id=signal.signal_id,
                code=signal.code,
                detail=signal.detail,
                now=now,
                good_type=None if good is None else GoodType(good[0]).name.lower(),
                fingerprint=None if good is None else good[1],
                evidence=evidence,
            )
    if queued:
        logger.info("queued %d signal.raised deliveries for %d signals", queued, len(signals))
    return queued


def publish_order_change(conn: Connection, change: OrderChangeNote) -> int:
    """Queue ``order.changed`` for the order's platform's subscriptions, in the transaction
    that records the change (``registry.orderchanges``: its ``ChangeSigner.on_change``), so a
    change that rolls back queues nothing. Returns how many deliveries were queued."""
    payload = events.envelope(
        events.ORDER_CHANGED,
        change.at,
        events.order_data(
            order_id=change.order_id,
            sequence=change.sequence,
            event=change.event,
            from_state=change.from_state,
            to_state=change.to_state,
            actor=change.actor,
            at=change.at,
            change_hash=change.change_hash,
            good_type=GoodType(change.good_type).name.lower(),
            fingerprint=change.fingerprint,
        ),
    )
    key = f"order:{change.order_id}:{change.sequence}"
    due = wall_ms()
    return sum(
        queue_delivery(conn, sid, events.ORDER_CHANGED, key, payload, now=change.at, due_ms=due)
        for sid in _subscribers(conn, events.ORDER_CHANGED, change.platform)
    )


__all__ = [
    "new_msg_id",
    "publish_order_change",
    "publish_signal",
    "publish_signals",
    "queue_delivery",
]
