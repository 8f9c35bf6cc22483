"""Cursor pagination: every list is ordered by an id and resumes after the last one seen.

Cursors are opaque to clients (base64url of the last id) so the ordering can change later
without breaking them; a malformed cursor is a 400, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Final

from fastapi import Query

from registry.errors import InvalidInput

#: Ids are signed 64-bit integers in both databases.
MAX_ID = 2**63 - 1

# NOTE: the cursor's grammar, exactly: base64url (unpadded) of "v1:" and 1-19 decimal digits.
# "v1:" is always "djE6"; each group of three digits is one of the four-character groups
# below, and one or two trailing digits make the two- or three-character tails. Written out
# so the OpenAPI document is no looser than ``decode_cursor`` (a fuzzer's "valid" cursor is
# one the API accepts, unless its number passes ``MAX_ID``).
_FIRST = "(?:[MN][DTjz]|O[DT])"  # a digit's top six bits, then two of its four low bits
_THREE = f"{_FIRST}[AEIMQUYcgk][w-z0-5]"
_ONE = "(?:[MN][AQgw]|O[AQ])"
_TWO = f"{_FIRST}[AEIMQUYcgk]"
#: Every cursor ``encode_cursor`` can make, and nothing else.
CURSOR_PATTERN: Final = (
    f"^djE6(?:(?:{_THREE}){{1,6}}|(?:{_THREE}){{0,6}}{_ONE}|(?:{_THREE}){{0,5}}{_TWO})$"
)
#: The longest cursor: "v1:" and 19 digits (22 bytes) in base64url.
CURSOR_MAX_LENGTH: Final = 30
_CURSOR = re.compile(CURSOR_PATTERN)

#: A list route's ``cursor`` query parameter, as tight in the OpenAPI as in the decoder.
Cursor = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_MAX_LENGTH,
        description="The next_cursor of the previous page (opaque); absent for the first page",
    ),
]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The id after which the next page starts (0 for the first page)."""
    if cursor is None:
        return 0
    if len(cursor) > CURSOR_MAX_LENGTH or not _CURSOR.match(cursor):
        # Before decoding: base64 decoders skip characters outside the alphabet.
        raise InvalidInput("cursor is not one this API handed out")
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
