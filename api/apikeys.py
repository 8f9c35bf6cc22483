"""Platform API keys: their format (``tm_live_`` and 32 random bytes in base58) and their rows.

A key is stored only as its SHA-256 (THREATS 37); it is shown once, when made.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from api.keycache import KEY_CACHE_SECONDS
from api.models import ApiKey, ApiKeyGeneration, Platform
from api.principal import PLATFORM_SCOPES
from registry.db import read_transaction, write_transaction
from registry.errors import InvalidInput, NotFound
from registry.parties import check_platform_id

logger = logging.getLogger("tracemark.api.auth")

API_KEY_PREFIX: Final = "tm_live_"
#: Random bytes in a key: 256 bits, beyond any guessing.
API_KEY_BYTES: Final = 32
#: Bitcoin's base58 alphabet: no 0/O, no I/l, so a key read aloud or retyped stays intact.
BASE58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: Characters of base58 after the prefix (32 bytes always fit in 44; shorter are left-padded).
API_KEY_BODY_LENGTH: Final = 44
#: Characters of the body shown in listings (``tm_live_AbCdEfGh``): names a key, is no key.
API_KEY_SHOWN_CHARS: Final = 8
#: Longest API-key label.
MAX_LABEL_LENGTH: Final = 200

_API_KEY_RE = re.compile(
    re.escape(API_KEY_PREFIX) + "[" + BASE58_ALPHABET + "]{" + str(API_KEY_BODY_LENGTH) + r"}\Z"
)
_PREFIX_RE = re.compile(
    re.escape(API_KEY_PREFIX) + "[" + BASE58_ALPHABET + "]{" + str(API_KEY_SHOWN_CHARS) + r"}\Z"
)


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
    """A platform id: 1-64 of lower-case letters, digits and inner dashes (``cardhub``), as
    ``registry.parties.check_platform_id`` checks it; the operator's error shows an example."""
    try:
        return check_platform_id(platform)
    except InvalidInput as exc:
        raise InvalidInput(f"{exc.detail}, e.g. cardhub") from None


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


__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyInfo",
    "base58_encode",
    "create_api_key",
    "generate_api_key",
    "hash_api_key",
    "is_api_key",
    "list_api_keys",
    "parse_platform_id",
    "parse_scopes",
    "revoke_api_key",
]
