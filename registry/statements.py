"""Royalty statements: what a creator's recipients are owed, per good, platform and period.

Amounts are stored as decimal text (they may exceed 64 bits), so they are added up here in
Python integers, never by the database; a statement is bounded by its period and a row cap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from sqlalchemy import Connection, select

from registry.errors import InvalidInput
from registry.fingerprints import GoodType, fingerprint_hex
from registry.records import checksum
from registry.transfers import royalty_lines_t

Period = Literal["day", "month", "all"]
PERIODS: Final = ("day", "month", "all")
#: Most royalty lines one statement may add up; beyond that, ask for a shorter period.
MAX_LINES: Final = 1_000_000


def period_of(timestamp: int, period: Period) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "month":
        return moment.strftime("%Y-%m")
    return "all"


@dataclass(frozen=True, slots=True)
class StatementLine:
    period: str
    good_type: str
    fingerprint: str
    platform: str
    recipient: str
    currency: str
    amount: int
    transfers: int


@dataclass(frozen=True)
class Statement:
    creator: str
    since: int
    until: int
    period: Period
    lines: list[StatementLine]
    #: Royalties of orders not settled yet, per (recipient, currency): held in escrow until
    #: the sale stands (then owed) or is refunded (then never); not in ``lines`` or totals.
    held: list[dict[str, object]] = field(default_factory=list)

    def totals(self) -> list[dict[str, object]]:
        """Owed per (recipient, currency) over the whole statement."""
        owed: dict[tuple[str, str], int] = {}
        for line in self.lines:
            key = (line.recipient, line.currency)
            owed[key] = owed.get(key, 0) + line.amount
        return [
            {"recipient": recipient, "currency": currency, "amount": str(amount)}
            for (recipient, currency), amount in sorted(owed.items())
        ]

    def csv_rows(self) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = ["period", "good_type", "fingerprint", "platform", "recipient", "currency"]
        writer.writerow([*header, "amount", "transfers"])
        for line in self.lines:
            writer.writerow(
                [
                    line.period,
                    line.good_type,
                    line.fingerprint,
                    line.platform,
                    line.recipient,
                    line.currency,
                    str(line.amount),
                    line.transfers,
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()


def royalty_statement(
    conn: Connection, creator: bytes, *, since: int, until: int, period: Period
) -> Statement:
    """Every royalty owed (``due``) on the creator's goods for lines dated in [since, until):
    a plain transfer's, and an order's whose sale stands (dated at its delivery)."""
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}")
    if since > until:
        raise InvalidInput("since must not be after until")
    c = royalty_lines_t.c
    rows = conn.execute(
        select(
            c.created_at, c.good_type, c.fingerprint, c.platform, c.recipient, c.currency, c.amount
        )
        .where(
            c.creator == creator,
            c.created_at >= since,
            c.created_at < until,
            # Owed only: an order's lines held in escrow, or reversed by a refund, are not
            # (issue 17); a plain transfer's lines are due from the start.
            c.status == "due",
            c.kind == "royalty",
        )
        .order_by(c.created_at, c.id)
        .limit(MAX_LINES + 1)
    ).all()
    if len(rows) > MAX_LINES:
        raise InvalidInput(f"more than {MAX_LINES:,} royalty lines: ask for a shorter period")
    grouped: dict[tuple[str, int, bytes, str, bytes, str], list[int]] = {}
    for at, good_type, fingerprint, platform, recipient, currency, amount in rows:
        key = (
            period_of(int(at), period),
            int(good_type),
            bytes(fingerprint),
            platform,
            bytes(recipient),
            currency,
        )
        slot = grouped.setdefault(key, [0, 0])
        slot[0] += int(amount)
        slot[1] += 1
    lines = [
        StatementLine(
            period=key[0],
            good_type=GoodType(key[1]).name.lower(),
            fingerprint=fingerprint_hex(key[2]),
            platform=key[3],
            recipient=checksum(key[4]),
            currency=key[5],
            amount=amount,
            transfers=count,
        )
        for key, (amount, count) in grouped.items()
    ]
    return Statement(
        checksum(creator), since, until, period, lines, _held(conn, creator, since, until)
    )


def _held(conn: Connection, creator: bytes, since: int, until: int) -> list[dict[str, object]]:
    """The creator's royalty lines held in escrow (issue 17), per (recipient, currency)."""
    c = royalty_lines_t.c
    rows = conn.execute(
        select(c.recipient, c.currency, c.amount)
        .where(
            c.creator == creator,
            c.created_at >= since,
            c.created_at < until,
            c.status == "held",
            c.kind == "royalty",
        )
        .limit(MAX_LINES + 1)
    ).all()
    if len(rows) > MAX_LINES:
        raise InvalidInput(f"more than {MAX_LINES:,} royalty lines: ask for a shorter period")
    held: dict[tuple[bytes, str], int] = {}
    for recipient, currency, amount in rows:
        key = (bytes(recipient), currency)
        held[key] = held.get(key, 0) + int(amount)
    return [
        {"recipient": checksum(recipient), "currency": currency, "amount": str(amount)}
        for (recipient, currency), amount in sorted(held.items())
    ]


__all__ = ["PERIODS", "Period", "Statement", "StatementLine", "period_of", "royalty_statement"]
