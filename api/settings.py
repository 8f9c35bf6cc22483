"""The HTTP API's own settings (``TRACEMARK_*``): trusted proxies and the public tier's costs."""

from __future__ import annotations

import ipaddress
from typing import Final

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.pow import DEFAULT_CHALLENGE_TTL, DEFAULT_POW_BITS, MAX_POW_BITS
from api.ratelimit import check_storage_url

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Anonymous code lookups per minute from all addresses together (the global budget).
DEFAULT_ANON_CODE_LOOKUPS_PER_MINUTE: Final = 600


def parse_proxies(text: str) -> tuple[IPNetwork, ...]:
    """Comma-separated IP addresses or CIDR networks; empty is none. A name, ``*`` or
    anything else that is not an address is refused: trusting a proxy must name it."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"TRACEMARK_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


class ApiSettings(BaseSettings):
    """Read from the environment (``TRACEMARK_*``); each one is in the README."""

    # NOTE: errors leave the value out (a Redis URL may carry a password); each validator's
    # message names what is wrong.
    model_config = SettingsConfigDict(
        env_prefix="TRACEMARK_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    #: Proxies whose ``X-Forwarded-For`` names the client (comma-separated IPs or CIDRs).
    #: Empty (the default): no proxy is trusted, the TCP peer is the client.
    trusted_proxies: str = ""
    #: Leading zero bits of the proof of work asked for each public code lookup.
    anon_pow_bits: int = Field(default=DEFAULT_POW_BITS, ge=0, le=MAX_POW_BITS)
    #: How long a proof-of-work challenge may be used (seconds).
    anon_pow_ttl: int = Field(default=DEFAULT_CHALLENGE_TTL, ge=5, le=3600)
    #: Public code lookups per minute from every address together.
    anon_code_lookups_per_minute: int = Field(
        default=DEFAULT_ANON_CODE_LOOKUPS_PER_MINUTE, ge=1, le=1_000_000
    )
    #: Where rate limits are counted (``api.ratelimit.build_limiter``): ``memory://`` in this
    #: process, or a Redis URL shared by every replica (``api.sharedlimits``).
    rate_limit_storage: str = "memory://"
    #: The prefix of every key in that Redis (registries, and tests, sharing one server).
    rate_limit_prefix: str = Field(default="tracemark", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    #: API replicas sharing the limits: while Redis is down each keeps 1/N of a keyed limit.
    rate_limit_replicas: int = Field(default=1, ge=1, le=1000)

    #: A PostgreSQL streaming replica of the database (issue 16): verify, proofs, bundles,
    #: traces and history read from it while fresh (``registry.replica``). Empty: none.
    database_replica_url: str = ""
    #: How stale the replica may be (seconds) before reads go back to the primary.
    replica_max_lag: float = Field(default=2.0, gt=0, le=3600)

    @field_validator("database_replica_url")
    @classmethod
    def _replica_url(cls, value: str) -> str:
        if value and not value.startswith("postgresql"):
            raise ValueError("TRACEMARK_DATABASE_REPLICA_URL: a replica must be a PostgreSQL URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_proxies(value)
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        check_storage_url(value)
        return value

    @property
    def proxies(self) -> tuple[IPNetwork, ...]:
        return parse_proxies(self.trusted_proxies)


def load_api_settings(**overrides: object) -> ApiSettings:
    """Build the settings from the environment, with explicit overrides (tests)."""
    return ApiSettings(**overrides)  # type: ignore[arg-type]


__all__ = ["ApiSettings", "load_api_settings", "parse_proxies"]
