"""Unix seconds a document carries, as UTC date text, for every number it may carry.

A document's times are ``uint64`` (up to 2^64 - 1, year ~5.8e11), but Python's ``datetime``
holds years 1 to 9999 only: ``datetime.fromtimestamp`` raises ``ValueError``, ``OverflowError``
or ``OSError`` (by size and platform) past them, and ``time.gmtime`` the last two. A verifier
must answer every document, hostile or odd, with a verdict, never a traceback; so every date it
writes goes through ``utc_text``, which writes a time no calendar date can show as the number
itself. A check that must refuse such a time (the registry never makes one) asks
``representable`` and says why.

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

FIRST_MOMENT: Final = -62_135_596_800
"""0001-01-01 00:00:00 UTC in Unix seconds: the first second ``datetime`` holds."""

LAST_MOMENT: Final = 253_402_300_799
"""9999-12-31 23:59:59 UTC in Unix seconds: the last second ``datetime`` holds. Threat: a
document whose time is later (a uint64 allows 2^64 - 1) made date formatting raise, a crash
instead of a verdict."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def representable(at: int) -> bool:
    """Whether ``at`` (Unix seconds) is a calendar date: years 1 to 9999, UTC."""
    return FIRST_MOMENT <= at <= LAST_MOMENT


def utc_text(at: int, pattern: str = "%Y-%m-%d %H:%M:%S UTC") -> str:
    """``at`` (Unix seconds) in UTC as ``pattern`` (``strftime``) lays it out; a time no
    calendar date can show (before year 1, after 9999) as ``"<at> (Unix seconds)"``. Never
    raises for any ``int``."""
    if not representable(at):
        return f"{at} (Unix seconds)"
    # NOTE: the epoch plus a timedelta, not ``fromtimestamp``: no platform ``time_t`` involved.
    return (_EPOCH + timedelta(seconds=at)).strftime(pattern)


__all__ = ["FIRST_MOMENT", "LAST_MOMENT", "representable", "utc_text"]
