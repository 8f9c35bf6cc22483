"""Proving and re-checking a creator's web domain: the statement fetched through the webhooks'
SSRF guard, checked, and recorded as a CREATOR_IDENTITY entry; and the cached read behind
verify answers.

The fetch reuses ``api.webhooks.ssrf`` (resolve, check every address, connect to the checked
one, no redirects, no proxies) under its own switches (``TRACEMARK_IDENTITY_*``), and reads at
most ``MAX_STATEMENT_BYTES``. Nothing is written unless the statement verifies; a re-check
that fails writes a "lapsed" entry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import httpx2
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from api.webhooks import ssrf
from api.webhooks.settings import GuardedFetchSettings
from registry import identity as store
from registry.db import read_transaction, write_transaction
from registry.eip712 import address_bytes, checksum_address
from registry.errors import NotFound, TracemarkError
from registry.service import Registry
from verifier.identity import (
    LAPSED,
    MAX_STATEMENT_BYTES,
    VERIFIED,
    CreatorStatement,
    IdentityHostRefused,
    IdentityUnreachable,
    method,
    parse_domain,
    statement_url,
)
from verifier.identityclaim import CreatorIdentityPayload, IdentityClaim, identity_payload

logger = logging.getLogger("tracemark.api.identity")

USER_AGENT: Final = "tracemark-identity/1"


class IdentitySettings(GuardedFetchSettings):
    """Read from the environment (``TRACEMARK_IDENTITY_*``); each one is in the README."""

    model_config = SettingsConfigDict(env_prefix="TRACEMARK_IDENTITY_", extra="ignore", frozen=True)

    #: Connecting (the DNS lookup included), and the whole fetch (seconds).
    connect_timeout: float = Field(default=3.0, gt=0.0, le=30.0)
    total_timeout: float = Field(default=10.0, gt=0.0, le=60.0)

    def url(self, domain: str) -> str:
        return statement_url(domain, scheme="http" if self.allow_http else "https")


def load_identity_settings(**overrides: object) -> IdentitySettings:
    """Build the settings from the environment, with explicit overrides (tests)."""
    return IdentitySettings(**overrides)  # type: ignore[arg-type]


async def fetch_statement(
    domain: str, settings: IdentitySettings, *, transport: httpx2.AsyncBaseTransport | None = None
) -> bytes:
    """The raw statement served on ``domain``, through the SSRF guard; at most
    ``MAX_STATEMENT_BYTES``. Refusals name the host, never an address it resolved to."""
    url = settings.url(parse_domain(domain))
    policy = settings.policy
    try:
        target = ssrf.parse_target(url, policy)
    except ssrf.TargetRefused as exc:
        raise IdentityHostRefused(f"{domain}: {exc.detail}") from None
    try:
        async with asyncio.timeout(settings.total_timeout):
            try:
                resolved = await ssrf.resolve(target, policy, timeout=settings.connect_timeout)
            except ssrf.TargetRefused:
                # NOTE: the guard's own detail names the address; an internal address is
                # information for an attacker mapping the network, so only the host is named.
                raise IdentityHostRefused(
                    f"the registry does not fetch from {target.host}: it does not resolve, or "
                    "it resolves to an address that is not public"
                ) from None
            extensions = {}
            if target.url.scheme == "https" and ssrf.ip_literal(target.host) is None:
                extensions["sni_hostname"] = target.host  # the certificate is checked for it
            async with httpx2.AsyncClient(
                follow_redirects=False,  # a redirect could lead anywhere: never followed
                trust_env=False,  # a proxy would resolve the name itself, after our check
                timeout=httpx2.Timeout(settings.total_timeout, connect=settings.connect_timeout),
                transport=transport,
            ) as client:
                request = client.build_request(
                    "GET",
                    resolved.pinned_url,
                    headers={
                        "host": target.host_header,
                        "accept": "application/json",
                        "user-agent": USER_AGENT,
                    },
                    extensions=extensions,
                )
                response = await client.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        raise IdentityUnreachable(
                            f"{url} answered HTTP {response.status_code}, not the statement"
                        )
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_STATEMENT_BYTES:
                            raise IdentityUnreachable(
                                f"{url} is larger than {MAX_STATEMENT_BYTES} bytes"
                            )
                finally:
                    await response.aclose()
    except (TimeoutError, httpx2.TimeoutException):
        raise IdentityUnreachable(
            f"{url} gave no answer within {settings.total_timeout:g} s"
        ) from None
    except httpx2.HTTPError as exc:
        raise IdentityUnreachable(f"{url} could not be fetched ({type(exc).__name__})") from None
    return bytes(body)


@dataclass(frozen=True)
class Checked:
    """One proof or re-check: the claim as recorded, and the entry that logged it (None when a
    passing re-check changed nothing but the time of the check)."""

    claim: IdentityClaim
    entry_id: int | None

    def document(self) -> dict[str, Any]:
        return {**self.claim.answer(), "creator": self.claim.creator, "url": self.claim.url,
                "entry_id": self.entry_id}  # fmt: skip


class IdentityService:
    """The use cases: prove a domain, re-check identities; and the cached read for answers."""

    def __init__(self, registry: Registry, settings: IdentitySettings) -> None:
        self.registry = registry
        self.settings = settings
        self.cache = IdentityCache(registry)

    async def prove(self, creator: str, domain: str) -> Checked:
        """Fetch ``domain``'s statement, check it names ``creator`` and ``domain`` and is signed
        by the creator under this registry's EIP-712 domain, then log it (nothing otherwise)."""
        domain = parse_domain(domain)
        creator = checksum_address(address_bytes(creator))
        statement = CreatorStatement.parse(await fetch_statement(domain, self.settings))
        now = self.registry.clock()
        statement.check(creator=creator, domain=domain, eip712_domain=self.registry.domain, now=now)
        url = self.settings.url(domain)
        claim = IdentityClaim(creator, statement.name, domain, VERIFIED, now, url)
        entry_id = await asyncio.to_thread(self._save, claim, statement, None)
        logger.info("creator %s proved %s as %r", creator, domain, statement.name)
        return Checked(claim, entry_id)

    async def recheck(self, creator: str) -> Checked:
        """Re-fetch one creator's verified identity; a statement that no longer verifies (gone,
        changed to another domain or creator, signed by another key) lapses it."""
        row = await asyncio.to_thread(self._row, address_bytes(creator))
        if row is None:
            raise NotFound(f"{creator} has not proved a domain")
        return await self._recheck(row)

    async def recheck_all(self) -> list[Checked]:
        """Re-check every verified identity, one after another (oldest check first)."""

        def verified() -> list[store.IdentityRow]:
            with read_transaction(self.registry.engine) as conn:
                return store.identities(conn, status=VERIFIED)

        return [await self._recheck(row) for row in await asyncio.to_thread(verified)]

    async def _recheck(self, row: store.IdentityRow) -> Checked:
        creator = checksum_address(row.creator)
        if row.status != VERIFIED:
            claim = IdentityClaim(creator, row.name, row.domain, LAPSED, row.checked_at, row.url)
            return Checked(claim, None)
        now = self.registry.clock()
        try:
            statement = CreatorStatement.parse(await fetch_statement(row.domain, self.settings))
            statement.check(
                creator=creator, domain=row.domain, eip712_domain=self.registry.domain, now=now
            )
        except TracemarkError as exc:
            before = await asyncio.to_thread(self._statement_of, row.entry_id)
            claim = IdentityClaim(creator, row.name, row.domain, LAPSED, now, row.url)
            entry_id = await asyncio.to_thread(self._save, claim, before, exc.detail)
            logger.warning("the identity of %s on %s lapsed: %s", creator, row.domain, exc.detail)
            return Checked(claim, entry_id)
        claim = IdentityClaim(creator, statement.name, row.domain, VERIFIED, now, row.url)
        if statement.name != row.name:  # a new name, validly signed: a new verified entry
            return Checked(claim, await asyncio.to_thread(self._save, claim, statement, None))
        await asyncio.to_thread(self._touch, row.creator, now)
        return Checked(claim, None)

    # -- storage (threads) ---------------------------------------------------------------------

    def _row(self, creator: bytes) -> store.IdentityRow | None:
        with read_transaction(self.registry.engine) as conn:
            return store.identity_of(conn, creator)

    def _statement_of(self, entry_id: int) -> CreatorStatement:
        with read_transaction(self.registry.engine) as conn:
            payload = store.identity_payload_of(conn, entry_id)
        # Logged by this registry, so canonical: read through the entry's type.
        return CreatorIdentityPayload.from_document(payload).statement

    def _save(self, claim: IdentityClaim, statement: CreatorStatement, reason: str | None) -> int:
        payload = identity_payload(
            claim,
            statement,
            registry=self.registry.address,
            eip712_domain=self.registry.domain,
            reason=reason,
        )
        creator = address_bytes(claim.creator)
        try:
            return store.save_identity(self.registry, creator=creator, payload=payload)
        finally:
            self.cache.forget(claim.creator)

    def _touch(self, creator: bytes, now: int) -> None:
        t = store.identities_t
        with write_transaction(self.registry.engine) as conn:
            conn.execute(t.update().where(t.c.creator == creator).values(checked_at=now))
        self.cache.forget(checksum_address(creator))


class IdentityCache:
    """Creators' identities as verify answers show them, per process (bounded LRU, short TTL).

    NOTE: the verify path is benchmarked: a creator's identity changes rarely and has few
    creators next to its goods, so it is read once per creator per ``ttl`` instead of joined
    into every request. Writes through this process forget their creator at once; another
    replica's writes show within ``ttl``.
    """

    def __init__(self, registry: Registry, *, capacity: int = 4096, ttl: float = 30.0) -> None:
        self.registry = registry
        self.capacity = capacity
        self.ttl = ttl
        self._items: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, creator: str) -> dict[str, Any] | None:
        """``creator_identity`` of a verify answer: name, domain, status, checked_at, method."""
        now = time.monotonic()
        with self._lock:
            found = self._items.get(creator)
            if found is not None and found[0] > now:
                self._items.move_to_end(creator)
                return found[1]
        with read_transaction(self.registry.engine) as conn:
            row = store.identity_of(conn, address_bytes(creator))
        value = None if row is None else answer_of(row)
        with self._lock:
            self._items[creator] = (now + self.ttl, value)
            self._items.move_to_end(creator)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def forget(self, creator: str) -> None:
        with self._lock:
            self._items.pop(creator, None)


def answer_of(row: store.IdentityRow) -> dict[str, Any]:
    """A stored identity as answers show it (``CreatorIdentityOut``)."""
    return {
        "name": row.name,
        "domain": row.domain,
        "status": row.status,
        "checked_at": row.checked_at,
        "method": method(row.url),
    }


def identity_answer(registry: Registry, creator: str) -> dict[str, Any] | None:
    """The creator's identity as answers show it, read now (traces, the CLI)."""
    with read_transaction(registry.engine) as conn:
        row = store.identity_of(conn, address_bytes(creator))
    return None if row is None else answer_of(row)


__all__ = [
    "Checked",
    "IdentityCache",
    "IdentityService",
    "IdentitySettings",
    "answer_of",
    "fetch_statement",
    "identity_answer",
    "load_identity_settings",
]
