"""Idempotency-Key replay: the reply stored for a (principal, key), and reuse detection.

A client that retries a write with the same ``Idempotency-Key`` gets the first reply back
instead of a second effect; the same key with a different request is refused (422), never
silently replayed. Keys live ``IDEMPOTENCY_TTL`` seconds, then count as unused.

NOTE: this replays *completed* requests. Two copies of one request in flight at the same
moment both miss the lookup; the write they make must itself be idempotent (the registry's
``transfers`` table is UNIQUE on (platform, idempotency_key) for exactly that reason), and
``store_idempotent`` then keeps the first reply and hands it to the second.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from api.models import IdempotencyKey
from registry.db import read_transaction, write_transaction
from registry.errors import IdempotencyKeyReused, InvalidInput

#: How long a stored reply is replayed (seconds): a day, as common APIs do.
IDEMPOTENCY_TTL: Final = 24 * 3600
#: Longest ``Idempotency-Key`` (printable ASCII): bounds what a client makes us store.
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 128

_table = IdempotencyKey.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StoredResponse:
    """A reply as first sent, to send again byte for byte."""

    status_code: int
    body: str
    media_type: str
    created_at: int


def request_hash(method: str, path: str, body: bytes) -> bytes:
    """SHA-256 over what makes two requests "the same": method, path (with query), body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def parse_idempotency_key(key: str) -> str:
    """1-128 printable ASCII characters, else ``InvalidInput`` (400)."""
    if (
        not isinstance(key, str)
        or not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not key.isascii()
        or not key.isprintable()
    ):
        raise InvalidInput(
            f"an Idempotency-Key is 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
    return key


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def _stored(row: Any) -> StoredResponse:
    return StoredResponse(
        status_code=int(row.status_code),
        body=row.body,
        media_type=row.media_type,
        created_at=int(row.created_at),
    )


def _select(conn: Connection, principal: str, key: str) -> Any:
    query = select(_table).where(_table.c.principal == principal, _table.c.key == key)
    return conn.execute(query).first()


def lookup_idempotent(
    engine: Engine,
    principal: str,
    key: str,
    request_hash: bytes,
    *,
    now: int | None = None,
    ttl: int = IDEMPOTENCY_TTL,
) -> StoredResponse | None:
    """The stored reply for this principal's key, None if unused (or expired); raises
    ``IdempotencyKeyReused`` if the key came with another request."""
    key = parse_idempotency_key(key)
    with read_transaction(engine) as conn:
        row = _select(conn, principal, key)
    if row is None or int(row.created_at) <= _now(now) - ttl:
        return None
    if bytes(row.request_hash) != request_hash:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key"
        )
    return _stored(row)


def store_idempotent(
    engine: Engine,
    principal: str,
    key: str,
    request_hash: bytes,
    status: int,
    body: str,
    media_type: str,
    *,
    now: int | None = None,
    ttl: int = IDEMPOTENCY_TTL,
) -> StoredResponse:
    """Keep the reply to replay. If a concurrent copy stored first, its reply is kept and
    returned (send that one); if the key is live for another request, raises
    ``IdempotencyKeyReused``."""
    key = parse_idempotency_key(key)
    at = _now(now)
    values = {
        "principal": principal,
        "key": key,
        "request_hash": request_hash,
        "status_code": status,
        "body": body,
        "media_type": media_type,
        "created_at": at,
    }
    mine = StoredResponse(status, body, media_type, at)
    with write_transaction(engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        inserted = conn.execute(dialect.insert(_table).values(values).on_conflict_do_nothing())
        if inserted.rowcount == 1:
            return mine
        row = _select(conn, principal, key)
        if int(row.created_at) <= at - ttl:
            conn.execute(
                update(_table)
                .where(_table.c.principal == principal, _table.c.key == key)
                .values(values)
            )
            return mine
        if bytes(row.request_hash) != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different request; use a new key"
            )
        return _stored(row)


def purge_idempotent(engine: Engine, *, now: int | None = None, ttl: int = IDEMPOTENCY_TTL) -> int:
    """Delete replies older than ``ttl``; how many went (for a periodic housekeeping task)."""
    with write_transaction(engine) as conn:
        result = conn.execute(delete(_table).where(_table.c.created_at <= _now(now) - ttl))
        return int(result.rowcount)


__all__ = [
    "IDEMPOTENCY_TTL",
    "MAX_IDEMPOTENCY_KEY_LENGTH",
    "IdempotencyKeyReused",
    "StoredResponse",
    "lookup_idempotent",
    "parse_idempotency_key",
    "purge_idempotent",
    "request_hash",
    "store_idempotent",
]
