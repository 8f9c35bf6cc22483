"""Cursor pagination: every list is ordered by an id and resumes after the last one seen.

Cursors are opaque to clients (base64url of the last id) so the ordering can change later
without breaking them; a malformed cursor is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii

from registry.errors import InvalidInput

#: Ids are signed 64-bit integers in both databases.
MAX_ID = 2**63 - 1


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, value = text.partition(":")
        if version != "v1" or not value.isascii() or not value.isdigit() or len(value) > 19:
            raise ValueError
        last = int(value)
        if last > MAX_ID:
            raise ValueError
        return last
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor is not one this API handed out") from exc


def next_cursor(ids: list[int], limit: int) -> str | None:
    """A cursor for the page after one that returned ``ids`` (None if it was the last)."""
    return encode_cursor(ids[-1]) if len(ids) == limit and ids else None
