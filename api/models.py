"""The API's tables: platforms, their API keys and the keys' revocation generation, SIWE
nonces, idempotent replies, jobs.

Conventions as in ``registry/models.py``: bytes as bytes, times as Unix seconds (BIGINT) from
the registry's injected clock, ``ID_TYPE`` keys, the shared naming convention. The API-key
lookup goes through the raw driver on ``ApiKey.__table__`` (``api/keycache.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

from registry.models import ID_TYPE
from registry.parties import MAX_PLATFORM_LENGTH

#: Longest platform id (a slug the operator chooses): the registry's own bound, the width of
#: its ``transfers.platform`` columns, which hold these ids.
PLATFORM_ID_MAX = MAX_PLATFORM_LENGTH


class Platform(SQLModel, table=True):
    """A partner platform (marketplace, reseller, agent), named by the operator."""

    __tablename__ = "platforms"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)


class ApiKey(SQLModel, table=True):
    """A platform's API key, stored only as the SHA-256 of the whole key (THREATS 37).

    ``prefix`` (``tm_live_`` and the first characters of the key) is what listings show and
    what an operator names a key by; it is not enough to use the key.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("uq_api_keys_key_hash", "key_hash", unique=True),
        Index("ix_api_keys_platform_id", "platform_id"),
        Index("ix_api_keys_prefix", "prefix"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    platform_id: str = Field(foreign_key="platforms.id", sa_type=Text)
    prefix: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Space-separated, sorted: "transfer verify".
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    label: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)
    revoked_at: int | None = Field(default=None, sa_type=BigInteger)


class ApiKeyGeneration(SQLModel, table=True):
    """One row: how many API keys have ever been revoked.

    Every revocation adds one in its own transaction. The API keeps key rows in memory while
    this number stays the same, and re-reads it at least every ``api.keycache.KEY_CACHE_SECONDS``
    (``api/keycache.py``), so a revocation reaches every server process without a per-request
    key lookup.
    """

    __tablename__ = "api_key_generation"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    generation: int = Field(sa_type=BigInteger)


class SiweNonce(SQLModel, table=True):
    """A Sign-In with Ethereum nonce the registry issued; ``used_at`` is set exactly once."""

    __tablename__ = "siwe_nonces"
    __table_args__ = (Index("ix_siwe_nonces_expires_at", "expires_at"),)

    nonce: str = Field(sa_column=Column(Text, primary_key=True))
    issued_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int | None = Field(default=None, sa_type=BigInteger)


class IdempotencyKey(SQLModel, table=True):
    """The stored reply to a request sent with an ``Idempotency-Key``, per principal."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    principal: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    #: SHA-256 of the request as first sent: a retry must match it (else 422).
    request_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status_code: int = Field(sa_type=Integer)
    body: str = Field(sa_column=Column(Text, nullable=False))
    media_type: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)


class Job(SQLModel, table=True):
    """A long-running request (a bulk upload) that a client polls."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_created_at", "owner", "created_at"),)

    id: str = Field(sa_column=Column(Text, primary_key=True))
    owner: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))
    total: int | None = Field(default=None, sa_type=BigInteger)
    processed: int = Field(default=0, sa_type=BigInteger)
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: The failure's problem code (``unknown-product``, ``bad-signature``...): what a client
    #: needs to act on it as if the request had failed at once.
    error_code: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)
    #: The API process running the job, and until when (the database's clock, ms) it is
    #: known alive: other replicas fail the job only after that (``api.jobs``, issue 16).
    runner: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    runner_expires_at_ms: int | None = Field(default=None, sa_type=BigInteger)


__all__ = ["PLATFORM_ID_MAX", "ApiKey", "IdempotencyKey", "Job", "Platform", "SiweNonce"]


# -- webhooks (api/webhooks) -------------------------------------------------------------------


class WebhookSubscription(SQLModel, table=True):
    """A platform's webhook endpoint: where to POST which events, with its sealed secret.

    ``secret_sealed`` is AES-256-GCM under ``Registry.derived_key("webhook-secret")`` (HMAC
    needs the secret itself, so it cannot be a hash); ``anchor_mark``/``transfer_mark`` are
    the poller's high-water marks over ``anchors.id`` and ``transfers.id``.
    """

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (Index("ix_webhook_subscriptions_platform_id_id", "platform_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    platform_id: str = Field(foreign_key="platforms.id", sa_type=Text)
    url: str = Field(sa_column=Column(Text, nullable=False))
    #: Space-separated, sorted: "anchor.final transfer.recorded".
    event_types: str = Field(sa_column=Column(Text, nullable=False))
    secret_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    anchor_mark: int = Field(sa_type=BigInteger)
    transfer_mark: int = Field(sa_type=BigInteger)
    created_at: int = Field(sa_type=BigInteger)
    deleted_at: int | None = Field(default=None, sa_type=BigInteger)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription (the outbox): the exact body, sent until a 2xx or the
    attempts run out. ``msg_id`` is the ``webhook-id`` header, the same on every retry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("uq_webhook_deliveries_msg_id", "msg_id", unique=True),
        Index(
            "uq_webhook_deliveries_subscription_id_event_key",
            "subscription_id",
            "event_key",
            unique=True,
        ),
        Index("ix_webhook_deliveries_state_next_attempt_ms", "state", "next_attempt_ms"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    msg_id: str = Field(sa_column=Column(Text, nullable=False))
    subscription_id: int = Field(sa_type=BigInteger, foreign_key="webhook_subscriptions.id")
    event_type: str = Field(sa_column=Column(Text, nullable=False))
    #: What the event is about ("transfer:12", "anchor:3", "signal:<id>"): one delivery each.
    event_key: str = Field(sa_column=Column(Text, nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    #: pending, delivered, failed (attempts exhausted), cancelled (subscription deleted).
    state: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = Field(default=0, sa_type=Integer)
    #: Wall-clock milliseconds: retries are scheduled finer than the registry's seconds.
    next_attempt_ms: int | None = Field(default=None, sa_type=BigInteger)
    #: A worker that claimed the delivery holds it until then (several API processes).
    lease_until_ms: int | None = Field(default=None, sa_type=BigInteger)
    last_status: int | None = Field(default=None, sa_type=Integer)
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


class WebhookAttempt(SQLModel, table=True):
    """One POST of a delivery (the delivery log): when, how long, the status or the error."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("uq_webhook_attempts_delivery_id_attempt", "delivery_id", "attempt", unique=True),
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    delivery_id: int = Field(sa_type=BigInteger, foreign_key="webhook_deliveries.id")
    attempt: int = Field(sa_type=Integer)
    started_at: int = Field(sa_type=BigInteger)
    duration_ms: int = Field(sa_type=Integer)
    status_code: int | None = Field(default=None, sa_type=Integer)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


__all__ += ["WebhookAttempt", "WebhookDelivery", "WebhookSubscription"]
