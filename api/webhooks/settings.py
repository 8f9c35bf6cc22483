"""The webhook settings (``TRACEMARK_WEBHOOK_*``): who may be called, how often, how long."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


@dataclass(frozen=True)
class WebhookPolicy:
    """Which targets a webhook may reach (THREATS 42). The defaults are production's: https
    only, public addresses only. Both switches are for local development and tests."""

    #: Also allow ``http://`` targets (the body and its signature then travel in the clear).
    allow_http: bool = False
    #: Also allow loopback addresses (127.0.0.0/8, ::1): a receiver on this machine. Private,
    #: link-local, metadata and every other non-public range stay refused regardless.
    allow_loopback: bool = False


class GuardedFetchSettings(BaseSettings):
    """The SSRF guard's two switches, as settings of a process that fetches a URL someone
    else named (webhook deliveries, creators' identity statements), and its policy."""

    #: Also allow ``http://`` (development and tests only; production is https).
    allow_http: bool = False
    #: Also allow a host that resolves to a loopback address (development and tests only).
    allow_loopback: bool = False

    @property
    def policy(self) -> WebhookPolicy:
        return WebhookPolicy(allow_http=self.allow_http, allow_loopback=self.allow_loopback)


class WebhookSettings(GuardedFetchSettings):
    """Read from the environment by ``load_webhook_settings``; each one is in the README."""

    model_config = SettingsConfigDict(env_prefix="TRACEMARK_WEBHOOK_", extra="ignore", frozen=True)

    #: Attempts per delivery, the first included; then the delivery is ``failed``.
    max_attempts: int = Field(default=5, ge=1, le=20)
    #: Delay before the first retry (seconds); each later one is ``retry_factor`` times the
    #: one before, with +-10% jitter: 45 s, 3 min, 12 min, 48 min (~64 min in all).
    retry_base: float = Field(default=45.0, ge=0.0, le=86_400.0)
    retry_factor: float = Field(default=4.0, ge=1.0, le=10.0)
    #: No delay is longer than this (seconds).
    retry_max: float = Field(default=6 * 3600.0, ge=0.0, le=7 * 86_400.0)
    #: Deliveries in flight at once, per process.
    concurrency: int = Field(default=8, ge=1, le=64)
    #: How often the worker looks for new events and due retries (seconds).
    poll_interval: float = Field(default=1.0, gt=0.0, le=60.0)
    #: Per attempt: connecting (incl. the DNS lookup), and the whole attempt (seconds).
    connect_timeout: float = Field(default=2.0, gt=0.0, le=30.0)
    total_timeout: float = Field(default=5.0, gt=0.0, le=60.0)
    #: Live subscriptions a platform may hold (THREATS 40: every list is bounded).
    max_subscriptions: int = Field(default=20, ge=1, le=1000)

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based), before jitter."""
        return float(min(self.retry_base * self.retry_factor ** (attempts - 1), self.retry_max))


def load_webhook_settings(**overrides: object) -> WebhookSettings:
    """Build the settings from the environment, with explicit overrides (tests)."""
    return WebhookSettings(**overrides)  # type: ignore[arg-type]
