"""The outbox of webhook deliveries: how events get in, and how a worker takes them out.

Events get in two ways:

- a **poller** (``Outbox.enqueue_new_events``, run by the worker every tick) turns final
  anchors and recorded transfers into deliveries, with a high-water mark per subscription
  over ``anchors.id`` and ``transfers.id``; UNIQUE (subscription, event key) makes a re-scan
  harmless, so a mark may lag but an event is never queued twice for one subscription;
- ``publish_signal(conn, ...)`` (``api.webhooks.publish``) queues a signal's deliveries
  inside the caller's own transaction (the transactional-outbox pattern): the signal and its
  notifications commit together or not at all.

A worker claims due deliveries under a lease (several API processes may run one), makes one
attempt each, and records it: delivered after a 2xx, else retried with exponential back-off
until ``max_attempts``, then failed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, func, select, update

from anchoring.models import anchors_t
from anchoring.states import AnchorState
from api.webhooks import events
from api.webhooks.publish import queue_delivery
from api.webhooks.store import (
    CANCELLED,
    DELIVERED,
    FAILED,
    PENDING,
    WebhookService,
    anchor_floor,
    attempts_t,
    deliveries_t,
    subscriptions_t,
)
from registry import transfers
from registry.db import read_transaction, retrying, write_transaction

logger = logging.getLogger("tracemark.api.webhooks")

#: Rows the poller reads per table and pass: bounds one transaction's work.
POLL_BATCH: Final = 200
#: How long a claimed delivery is reserved for its worker beyond the attempt's own deadline
#: (seconds): a worker that died mid-attempt releases it after this.
LEASE_MARGIN: Final = 25.0
#: Longest error text kept per attempt.
MAX_ERROR_LENGTH: Final = 300


@dataclass(frozen=True)
class Claim:
    """A delivery a worker reserved for one attempt, with what it needs to send it."""

    delivery_id: int
    msg_id: str
    subscription_id: int
    attempt: int
    url: str
    #: The subscription's ``whsec_`` secret; never logged, never stored unsealed.
    secret: str = field(repr=False)
    payload: str = field(repr=False)


def last_transfer_id(conn: Connection) -> int:
    t = transfers.transfers_t.c
    return int(conn.execute(select(func.coalesce(func.max(t.id), 0))).scalar_one())


# -- the outbox --------------------------------------------------------------------------------


def _advance_mark(conn: Connection, sub: Any, mark_name: str, mark: int) -> None:
    """Move a subscription's high-water mark (``anchor_mark``, ``transfer_mark``) forward to
    ``mark``; never back."""
    if mark > getattr(sub, mark_name):
        conn.execute(
            update(subscriptions_t).where(subscriptions_t.c.id == sub.id).values({mark_name: mark})
        )


class Outbox:
    """The worker's side of the webhooks: the poller, claims and the attempt log."""

    def __init__(self, service: WebhookService, *, now_ms: Callable[[], int] | None = None):
        self.service = service
        self.now_ms = now_ms or service.now_ms
        #: Run first in the transactions that queue and claim deliveries
        #: (``registry.lease.Lease.fence``): a process that lost the webhook sender's role
        #: queues and claims nothing.
        self.fence: Callable[[Connection], None] = lambda conn: None

    def enqueue_new_events(self) -> int:
        """Queue final anchors and recorded transfers that live subscriptions have not had."""
        if not self._anything_new():  # the common case: no write transaction at all
            return 0
        return retrying(self._enqueue)

    def _anything_new(self) -> bool:
        c = subscriptions_t.c
        with read_transaction(self.service.registry.engine) as conn:
            subs = conn.execute(
                select(c.event_types, c.anchor_mark, c.transfer_mark).where(c.deleted_at.is_(None))
            ).all()
            transfer_marks = [
                s.transfer_mark for s in subs if events.TRANSFER_RECORDED in s.event_types.split()
            ]
            if transfer_marks and last_transfer_id(conn) > min(transfer_marks):
                return True
            anchor_marks = [
                s.anchor_mark for s in subs if events.ANCHOR_FINAL in s.event_types.split()
            ]
            if not anchor_marks:
                return False
            lowest = min(anchor_marks)
            if anchor_floor(conn) > lowest:
                return True
            a = anchors_t.c
            return (
                conn.execute(
                    select(a.id).where(a.state == AnchorState.FINAL, a.id > lowest).limit(1)
                ).first()
                is not None
            )

    def _enqueue(self) -> int:
        c = subscriptions_t.c
        now, due = self.service.registry.clock(), self.now_ms()
        queued = 0
        with write_transaction(self.service.registry.engine) as conn:
            self.fence(conn)
            subs = conn.execute(
                select(
                    c.id, c.platform_id, c.event_types, c.anchor_mark, c.transfer_mark, c.created_at
                ).where(c.deleted_at.is_(None))
            ).all()
            anchor_subs = [s for s in subs if events.ANCHOR_FINAL in s.event_types.split()]
            if anchor_subs:
                queued += self._enqueue_anchors(conn, anchor_subs, now=now, due=due)
            for sub in subs:
                if events.TRANSFER_RECORDED in sub.event_types.split():
                    queued += self._enqueue_transfers(conn, sub, now=now, due=due)
        return queued

    def _enqueue_anchors(self, conn: Connection, subs: list[Any], *, now: int, due: int) -> int:
        a = anchors_t.c
        lowest = min(int(s.anchor_mark) for s in subs)
        # The floor first: every anchor up to it was final (or dead) before the rows are read,
        # so the final ones among them are in the rows (a later read could see one finalised
        # after the rows were read, and the mark would pass it unsent).
        floor = anchor_floor(conn)
        rows = [
            dict(row._mapping)
            for row in conn.execute(
                select(anchors_t)
                .where(a.state == AnchorState.FINAL, a.id > lowest)
                .order_by(a.id)
                .limit(POLL_BATCH)
            )
        ]
        # A final anchor above one still in flight is sent now; the mark stays below the one
        # in flight (it may become final later) and re-scans are deduplicated by the index.
        if len(rows) == POLL_BATCH:
            floor = min(floor, int(rows[-1]["id"]))
        domain = self.service.registry.domain
        queued = 0
        for sub in subs:
            for anchor in rows:
                if anchor["id"] <= sub.anchor_mark or anchor["updated_at"] < sub.created_at:
                    continue
                payload = events.envelope(
                    events.ANCHOR_FINAL,
                    int(anchor["updated_at"]),
                    events.anchor_data(
                        anchor, chain_id=domain.chain_id, contract=domain.verifying_contract
                    ),
                )
                queued += queue_delivery(
                    conn,
                    sub.id,
                    events.ANCHOR_FINAL,
                    f"anchor:{anchor['id']}",
                    payload,
                    now=now,
                    due_ms=due,
                )
            _advance_mark(conn, sub, "anchor_mark", floor)
        return queued

    def _enqueue_transfers(self, conn: Connection, sub: Any, *, now: int, due: int) -> int:
        # NOTE: a plain high-water mark is safe here because transfers get their ids under the
        # log's lock (``registry.transfers.record_transfer``): they commit in id order, so no
        # smaller id can appear after a larger one was seen.
        from api.receipts import receipt_out  # the wire shape of a receipt

        t = transfers.transfers_t.c
        # The newest id first, then the platform's transfers up to it: every id up to it has
        # committed (or never will), so the mark may pass other platforms' transfers too.
        newest = last_transfer_id(conn)
        ids = (
            conn.execute(
                select(t.id)
                .where(t.platform == sub.platform_id, t.id > sub.transfer_mark, t.id <= newest)
                .order_by(t.id)
                .limit(POLL_BATCH)
            )
            .scalars()
            .all()
        )
        queued = 0
        for transfer_id in ids:
            receipt = transfers.load_receipt(conn, transfer_id, self.service.registry.domain)
            payload = events.envelope(
                events.TRANSFER_RECORDED, receipt.timestamp, receipt_out(receipt)
            )
            queued += queue_delivery(
                conn,
                sub.id,
                events.TRANSFER_RECORDED,
                f"transfer:{transfer_id}",
                payload,
                now=now,
                due_ms=due,
            )
        _advance_mark(conn, sub, "transfer_mark", ids[-1] if len(ids) == POLL_BATCH else newest)
        return queued

    # -- the worker's side -------------------------------------------------------------------

    def claim_due(self, limit: int) -> list[Claim]:
        """Reserve up to ``limit`` deliveries whose attempt is due, for this worker."""
        if limit <= 0:
            return []
        d, s = deliveries_t.c, subscriptions_t.c
        now = self.now_ms()
        lease = now + int((self.service.settings.total_timeout + LEASE_MARGIN) * 1000)
        free = (d.lease_until_ms.is_(None)) | (d.lease_until_ms < now)
        with read_transaction(self.service.registry.engine) as conn:
            candidates = (
                conn.execute(
                    select(d.id)
                    .where(d.state == PENDING, d.next_attempt_ms <= now, free)
                    .order_by(d.next_attempt_ms)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        if not candidates:
            return []
        claims: list[Claim] = []
        with write_transaction(self.service.registry.engine) as conn:
            self.fence(conn)
            for delivery_id in candidates:
                taken = conn.execute(
                    update(deliveries_t)
                    .where(d.id == delivery_id, d.state == PENDING, free)
                    .values(lease_until_ms=lease)
                ).rowcount
                if not taken:
                    continue  # another worker was first
                row = conn.execute(
                    select(
                        d.msg_id,
                        d.attempts,
                        d.payload,
                        d.subscription_id,
                        s.platform_id,
                        s.url,
                        s.secret_sealed,
                        s.deleted_at,
                    )
                    .join(subscriptions_t, s.id == d.subscription_id)
                    .where(d.id == delivery_id)
                ).one()
                if row.deleted_at is not None:
                    conn.execute(
                        update(deliveries_t)
                        .where(d.id == delivery_id)
                        .values(state=CANCELLED, next_attempt_ms=None, lease_until_ms=None)
                    )
                    continue
                secret = self.service.unseal(
                    row.platform_id, row.subscription_id, bytes(row.secret_sealed)
                )
                claims.append(
                    Claim(
                        delivery_id=delivery_id,
                        msg_id=row.msg_id,
                        subscription_id=row.subscription_id,
                        attempt=int(row.attempts) + 1,
                        url=row.url,
                        secret=secret,
                        payload=row.payload,
                    )
                )
        return claims

    def record_attempt(
        self,
        claim: Claim,
        *,
        started_at: int,
        duration_ms: int,
        status_code: int | None,
        error: str | None,
    ) -> str:
        """Log one attempt and decide what follows: delivered, a retry later, or failed."""
        ok = error is None and status_code is not None and 200 <= status_code < 300
        now, now_ms = self.service.registry.clock(), self.now_ms()
        if ok:
            state, next_ms = DELIVERED, None
        elif claim.attempt >= self.service.settings.max_attempts:
            state, next_ms = FAILED, None
        else:
            delay = self.service.settings.retry_delay(claim.attempt)
            jitter = random.uniform(0.9, 1.1)  # noqa: S311 (spreading retries, not a secret)
            state, next_ms = PENDING, now_ms + int(delay * jitter * 1000)
        d = deliveries_t.c

        def attempt() -> None:
            with write_transaction(self.service.registry.engine) as conn:
                written = conn.execute(
                    update(deliveries_t)
                    .where(
                        d.id == claim.delivery_id,
                        d.state == PENDING,
                        d.attempts == claim.attempt - 1,
                    )
                    .values(
                        state=state,
                        attempts=claim.attempt,
                        next_attempt_ms=next_ms,
                        lease_until_ms=None,
                        last_status=status_code,
                        updated_at=now,
                    )
                ).rowcount
                if not written:  # cancelled meanwhile, or another worker logged it (lease)
                    return
                conn.execute(
                    attempts_t.insert().values(
                        delivery_id=claim.delivery_id,
                        attempt=claim.attempt,
                        started_at=started_at,
                        duration_ms=duration_ms,
                        status_code=status_code,
                        error=None if error is None else error[:MAX_ERROR_LENGTH],
                    )
                )

        retrying(attempt)
        logger.info(
            "webhook %s (subscription %s) attempt %s: %s%s",
            claim.msg_id,
            claim.subscription_id,
            claim.attempt,
            status_code if status_code is not None else "no answer",
            "" if error is None else f" ({error[:MAX_ERROR_LENGTH]})",
        )
        if state == FAILED:
            logger.warning(
                "webhook %s (subscription %s) failed after %s attempts",
                claim.msg_id,
                claim.subscription_id,
                claim.attempt,
            )
        return state


__all__ = [
    "Claim",
    "Outbox",
    "last_transfer_id",
]
