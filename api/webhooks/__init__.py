"""Webhooks: platforms subscribe to events and get them POSTed, signed (Standard Webhooks).

- ``settings``: ``TRACEMARK_WEBHOOK_*`` and the ``WebhookPolicy`` of allowed targets;
- ``ssrf``: which URLs and addresses may be called (THREATS 42), checked at subscription
  time and before every connection;
- ``events``: the event types and their bodies;
- ``store``: subscriptions (secrets sealed at rest) and their delivery log;
- ``publish``: events queued as deliveries (``publish_signal`` in the caller's transaction);
- ``outbox``: the deliveries: the poller, claims, attempts;
- ``worker``: the background delivery worker (bounded concurrency, timeouts, back-off).

Receivers check a webhook with ``verifier.webhooks.verify_webhook``.
"""

from api.webhooks.events import EVENT_TYPES, EventType
from api.webhooks.publish import publish_signal
from api.webhooks.settings import WebhookPolicy, WebhookSettings, load_webhook_settings
from api.webhooks.ssrf import TargetRefused
from api.webhooks.store import WebhookService
from api.webhooks.worker import WebhookWorker

__all__ = [
    "EVENT_TYPES",
    "EventType",
    "TargetRefused",
    "WebhookPolicy",
    "WebhookService",
    "WebhookSettings",
    "WebhookWorker",
    "load_webhook_settings",
    "publish_signal",
]
