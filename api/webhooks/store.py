"""Webhook subscriptions and their delivery log: the use cases the routes call.

``WebhookService`` owns every transaction (STYLE 8); ``api/webhooks/outbox.py`` fills and
drains the outbox of deliveries. Secrets are sealed with AES-256-GCM under
``Registry.derived_key("webhook-secret")``, the subscription's platform and id as associated
data (a sealed secret copied onto another row does not open); they are unsealed only to
sign, never logged, and shown once, at creation.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Table, func, select, update

from anchoring.models import anchors_t
from anchoring.states import NOT_YET_FINAL
from api.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from api.webhooks import events
from api.webhooks.settings import WebhookSettings
from registry import transfers
from registry.db import read_transaction, retrying, write_transaction
from registry.errors import ConfigurationError, Conflict, NotFound
from registry.service import Registry
from verifier.webhooks import SECRET_BYTES, encode_secret

logger = logging.getLogger("tracemark.api.webhooks")

subscriptions_t: Table = WebhookSubscription.__table__  # type: ignore[attr-defined]
deliveries_t: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
attempts_t: Table = WebhookAttempt.__table__  # type: ignore[attr-defined]

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
_AAD_PREFIX = b"tracemark/webhook-secret/v1\x00"
_NONCE_SIZE = 12


def wall_ms() -> int:
    """Milliseconds of the system clock: retries are scheduled finer than whole seconds."""
    return int(time.time() * 1000)


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionInfo:
    id: int
    platform: str
    url: str
    event_types: tuple[str, ...]
    created_at: int


@dataclass(frozen=True)
class AttemptInfo:
    attempt: int
    started_at: int
    duration_ms: int
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class DeliveryInfo:
    id: int
    msg_id: str
    event_type: str
    state: str
    attempts: int
    last_status: int | None
    #: Unix milliseconds of the next attempt (None once delivered, failed or cancelled).
    next_attempt_ms: int | None
    created_at: int
    updated_at: int
    log: tuple[AttemptInfo, ...] = field(default=())


# -- sealing -----------------------------------------------------------------------------------


def _aad(platform: str, subscription_id: int) -> bytes:
    return _AAD_PREFIX + platform.encode() + b"\x00" + str(subscription_id).encode()


def seal_secret(key: bytes, platform: str, subscription_id: int, secret: str) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode(), _aad(platform, subscription_id))


def unseal_secret(key: bytes, platform: str, subscription_id: int, sealed: bytes) -> str:
    try:
        plain = AESGCM(key).decrypt(
            sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], _aad(platform, subscription_id)
        )
    except InvalidTag as exc:
        raise ConfigurationError(
            f"the secret of webhook subscription {subscription_id} does not open under this "
            "master key"
        ) from exc
    return plain.decode()


# -- marks ------------------------------------------------------------------------------------


def anchor_floor(conn: Connection) -> int:
    """The largest anchor id below which no anchor can still become final."""
    c = anchors_t.c
    first_in_flight = conn.execute(
        select(func.min(c.id)).where(c.state.in_(NOT_YET_FINAL))
    ).scalar()
    if first_in_flight is not None:
        return int(first_in_flight) - 1
    return int(conn.execute(select(func.coalesce(func.max(c.id), 0))).scalar_one())


# -- the service -------------------------------------------------------------------------------


class WebhookService:
    """Subscriptions (for the routes) and the outbox (for the worker), on one registry."""

    def __init__(
        self,
        registry: Registry,
        settings: WebhookSettings,
        *,
        now_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.now_ms = now_ms
        self._key = registry.derived_key("webhook-secret")
        # Issue 17 item 8: each order state change queues its event in its own transaction.
        from api.webhooks.publish import publish_order_change  # publish imports this module

        registry.order_listener = publish_order_change

    def unseal(self, platform: str, subscription_id: int, sealed: bytes) -> str:
        """A subscription's secret, to sign with (the outbox's only use of it)."""
        return unseal_secret(self._key, platform, subscription_id, sealed)

    # -- subscriptions ---------------------------------------------------------------------

    def create(
        self, platform: str, url: str, event_types: Iterable[str]
    ) -> tuple[SubscriptionInfo, str]:
        """A new subscription and its secret (the only time the secret leaves the server).

        Its marks start at the events that exist now: it hears of what happens from here on.
        """
        types = sorted(set(event_types))
        unknown = set(types) - events.EVENT_TYPES
        if unknown or not types:
            raise ValueError(f"unknown or no event types: {sorted(unknown)}")
        secret = encode_secret(secrets.token_bytes(SECRET_BYTES))
        now = self.registry.clock()
        c = subscriptions_t.c

        def attempt() -> int:
            with write_transaction(self.registry.engine) as conn:
                live = conn.execute(
                    select(func.count())
                    .select_from(subscriptions_t)
                    .where(c.platform_id == platform, c.deleted_at.is_(None))
                ).scalar_one()
                if live >= self.settings.max_subscriptions:
                    raise Conflict(
                        f"a platform holds at most {self.settings.max_subscriptions} webhook "
                        "subscriptions: delete one first"
                    )
                last_transfer = conn.execute(
                    select(func.coalesce(func.max(transfers.transfers_t.c.id), 0))
                ).scalar_one()
                new_id = conn.execute(
                    subscriptions_t.insert()
                    .values(
                        platform_id=platform,
                        url=url,
                        event_types=" ".join(types),
                        secret_sealed=b"",
                        anchor_mark=anchor_floor(conn),
                        transfer_mark=int(last_transfer),
                        created_at=now,
                    )
                    .returning(c.id)
                ).scalar_one()
                conn.execute(
                    update(subscriptions_t)
                    .where(c.id == new_id)
                    .values(secret_sealed=seal_secret(self._key, platform, new_id, secret))
                )
                return int(new_id)

        subscription_id = retrying(attempt)
        logger.info("webhook subscription %s created for %s", subscription_id, platform)
        return SubscriptionInfo(subscription_id, platform, url, tuple(types), now), secret

    @staticmethod
    def _info(row: Any) -> SubscriptionInfo:
        return SubscriptionInfo(
            id=int(row.id),
            platform=row.platform_id,
            url=row.url,
            event_types=tuple(row.event_types.split()),
            created_at=int(row.created_at),
        )

    def _live(self, conn: Connection, platform: str, subscription_id: int) -> Any:
        c = subscriptions_t.c
        row = conn.execute(
            select(c.id, c.platform_id, c.url, c.event_types, c.created_at).where(
                c.id == subscription_id, c.platform_id == platform, c.deleted_at.is_(None)
            )
        ).first()
        if row is None:
            # The same answer for "not yours" and "does not exist" (THREATS 36).
            raise NotFound(f"no webhook subscription {subscription_id} of yours")
        return row

    def get(self, platform: str, subscription_id: int) -> SubscriptionInfo:
        with read_transaction(self.registry.engine) as conn:
            return self._info(self._live(conn, platform, subscription_id))

    def subscriptions(self, platform: str, *, after: int, limit: int) -> list[SubscriptionInfo]:
        c = subscriptions_t.c
        with read_transaction(self.registry.engine) as conn:
            rows = conn.execute(
                select(c.id, c.platform_id, c.url, c.event_types, c.created_at)
                .where(c.platform_id == platform, c.deleted_at.is_(None), c.id > after)
                .order_by(c.id)
                .limit(limit)
            ).all()
        return [self._info(row) for row in rows]

    def delete(self, platform: str, subscription_id: int) -> None:
        """Stop the subscription: nothing more is queued, pending deliveries are cancelled."""
        now = self.registry.clock()

        def attempt() -> None:
            with write_transaction(self.registry.engine) as conn:
                self._live(conn, platform, subscription_id)
                conn.execute(
                    update(subscriptions_t)
                    .where(subscriptions_t.c.id == subscription_id)
                    .values(deleted_at=now)
                )
                d = deliveries_t.c
                conn.execute(
                    update(deliveries_t)
                    .where(d.subscription_id == subscription_id, d.state == PENDING)
                    .values(state=CANCELLED, next_attempt_ms=None, updated_at=now)
                )

        retrying(attempt)
        logger.info("webhook subscription %s deleted", subscription_id)

    def deliveries(
        self,
        platform: str,
        subscription_id: int,
        *,
        after: int,
        limit: int,
        state: str | None = None,
    ) -> list[DeliveryInfo]:
        """The delivery log of one of ``platform``'s subscriptions, oldest first."""
        d, a = deliveries_t.c, attempts_t.c
        with read_transaction(self.registry.engine) as conn:
            self._live(conn, platform, subscription_id)
            query = select(deliveries_t).where(d.subscription_id == subscription_id, d.id > after)
            if state is not None:
                query = query.where(d.state == state)
            rows = conn.execute(query.order_by(d.id).limit(limit)).all()
            ids = [row.id for row in rows]
            logs: dict[int, list[AttemptInfo]] = {i: [] for i in ids}
            if ids:
                for attempt in conn.execute(
                    select(attempts_t).where(a.delivery_id.in_(ids)).order_by(a.id)
                ):
                    logs[attempt.delivery_id].append(
                        AttemptInfo(
                            attempt=attempt.attempt,
                            started_at=attempt.started_at,
                            duration_ms=attempt.duration_ms,
                            status_code=attempt.status_code,
                            error=attempt.error,
                        )
                    )
        return [
            DeliveryInfo(
                id=row.id,
                msg_id=row.msg_id,
                event_type=row.event_type,
                state=row.state,
                attempts=row.attempts,
                last_status=row.last_status,
                next_attempt_ms=row.next_attempt_ms if row.state == PENDING else None,
                created_at=row.created_at,
                updated_at=row.updated_at,
                log=tuple(logs[row.id]),
            )
            for row in rows
        ]


__all__ = [
    "CANCELLED",
    "DELIVERED",
    "FAILED",
    "PENDING",
    "AttemptInfo",
    "DeliveryInfo",
    "SubscriptionInfo",
    "WebhookService",
    "anchor_floor",
    "wall_ms",
]
