"""Who is calling: platform API keys, creators' session tokens (after SIWE), FastAPI dependencies.

- A platform authenticates with ``Authorization: Bearer tm_live_...``: 32 random bytes in
  base58, stored only as SHA-256 (THREATS 37), looked up by that hash in one indexed query
  and kept in memory while no key is revoked (``KeyCache``). Every process re-reads the
  revocation generation at least every ``KEY_CACHE_SECONDS``, and ``revoke_api_key`` returns
  only after that long: once it has returned, no server accepts the key.
- A creator signs in with Ethereum (``api/siwe.py``) and gets ``tm_siwe_<claims>.<mac>``:
  stateless, HMAC-SHA256 under ``registry.derived_key("siwe-token")``, expiring.
- No header is the anonymous principal. Anything else (a malformed, unknown, revoked or
  expired credential; a credential in the URL) is 401 with one generic detail that never
  repeats what was sent. Neither a key nor a token is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, NoReturn

from fastapi import Depends, FastAPI, Request
from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection
from starlette.types import Scope

from api.models import PLATFORM_ID_MAX, ApiKey, ApiKeyGeneration, Platform
from api.network import client_address
from api.ratelimit import ANONYMOUS, API_KEY, AUDITOR, CREATOR, SIGNED_WRITE, RateLimiter
from registry.db import read_transaction, write_transaction
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, NotFound, TracemarkError
from verifier.webhooks import SECRET_PREFIX as WEBHOOK_SECRET_PREFIX

if TYPE_CHECKING:
    from registry.service import Registry

logger = logging.getLogger("tracemark.api.auth")

API_KEY_PREFIX: Final = "tm_live_"
TOKEN_PREFIX: Final = "tm_siwe_"  # noqa: S105 (a prefix, not a secret)
#: Random bytes in a key: 256 bits, beyond any guessing.
API_KEY_BYTES: Final = 32
#: Bitcoin's base58 alphabet: no 0/O, no I/l, so a key read aloud or retyped stays intact.
BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: Characters of base58 after the prefix (32 bytes always fit in 44; shorter are left-padded).
API_KEY_BODY_LENGTH: Final = 44
#: Characters of the body shown in listings (``tm_live_AbCdEfGh``): names a key, is no key.
API_KEY_SHOWN_CHARS: Final = 8
#: The scopes a platform key can hold; creators hold ``creator`` only.
PLATFORM_SCOPES: Final = frozenset({"verify", "transfer", "audit"})
CREATOR_SCOPE: Final = "creator"
#: A session token lives an hour unless the SIWE message's Expiration Time ends it sooner.
TOKEN_TTL: Final = 3600
#: Longest token accepted: bounds the MAC and JSON work an unauthenticated caller can cause.
MAX_TOKEN_LENGTH: Final = 512
#: Longest API-key label.
MAX_LABEL_LENGTH: Final = 200
#: Query parameters that would carry a credential in the URL, where proxies and access logs
#: keep it: always refused, even next to a valid header (THREATS 37).
QUERY_CREDENTIAL_PARAMS: Final = frozenset({"api_key", "apikey", "key", "token", "access_token"})
#: What a credential of ours starts with: a query parameter (any name, any value, with
#: whitespace or a scheme around it) that contains one is refused too (THREATS 37).
QUERY_CREDENTIAL_MARKERS: Final = (API_KEY_PREFIX, TOKEN_PREFIX, WEBHOOK_SECRET_PREFIX)

_API_KEY_RE = re.compile(
    re.escape(API_KEY_PREFIX) + "[" + BASE58_ALPHABET + "]{" + str(API_KEY_BODY_LENGTH) + r"}\Z"
)
_PREFIX_RE = re.compile(
    re.escape(API_KEY_PREFIX) + "[" + BASE58_ALPHABET + "]{" + str(API_KEY_SHOWN_CHARS) + r"}\Z"
)
_PLATFORM_RE = re.compile(rf"[a-z0-9](?:[a-z0-9-]{{0,{PLATFORM_ID_MAX - 2}}}[a-z0-9])?\Z")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+\Z")

#: The one detail of every refused credential: it says what to send, never what was sent.
BAD_CREDENTIALS = (
    "missing, malformed, unknown, revoked or expired credentials; "
    "send 'Authorization: Bearer <API key or session token>'"
)
CREDENTIALS_IN_URL = (
    "credentials in the URL are refused (URLs end up in logs); "
    "send them only in the Authorization header"
)

Kind = Literal["platform", "creator", "anonymous"]


# -- errors ----------------------------------------------------------------------------------


class Unauthorized(TracemarkError):
    """No acceptable credentials (401, ``WWW-Authenticate: Bearer``).

    ``error`` is the RFC 6750 §3.1 code for the challenge: ``invalid_token`` when a
    credential was presented and refused, None when there was none to refuse.
    """

    code = "unauthorized"
    http_status = 401
    diagnostics = "Send a valid API key (Authorization: Bearer tm_live_...) or sign in again."

    def __init__(self, detail: str = BAD_CREDENTIALS, *, error: str | None = "invalid_token"):
        super().__init__(detail)
        self.error = error


class Forbidden(TracemarkError):
    """Authenticated, but this principal's role or scopes do not allow the call (403)."""

    code = "forbidden"
    http_status = 403
    diagnostics = "Use a credential with the role or scope the detail names."


# -- principals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who made a request, as far as the API is concerned."""

    kind: Kind
    platform: str | None = None
    scopes: frozenset[str] = frozenset()
    #: The creator's EIP-55 checksummed address.
    creator: str | None = None
    key_id: int | None = None
    client_ip: str | None = None

    def __post_init__(self) -> None:
        if self.kind == "platform":
            if self.platform is None or self.key_id is None or not self.scopes <= PLATFORM_SCOPES:
                raise ValueError("a platform principal needs a platform, a key id, its scopes")
        elif self.kind == "creator":
            if self.creator is None or self.scopes != frozenset({CREATOR_SCOPE}):
                raise ValueError("a creator principal needs an address and the creator scope")
        elif self.kind == "anonymous":
            if self.platform or self.creator or self.key_id is not None or self.scopes:
                raise ValueError("an anonymous principal has no identity and no scopes")
        else:
            raise ValueError(f"unknown principal kind {self.kind!r}")

    @classmethod
    def anonymous(cls, client_ip: str | None) -> Principal:
        return cls(kind="anonymous", client_ip=client_ip)

    @property
    def rate_key(self) -> str:
        """The rate limiter's key: ``key:<id>``, ``creator:<address>`` or ``ip:<addr>``."""
        if self.kind == "platform":
            return f"key:{self.key_id}"
        if self.kind == "creator":
            return f"creator:{self.creator}"
        return f"ip:{self.client_ip or 'unknown'}"

    @property
    def address_key(self) -> str:
        """The client address's key (``ip:<addr>``), whoever the principal is: what the public
        tier charges, so that fresh wallets from one address share one budget."""
        return f"ip:{self.client_ip or 'unknown'}"

    @property
    def owner(self) -> str:
        """Who owns what this principal creates (idempotency keys, jobs): ``platform:<id>``
        (every key of one platform alike), ``creator:<address>`` or ``ip:<addr>``."""
        if self.kind == "platform":
            return f"platform:{self.platform}"
        return self.rate_key

    @property
    def request_bucket(self) -> str:
        """The rate limit every request of this principal is charged to.

        Keys with the ``audit`` scope get the auditors' higher limit: they must keep up with
        the log's growth (THREATS 38).
        """
        if self.kind == "platform":
            return AUDITOR if "audit" in self.scopes else API_KEY
        if self.kind == "creator":
            return CREATOR
        return ANONYMOUS


# -- API keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as listings show it: never the key, never its hash."""

    id: int
    platform: str
    prefix: str
    scopes: frozenset[str]
    label: str
    created_at: int
    revoked_at: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platform": self.platform,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def base58_encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet) of ``data`` read as one big-endian number."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, digit = divmod(number, 58)
        digits.append(BASE58_ALPHABET[digit])
    return "".join(reversed(digits))


def generate_api_key() -> str:
    """A fresh key: ``tm_live_`` and 44 base58 characters (32 random bytes)."""
    body = base58_encode(secrets.token_bytes(API_KEY_BYTES)).rjust(API_KEY_BODY_LENGTH, "1")
    return API_KEY_PREFIX + body


def hash_api_key(key: str) -> bytes:
    """SHA-256 of the whole key: all the database ever holds of it."""
    return hashlib.sha256(key.encode("ascii")).digest()


def is_api_key(text: str) -> bool:
    """Whether ``text`` has the exact shape of an API key (no database involved)."""
    return _API_KEY_RE.match(text) is not None


def parse_platform_id(platform: str) -> str:
    """A platform id: 1-64 of lower-case letters, digits and inner dashes (``cardhub``)."""
    if not isinstance(platform, str) or not _PLATFORM_RE.match(platform):
        raise InvalidInput(
            f"a platform id is 1-{PLATFORM_ID_MAX} lower-case letters, digits and dashes "
            "(not at either end), e.g. cardhub"
        )
    return platform


def parse_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """A platform key's scopes: at least one of verify, transfer, audit."""
    chosen = frozenset(scopes)
    unknown = chosen - PLATFORM_SCOPES
    if unknown or not chosen:
        raise InvalidInput(
            "scopes must be one or more of "
            + ", ".join(sorted(PLATFORM_SCOPES))
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
        )
    return chosen


def _parse_label(label: str) -> str:
    if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise InvalidInput(f"a label is at most {MAX_LABEL_LENGTH} printable characters")
    return label


_keys_t = ApiKey.__table__  # type: ignore[attr-defined]
_platforms_t = Platform.__table__  # type: ignore[attr-defined]
_INFO_COLUMNS = (
    _keys_t.c.id,
    _keys_t.c.platform_id,
    _keys_t.c.prefix,
    _keys_t.c.scopes,
    _keys_t.c.label,
    _keys_t.c.created_at,
    _keys_t.c.revoked_at,
)
#: The per-request lookup: one probe of the UNIQUE index on key_hash.
_LOOKUP_SQL = (
    "SELECT id, platform_id, scopes, key_hash, revoked_at FROM api_keys WHERE key_hash = {p}"
)
#: The revocation generation (``api_key_generation``), which every revocation bumps.
_GENERATION_SQL = "SELECT generation FROM api_key_generation WHERE id = 1"
#: Idle driver connections the key lookup keeps for reuse.
_LOOKUP_IDLE_CONNECTIONS = 8
#: How stale the API's view of revocations may be, in seconds: each process re-reads the
#: generation when its last read is this old, and a revocation waits this long to return.
KEY_CACHE_SECONDS: Final = 0.25
#: Most key rows held in memory (a few hundred bytes each); the cache empties when full.
KEY_CACHE_MAX: Final = 65_536


class _KeyLookup:
    """The per-request API-key read through the raw driver, in autocommit.

    NOTE: the SQLAlchemy path (pool checkout with its pre-ping, BEGIN, the query, ROLLBACK)
    cost ~200 us on SQLite and ~550 us on PostgreSQL per request here; this costs one
    statement (~30 us on SQLite). Connections are taken from a small free list and detached
    from the engine's pool, so they never starve it; how many exist is the peak number of
    lookups at the same instant, not the number of threads. Autocommit: every lookup sees
    every committed revocation, and no snapshot stays open between requests.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
        self._sql = _LOOKUP_SQL.format(p=placeholder)
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def _acquire(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        conn = self.engine.raw_connection()
        if self.engine.dialect.name == "postgresql":
            conn.driver_connection.autocommit = True  # type: ignore[union-attr]
        conn.detach()
        return conn

    def _release(self, conn: Any) -> None:
        with self._lock:
            if len(self._free) < _LOOKUP_IDLE_CONNECTIONS:
                self._free.append(conn)
                return
        conn.close()

    def fetch(self, digest: bytes) -> tuple[Any, ...] | None:
        """The key's row (id, platform, scopes, key_hash, revoked_at), or None."""
        return self._one(self._sql, (digest,))

    def generation(self) -> int:
        """The revocation generation (0 where the table has no row yet)."""
        row = self._one(_GENERATION_SQL, ())
        return 0 if row is None else int(row[0])

    def _one(self, sql: str, parameters: tuple[Any, ...]) -> tuple[Any, ...] | None:
        error = self.engine.dialect.loaded_dbapi.Error
        for attempt in (1, 2):
            conn = self._acquire()
            try:
                # The driver's own connection: the pool's proxy adds a layer per call.
                cursor = conn.dbapi_connection.cursor()
                cursor.execute(sql, parameters)
                row = cursor.fetchone()
                cursor.close()
            except error:
                # A connection the server dropped: discard it and try once with a new one.
                conn.close()
                if attempt == 2:
                    raise
                continue
            self._release(conn)
            return None if row is None else tuple(row)
        return None  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for conn in free:
            conn.close()


class KeyCache:
    """API-key rows by hash, kept in memory while the revocation generation stays the same.

    NOTE: the issue's benchmark holds verify to half a bare endpoint's throughput, and a key
    lookup per request was a tenth of verify's cost. Revocations are rare, so rows stay
    until one happens. The generation is re-read on the first request that finds the last
    read ``KEY_CACHE_SECONDS`` old; a change empties the cache. Only found keys are kept
    (unknown ones would let anyone fill memory), revoked ones included, since a revocation
    is final. A row read while a revocation commits is kept only if the generation has not
    moved meanwhile, so it cannot outlive the revocation.
    """

    def __init__(
        self,
        lookup: _KeyLookup,
        *,
        parse: Callable[[bytes, tuple[Any, ...]], Any] = lambda _digest, row: row,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        #: What is kept of a found row (by default the row itself): work done once per key.
        self._parse = parse
        self._clock = clock
        self._kept: dict[bytes, Any] = {}
        self._generation: int | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def fetch(self, digest: bytes) -> Any:
        """``parse(digest, row)`` for the key with this hash, or None if there is none."""
        now = self._clock()
        if now - self._read_at >= KEY_CACHE_SECONDS:
            self._refresh(now)
        kept = self._kept.get(digest)
        if kept is not None:
            return kept
        generation = self._generation
        row = self._lookup.fetch(digest)
        if row is None:
            return None
        kept = self._parse(digest, row)
        with self._lock:
            if self._generation == generation:
                if len(self._kept) >= KEY_CACHE_MAX:
                    self._kept.clear()
                self._kept[digest] = kept
        return kept

    def _refresh(self, started: float) -> None:
        generation = self._lookup.generation()
        with self._lock:
            if generation != self._generation:
                self._kept.clear()
                self._generation = generation
            # The time before the read: what it saw is at least that fresh.
            self._read_at = started

    def close(self) -> None:
        with self._lock:
            self._kept.clear()
            self._generation = None
            self._read_at = float("-inf")
        self._lookup.close()


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=int(row.id),
        platform=row.platform_id,
        prefix=row.prefix,
        scopes=frozenset(row.scopes.split()),
        label=row.label,
        created_at=int(row.created_at),
        revoked_at=None if row.revoked_at is None else int(row.revoked_at),
    )


def _ensure_platform(conn: Connection, platform: str, name: str, now: int) -> None:
    values = {"id": platform, "name": name, "created_at": now}
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(_platforms_t).values(values).on_conflict_do_nothing())
    else:
        conn.execute(sqlite.insert(_platforms_t).values(values).on_conflict_do_nothing())


def create_api_key(
    engine: Engine,
    platform: str,
    scopes: Iterable[str],
    label: str,
    now: int,
    *,
    platform_name: str | None = None,
) -> tuple[str, ApiKeyInfo]:
    """Make a key for ``platform`` (creating the platform if new): the key, shown once, and
    what listings will show of it."""
    platform = parse_platform_id(platform)
    chosen = parse_scopes(scopes)
    label = _parse_label(label)
    name = _parse_label(platform_name) if platform_name else platform
    key = generate_api_key()
    prefix = key[: len(API_KEY_PREFIX) + API_KEY_SHOWN_CHARS]
    with write_transaction(engine) as conn:
        _ensure_platform(conn, platform, name, now)
        result = conn.execute(
            _keys_t.insert().values(
                platform_id=platform,
                prefix=prefix,
                key_hash=hash_api_key(key),
                scopes=" ".join(sorted(chosen)),
                label=label,
                created_at=now,
                revoked_at=None,
            )
        )
        inserted = result.inserted_primary_key
        assert inserted is not None
        key_id = int(inserted[0])
    info = ApiKeyInfo(key_id, platform, prefix, chosen, label, now, None)
    logger.info("API key %d (%s) created for platform %s", key_id, prefix, platform)
    return key, info


def list_api_keys(engine: Engine, platform: str | None = None) -> list[ApiKeyInfo]:
    """Every key (of one platform), oldest first, revoked ones included."""
    query = select(*_INFO_COLUMNS).order_by(_keys_t.c.id)
    if platform is not None:
        query = query.where(_keys_t.c.platform_id == parse_platform_id(platform))
    with read_transaction(engine) as conn:
        return [_info(row) for row in conn.execute(query)]


def revoke_api_key(
    engine: Engine, key_id_or_prefix: int | str, now: int
) -> tuple[ApiKeyInfo, bool]:
    """Revoke one key, named by its id, its listed prefix (``tm_live_AbCdEfGh``) or the
    whole key. Returns the key as now stored and whether this call revoked it (False: it
    already was).

    The revocation bumps the generation in the same transaction, and the call returns only
    after ``KEY_CACHE_SECONDS``: by then every server has re-read the generation, so none
    accepts the key any more (THREATS 37: effective once the operator is told it is done).
    """
    condition = _key_condition(key_id_or_prefix)
    with write_transaction(engine) as conn:
        rows = conn.execute(select(*_INFO_COLUMNS).where(condition)).all()
        if not rows:
            raise NotFound("no API key matches that id or prefix")
        if len(rows) > 1:
            raise InvalidInput(f"that prefix matches {len(rows)} keys; revoke by id")
        info = _info(rows[0])
        if info.revoked_at is not None:
            return info, False
        conn.execute(
            update(_keys_t)
            .where(_keys_t.c.id == info.id, _keys_t.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        _bump_generation(conn)
    time.sleep(KEY_CACHE_SECONDS)
    logger.info("API key %d (%s) of platform %s revoked", info.id, info.prefix, info.platform)
    return replace(info, revoked_at=now), True


_generation_t = ApiKeyGeneration.__table__  # type: ignore[attr-defined]


def _bump_generation(conn: Connection) -> None:
    bumped = conn.execute(
        update(_generation_t)
        .where(_generation_t.c.id == 1)
        .values(generation=_generation_t.c.generation + 1)
    )
    if bumped.rowcount == 0:  # a database that never had the row: one revocation so far
        conn.execute(_generation_t.insert().values(id=1, generation=1))


def _key_condition(key_id_or_prefix: int | str) -> Any:
    if isinstance(key_id_or_prefix, int) and not isinstance(key_id_or_prefix, bool):
        return _keys_t.c.id == key_id_or_prefix
    text = str(key_id_or_prefix).strip()
    if text.isascii() and text.isdigit() and len(text) <= 19:
        return _keys_t.c.id == int(text)
    if _PREFIX_RE.match(text):
        return _keys_t.c.prefix == text
    if is_api_key(text):
        return _keys_t.c.key_hash == hash_api_key(text)
    # Never echo the argument: it may be a (mistyped) key.
    raise InvalidInput(
        f"name a key by its id, its prefix ({API_KEY_PREFIX} and {API_KEY_SHOWN_CHARS} "
        "characters, as listed) or the whole key"
    )


# -- creator session tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class CreatorClaims:
    """What a valid creator token says."""

    address: str
    chain_id: int
    issued_at: int
    expires_at: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Unpadded base64url (RFC 4648 §5), canonical only: unused trailing bits are zero
    (§3.5), so each token has exactly one spelling."""
    if not _B64URL_RE.match(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _token_mac(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def issue_creator_token(
    key: bytes, address: str, *, chain_id: int, now: int, expires_at: int
) -> str:
    """``tm_siwe_`` + base64url(JSON claims) + ``.`` + base64url(HMAC-SHA256 of what precedes)."""
    if expires_at <= now:
        raise ValueError("a token must expire after it is issued")
    claims = {
        "sub": address,
        "scope": CREATOR_SCOPE,
        "iat": now,
        "exp": expires_at,
        "chain": chain_id,
    }
    document = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode("utf-8")
    body = TOKEN_PREFIX + _b64encode(document)
    return body + "." + _b64encode(_token_mac(key, body))


def verify_creator_token(key: bytes, token: str, *, now: int, chain_id: int) -> CreatorClaims:
    """The claims of a token this registry issued for this chain and that has not expired.

    Raises ``Unauthorized`` (generic detail) for anything else.
    """
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized()
    body, dot, mac_text = token.rpartition(".")
    try:
        mac = _b64decode(mac_text) if dot else b""
        # 1. The MAC, before anything in the token is believed or even parsed.
        if not hmac.compare_digest(mac, _token_mac(key, body)):
            raise Unauthorized()
        claims = json.loads(_b64decode(body[len(TOKEN_PREFIX) :]))
    except (ValueError, binascii.Error, UnicodeError):
        raise Unauthorized() from None
    # 2. The claims' shape (ours, so a mismatch means a bug or a key reused elsewhere).
    if not isinstance(claims, dict) or claims.get("scope") != CREATOR_SCOPE:
        raise Unauthorized()
    address, iat, exp, chain = (claims.get(k) for k in ("sub", "iat", "exp", "chain"))
    if not (
        isinstance(address, str)
        and isinstance(iat, int)
        and isinstance(exp, int)
        and isinstance(chain, int)
    ):
        raise Unauthorized()
    # 3. Bound to this chain, and not expired.
    if chain != chain_id or not now < exp:
        raise Unauthorized()
    return CreatorClaims(address=address, chain_id=chain, issued_at=iat, expires_at=exp)


# -- the authenticator -----------------------------------------------------------------------


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
        self._keys = KeyCache(_KeyLookup(registry.engine), parse=_key_principal)

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


def caller(request: HTTPConnection, *, anonymous_bucket: str = ANONYMOUS) -> Principal:
    """The caller, anonymous included; charges its request rate limit (an anonymous caller's
    to ``anonymous_bucket``).

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
            limiter.check(ANONYMOUS, Principal.anonymous(client_address(request.scope)).rate_key)
        raise
    if limiter is not None:
        bucket = anonymous_bucket if principal.kind == "anonymous" else principal.request_bucket
        limiter.check(bucket, principal.rate_key)
    state["principal"] = principal
    return principal


async def authenticated(request: Request) -> Principal:
    """Dependency: ``caller``.

    NOTE: async on purpose. FastAPI runs a sync dependency in its thread pool, and that hop
    (plus the GIL hand-offs it brings) cost more than everything else a verify request does;
    the work here is one indexed lookup, cheaper than the hop.
    """
    return caller(request)


async def authenticated_signed_write(request: Request) -> Principal:
    """Dependency for a creator's EIP-712-signed writes: ``caller``, with an anonymous caller
    charged to the ``signed_write`` budget rather than the public page's (``api.ratelimit``).
    The route still checks the signature; this only decides whose budget pays."""
    return caller(request, anonymous_bucket=SIGNED_WRITE)


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
    "API_KEY_PREFIX",
    "KEY_CACHE_SECONDS",
    "PLATFORM_SCOPES",
    "TOKEN_PREFIX",
    "TOKEN_TTL",
    "ApiKeyInfo",
    "Authenticator",
    "CreatorClaims",
    "CurrentPrincipal",
    "Forbidden",
    "KeyCache",
    "Principal",
    "Unauthorized",
    "authenticated",
    "authenticated_signed_write",
    "base58_encode",
    "caller",
    "create_api_key",
    "generate_api_key",
    "hash_api_key",
    "install",
    "issue_creator_token",
    "list_api_keys",
    "parse_platform_id",
    "parse_scopes",
    "require_creator",
    "require_scope",
    "revoke_api_key",
    "verify_creator_token",
]
