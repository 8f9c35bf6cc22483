"""Who is calling: a request's credentials turned into a ``Principal``, and the dependencies.

- A platform authenticates with ``Authorization: Bearer tm_live_...`` (``api.apikeys``):
  32 random bytes in base58, stored only as SHA-256 (THREATS 37), looked up by that hash in
  one indexed query and kept in memory while no key is revoked (``api.keycache``). Every
  process re-reads the revocation generation at least every ``KEY_CACHE_SECONDS``, and
  ``revoke_api_key`` returns only after that long: once it has returned, no server accepts
  the key.
- A creator signs in with Ethereum (``api/siwe.py``) and gets ``tm_siwe_<claims>.<mac>``
  (``api.creatortokens``):
  stateless, HMAC-SHA256 under ``registry.derived_key("siwe-token")``, expiring.
- No header is the anonymous principal. Anything else (a malformed, unknown, revoked or
  expired credential; a credential in the URL) is 401 with one generic detail that never
  repeats what was sent. Neither a key nor a token is ever logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

from fastapi import Depends, FastAPI, Request
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.types import Scope

from api.apikeys import API_KEY_PREFIX, hash_api_key, is_api_key
from api.creatortokens import TOKEN_PREFIX, verify_creator_token
from api.keycache import KeyCache, KeyLookup
from api.network import client_address
from api.principal import CREATOR_SCOPE, PLATFORM_SCOPES, Forbidden, Principal, Unauthorized
from api.ratelimit import ANONYMOUS, HEALTH, SIGNED_WRITE, Check, RateLimiter
from registry.eip712 import checksum_address
from registry.errors import InvalidInput
from verifier.webhooks import SECRET_PREFIX as WEBHOOK_SECRET_PREFIX

if TYPE_CHECKING:
    from registry.service import Registry

logger = logging.getLogger("tracemark.api.auth")

#: Query parameters that would carry a credential in the URL, where proxies and access logs
#: keep it: always refused, even next to a valid header (THREATS 37).
QUERY_CREDENTIAL_PARAMS: Final = frozenset({"api_key", "apikey", "key", "token", "access_token"})
#: What a credential of ours starts with: a query parameter (any name, any value, with
#: whitespace or a scheme around it) that contains one is refused too (THREATS 37).
QUERY_CREDENTIAL_MARKERS: Final = (API_KEY_PREFIX, TOKEN_PREFIX, WEBHOOK_SECRET_PREFIX)
CREDENTIALS_IN_URL = (
    "credentials in the URL are refused (URLs end up in logs); "
    "send them only in the Authorization header"
)


def _key_principal(digest: bytes, row: tuple[Any, ...]) -> tuple[Principal | None, str]:
    """A key's principal, or None and why not: made once per key (``KeyCache``).

    A platform's principal carries no client address: nothing of a platform is keyed by it.
    """
    # The row was found by this very hash; compare anyway in constant time, so that the
    # decision never rests on a comparison that leaks timing.
    if not hmac.compare_digest(bytes(row[3]), digest):
        return None, "unknown API key"
    key_id, platform, scopes, _, revoked_at = row
    if revoked_at is not None:
        return None, f"revoked API key {key_id}"
    principal = Principal(
        kind="platform",
        platform=str(platform),
        scopes=frozenset(str(scopes).split()),
        key_id=int(key_id),
    )
    return principal, ""


class Authenticator:
    """Turns a request's credentials into a ``Principal`` (or ``Unauthorized``)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._token_key = registry.derived_key("siwe-token")
        self._keys = KeyCache(KeyLookup(registry.engine), parse=_key_principal)

    def close(self) -> None:
        """Close the key lookup's idle database connections."""
        self._keys.close()

    @property
    def token_key(self) -> bytes:
        return self._token_key

    def authenticate(self, request: HTTPConnection) -> Principal:
        # The client's address is parsed (``api.network``) only where it is used: a platform's
        # principal carries none, so the keyed hot path never parses it.
        scope = request.scope
        # 1. Credentials in the URL: refused whatever the header says. (Most requests have
        # no query string: skip parsing one then, this runs on every request.)
        if scope.get("query_string") and _credentials_in_query(request.query_params):
            logger.info(
                "refused a credential in the query string (client %s)", client_address(scope)
            )
            raise Unauthorized(CREDENTIALS_IN_URL, error="invalid_request")
        # 2. No Authorization header: anonymous. Read from the raw header list (names are
        # lower-case bytes in ASGI) rather than building a Headers object per request.
        headers = [v for k, v in scope["headers"] if k == b"authorization"]
        if not headers:
            return Principal.anonymous(client_address(scope))
        if len(headers) > 1:
            self._refuse("several Authorization headers", scope)
        scheme, _, credential = headers[0].decode("latin-1").strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            self._refuse("not a Bearer credential", scope)
        # 3. A platform's API key, or a creator's session token.
        if credential.startswith(API_KEY_PREFIX):
            return self._platform(credential, scope)
        if credential.startswith(TOKEN_PREFIX):
            return self._creator(credential, scope)
        self._refuse("unknown credential type", scope)

    def lookup_api_key(self, key: str) -> Principal | None:
        """The platform principal of a valid, unrevoked key; None for anything else."""
        principal, _ = self._lookup(key)
        return principal

    def _platform(self, key: str, scope: Scope) -> Principal:
        principal, reason = self._lookup(key)
        if principal is None:
            self._refuse(reason, scope)
        return principal

    def _lookup(self, key: str) -> tuple[Principal | None, str]:
        if not is_api_key(key):
            return None, "malformed API key"
        found: tuple[Principal | None, str] | None = self._keys.fetch(hash_api_key(key))
        return (None, "unknown API key") if found is None else found

    def _creator(self, token: str, scope: Scope) -> Principal:
        try:
            claims = verify_creator_token(
                self._token_key,
                token,
                now=self.registry.clock(),
                chain_id=self.registry.domain.chain_id,
            )
            address = checksum_address(bytes.fromhex(claims.address.removeprefix("0x")))
        except (Unauthorized, InvalidInput, ValueError):
            self._refuse("invalid or expired session token", scope)
        return Principal(
            kind="creator",
            scopes=frozenset({CREATOR_SCOPE}),
            creator=address,
            client_ip=client_address(scope),
        )

    @staticmethod
    def _refuse(reason: str, scope: Scope) -> NoReturn:
        # The reason is ours (never a piece of the credential); the client gets less, and the
        # log gets a parsed address, never a header's text.
        logger.info("authentication refused: %s (client %s)", reason, client_address(scope))
        raise Unauthorized()


def _credentials_in_query(params: QueryParams) -> bool:
    for name in params:
        if name.strip().lower() in QUERY_CREDENTIAL_PARAMS:
            return True
    # A key, token or webhook secret under any name, anywhere in a value ("Bearer tm_...",
    # " tm_live_..."), or as a parameter's name, is still a credential in a URL.
    for name, value in params.multi_items():
        if _looks_like_credential(name) or _looks_like_credential(value):
            return True
    return False


def _looks_like_credential(text: str) -> bool:
    folded = text.lower()
    return any(marker in folded for marker in QUERY_CREDENTIAL_MARKERS)


# -- FastAPI wiring --------------------------------------------------------------------------


def install(
    app: FastAPI, registry: Registry, *, limiter: RateLimiter | None = None
) -> Authenticator:
    """Put an ``Authenticator`` (and the ``RateLimiter`` that ``authenticated`` charges) on
    ``app.state`` (no globals)."""
    authenticator = Authenticator(registry)
    app.state.authenticator = authenticator
    app.state.limiter = limiter if limiter is not None else RateLimiter()
    return authenticator


def _authenticator(request: HTTPConnection) -> Authenticator:
    state = request.app.state
    found = getattr(state, "authenticator", None)
    if not isinstance(found, Authenticator):
        # Built on first use from the API's context object when ``install`` was not called.
        registry = getattr(getattr(state, "context", None), "registry", None)
        if registry is None:
            raise RuntimeError("no authenticator on app.state: call api.auth.install(app, ...)")
        found = state.authenticator = Authenticator(registry)
    return found


def _limiter(request: HTTPConnection) -> RateLimiter | None:
    state = request.app.state
    found = getattr(state, "limiter", None)
    if found is None:
        # The API's context object may carry it instead (``api/context.py``).
        found = getattr(getattr(state, "context", None), "limiter", None)
    return found if isinstance(found, RateLimiter) else None


def caller(
    request: HTTPConnection, *, anonymous_bucket: str = ANONYMOUS, health: bool = False
) -> Principal:
    """The caller, anonymous included; charges its request rate limit (an anonymous caller's
    to ``anonymous_bucket``). ``health``: a health probe, counted on the local share when
    shared limits cannot be reached (``RateLimiter.check``'s ``local_when_down``).

    Refused credentials are charged to the client IP's anonymous budget first, so a flood
    of bad keys turns into 429s. Cached on ``request.state.principal``.
    """
    # request.state's own dict (``request.state`` would build a wrapper per request).
    state = request.scope.setdefault("state", {})
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    authenticator = _authenticator(request)
    limiter = _limiter(request)
    try:
        principal = authenticator.authenticate(request)
    except Unauthorized:
        if limiter is not None:
            limiter.check(
                ANONYMOUS,
                Principal.anonymous(client_address(request.scope)).rate_key,
                local_when_down=health,
            )
        raise
    if limiter is not None:
        bucket = anonymous_bucket if principal.kind == "anonymous" else principal.request_bucket
        limiter.check(bucket, principal.rate_key, local_when_down=health)
    state["principal"] = principal
    return principal


async def awaited_caller(
    request: HTTPConnection,
    *,
    anonymous_bucket: str = ANONYMOUS,
    health: bool = False,
    defer: bool = False,
) -> Principal:
    """``caller`` from the event loop: its limit check awaited (at once in memory, on the
    loop's Redis client for a shared limiter).

    ``defer``: a platform's request charge is left for the handler to make with its own
    checks, in one round trip (``deferred_charges``; ``api.verify_front`` for a code lookup),
    and the caller of this function makes it (``charge_deferred``) if the handler did not."""
    state = request.scope.setdefault("state", {})
    cached = state.get("principal")
    if isinstance(cached, Principal):
        return cached
    limiter = _limiter(request)
    if limiter is None:
        return caller(request, anonymous_bucket=anonymous_bucket, health=health)
    # ``caller``'s steps, with its one limit check awaited (no thread hop: a shared limiter
    # awaits Redis on the event loop's client, ``api.sharedlimits``).
    try:
        principal = _authenticator(request).authenticate(request)
    except Unauthorized:
        await limiter.acheck(
            ANONYMOUS,
            Principal.anonymous(client_address(request.scope)).rate_key,
            local_when_down=health,
        )
        raise
    bucket = anonymous_bucket if principal.kind == "anonymous" else principal.request_bucket
    charge = Check(bucket, principal.rate_key, local_when_down=health)
    if defer and principal.kind == "platform":
        state[DEFERRED] = charge
    else:
        await limiter.acheck_all([charge])
    state["principal"] = principal
    return principal


#: ``request.state``'s entry for a request charge ``awaited_caller`` left to the handler.
DEFERRED: Final = "deferred_charge"


def deferred_charges(request: HTTPConnection) -> list[Check]:
    """The request charge left to the handler (taken: the handler makes it first among its
    own checks), or none."""
    charge = request.scope.get("state", {}).pop(DEFERRED, None)
    return [charge] if isinstance(charge, Check) else []


async def charge_deferred(request: HTTPConnection) -> None:
    """Make a deferred request charge the handler did not (it ended early, or failed)."""
    charges = deferred_charges(request)
    limiter = _limiter(request)
    if charges and limiter is not None:
        await limiter.acheck_all(charges)


async def authenticated(request: Request) -> Principal:
    """Dependency: ``caller``.

    NOTE: async on purpose. FastAPI runs a sync dependency in its thread pool, and that hop
    (plus the GIL hand-offs it brings) cost more than everything else a verify request does;
    the work here is one indexed lookup, cheaper than the hop. A shared limiter's checks,
    which wait for Redis, take the hop anyway (``awaited_caller``).
    """
    return await awaited_caller(request)


async def authenticated_health(request: Request) -> Principal:
    """Dependency for ``/livez`` and ``/readyz``: ``caller``, with an anonymous caller (a load
    balancer's check) charged to the ``health`` budget, counted in this replica only, not to
    the ``anonymous`` one its address shares across replicas (which the checks of several
    replicas used to exhaust, taking them out of rotation); and, for refused credentials,
    counted on the local share while shared limits are unreachable, so a load balancer sees
    a degraded replica rather than a refused one (``api.sharedfallback``)."""
    return await awaited_caller(request, anonymous_bucket=HEALTH, health=True)


async def authenticated_signed_write(request: Request) -> Principal:
    """Dependency for a creator's EIP-712-signed writes: ``caller``, with an anonymous caller
    charged to the ``signed_write`` budget rather than the public page's (``api.ratelimit``).
    The route still checks the signature; this only decides whose budget pays."""
    return await awaited_caller(request, anonymous_bucket=SIGNED_WRITE)


CurrentPrincipal = Annotated[Principal, Depends(authenticated)]


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: a platform key holding ``scope``; 401 if anonymous, else 403."""
    if scope not in PLATFORM_SCOPES:
        raise ValueError(f"unknown platform scope {scope!r}")

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind == "anonymous":
            raise Unauthorized(
                f"this needs a platform API key with the '{scope}' scope", error=None
            )
        if principal.kind != "platform" or scope not in principal.scopes:
            raise Forbidden(f"this needs a platform API key with the '{scope}' scope")
        return principal

    dependency.__name__ = f"require_scope_{scope}"
    return dependency


def require_any_scope(*scopes: str) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: a platform key holding one of ``scopes`` (an auditor's or a
    party's, for an order's evidence); 401 if anonymous, else 403."""
    unknown = set(scopes) - set(PLATFORM_SCOPES)
    if not scopes or unknown:
        raise ValueError(f"unknown platform scopes {sorted(unknown)!r}")
    named = " or ".join(f"'{scope}'" for scope in scopes)

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind == "anonymous":
            raise Unauthorized(f"this needs a platform API key with the {named} scope", error=None)
        if principal.kind != "platform" or not principal.scopes & set(scopes):
            raise Forbidden(f"this needs a platform API key with the {named} scope")
        return principal

    dependency.__name__ = "require_scope_" + "_or_".join(scopes)
    return dependency


def require_creator() -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: a creator signed in with Ethereum; 401 if anonymous, else 403."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.kind == "anonymous":
            raise Unauthorized("this needs a creator session: sign in with Ethereum", error=None)
        if principal.kind != "creator":
            raise Forbidden("this needs a creator session (sign in with Ethereum), not an API key")
        return principal

    dependency.__name__ = "require_creator"
    return dependency


__all__ = [
    "Authenticator",
    "CurrentPrincipal",
    "authenticated",
    "authenticated_signed_write",
    "awaited_caller",
    "caller",
    "charge_deferred",
    "deferred_charges",
    "install",
    "require_creator",
    "require_scope",
]
