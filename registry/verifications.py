"""Verification telemetry: who verified which good, how often, and since when.

These rows are telemetry, not acknowledged writes: the API buffers verification events and
writes them here in batches behind the requests (a verify answer may lag by about a second),
because one upsert per request would cost a verify endpoint most of its throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Table, func, select, text

from registry.models import VerificationCount, VerificationEvent

counts_t: Table = VerificationCount.__table__  # type: ignore[attr-defined]
events_t: Table = VerificationEvent.__table__  # type: ignore[attr-defined]

#: The same statement on SQLite (>= 3.24) and PostgreSQL.
_UPSERT = text(
    "INSERT INTO verification_counts (good_type, fingerprint, platform, count, first_at, last_at)"
    " VALUES (:good_type, :fingerprint, :platform, :count, :first_at, :last_at)"
    " ON CONFLICT (good_type, fingerprint, platform) DO UPDATE SET"
    " count = verification_counts.count + excluded.count,"
    " first_at = MIN(verification_counts.first_at, excluded.first_at),"
    " last_at = MAX(verification_counts.last_at, excluded.last_at)"
)
_UPSERT_PG = text(str(_UPSERT).replace("MIN(", "LEAST(").replace("MAX(", "GREATEST("))


@dataclass(frozen=True, slots=True)
class VerificationRecord:
    """One answered verification, as the API buffers it."""

    at: int
    platform: str
    good_type: int
    fingerprint: bytes
    via: str
    verdict: str


@dataclass(frozen=True, slots=True)
class VerificationStats:
    """ "Verified N times, by M platforms, first at T" (None while never verified)."""

    times: int
    platforms: int
    first_at: int | None
    last_at: int | None


def record_verifications(conn: Connection, records: Sequence[VerificationRecord]) -> None:
    """Append the events and fold them into the per-(good, platform) counts."""
    if not records:
        return
    conn.execute(
        events_t.insert(),
        [
            {
                "at": r.at,
                "platform": r.platform,
                "good_type": r.good_type,
                "fingerprint": r.fingerprint,
                "via": r.via,
                "verdict": r.verdict,
            }
            for r in records
        ],
    )
    folded: dict[tuple[int, bytes, str], list[int]] = {}
    for r in records:
        key = (r.good_type, r.fingerprint, r.platform)
        entry = folded.setdefault(key, [0, r.at, r.at])
        entry[0] += 1
        entry[1] = min(entry[1], r.at)
        entry[2] = max(entry[2], r.at)
    upsert = _UPSERT_PG if conn.dialect.name == "postgresql" else _UPSERT
    conn.execute(
        upsert,
        [
            {
                "good_type": good_type,
                "fingerprint": fingerprint,
                "platform": platform,
                "count": count,
                "first_at": first,
                "last_at": last,
            }
            for (good_type, fingerprint, platform), (count, first, last) in folded.items()
        ],
    )


def verification_stats(conn: Connection, good_type: int, fingerprint: bytes) -> VerificationStats:
    c = counts_t.c
    row = conn.execute(
        select(func.sum(c.count), func.count(), func.min(c.first_at), func.max(c.last_at)).where(
            c.good_type == good_type, c.fingerprint == fingerprint
        )
    ).one()
    return VerificationStats(
        times=int(row[0] or 0),
        platforms=int(row[1] or 0),
        first_at=None if row[2] is None else int(row[2]),
        last_at=None if row[3] is None else int(row[3]),
    )


__all__ = [
    "VerificationRecord",
    "VerificationStats",
    "record_verifications",
    "verification_stats",
]
