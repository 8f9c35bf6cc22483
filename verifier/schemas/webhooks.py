"""Wire schemas of webhook subscriptions and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from verifier.schemas.fields import (
    Strict,
)

WebhookEventType = Literal["anchor.final", "transfer.recorded", "signal.raised", "order.changed"]


class WebhookIn(Strict):
    """A subscription: an https URL (checked against THREATS 42) and the events to send."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    event_types: Annotated[list[WebhookEventType], Field(min_length=1, max_length=4)]


class WebhookOut(Strict):
    id: int
    url: str
    event_types: list[WebhookEventType]
    created_at: int


class WebhookCreatedOut(WebhookOut):
    """The new subscription with its signing secret: shown this once, never again."""

    secret: str


class WebhookAttemptOut(Strict):
    attempt: int
    started_at: int
    duration_ms: int
    #: The receiver's status, or null if it never answered (``error`` says why).
    status_code: int | None
    error: str | None


class WebhookDeliveryOut(Strict):
    """One event for one subscription and every attempt to deliver it."""

    id: int
    #: The ``webhook-id`` header: the same on every attempt, for the receiver to dedupe on.
    msg_id: str
    event_type: WebhookEventType
    #: pending, delivered, failed (attempts exhausted) or cancelled (subscription deleted).
    state: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_status: int | None
    #: Unix milliseconds of the next attempt; null unless pending.
    next_attempt_ms: int | None
    created_at: int
    updated_at: int
    log: list[WebhookAttemptOut]
