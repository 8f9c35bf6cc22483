"""A platform's write under an Idempotency-Key, looked up again: the id of the row an earlier
request with the same (platform, key) wrote, or a refusal when that earlier request was
another one.

Orders, transfers and payouts each keep (platform, idempotency_key) UNIQUE with the request's
hash beside it, so one lookup serves all three. (``api.idempotency`` is the layer above: it
replays a whole HTTP reply; this one the registry's own write, which a retry that missed the
reply store, or raced it, still meets.)
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Connection, Table, select

from registry.errors import IdempotencyKeyReused


class KeyedRequest(Protocol):
    """What every keyed write request carries (orders', transfers', payouts')."""

    @property
    def platform(self) -> str | None: ...
    @property
    def idempotency_key(self) -> str | None: ...
    def request_hash(self) -> bytes: ...


def earlier_write(conn: Connection, table: Table, request: KeyedRequest, what: str) -> int | None:
    """The id of ``table``'s row written under the request's (platform, Idempotency-Key);
    ``None`` without a key or an earlier row. ``IdempotencyKeyReused`` (422) if that row was
    written for a different request (``what`` names the kind: "order", "transfer", ...)."""
    if request.idempotency_key is None:
        return None
    c = table.c
    row = conn.execute(
        select(c.id, c.request_hash).where(
            c.platform == request.platform, c.idempotency_key == request.idempotency_key
        )
    ).first()
    if row is None:
        return None
    if bytes(row.request_hash) != request.request_hash():
        raise IdempotencyKeyReused(
            f"this Idempotency-Key was used for a different {what}; use a new key"
        )
    return int(row.id)


__all__ = ["KeyedRequest", "earlier_write"]
