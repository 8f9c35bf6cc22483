"""Balances (issue 17 item 7): owed, paid and overdue, per platform, payee, currency and period.

Read from the one ledger (``royalty_lines``) and the payouts against it (``payout_lines``).
Only ``due`` lines count: a held line is not owed yet, a reversed one never was. A due line
is *paid* when a payout names it, *owed* otherwise, and *overdue* when owed and due for
longer than the overdue age (``TRACEMARK_PAYOUT_OVERDUE_DAYS``, default 30). A line is due
from ``settled_at`` (when its order's sale stood) or, for a plain transfer's line (due at
once, no ``settled_at``), from ``created_at``; the period a line falls in is that moment's.

Amounts are decimal text (up to 2^256 - 1), so they are added up here in Python integers,
never by the database; a balance is bounded by its period and a row cap.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, func, select

from registry.errors import InvalidInput
from registry.payouts import payout_lines_t
from registry.records import checksum
from registry.statements import PERIODS, Period, period_of
from registry.transfers import royalty_lines_t

DAY: Final = 86_400
#: The overdue age when none is configured.
DEFAULT_OVERDUE_DAYS: Final = 30
#: Most due lines one balance may add up; beyond that, ask for a shorter period.
MAX_LINES: Final = 1_000_000
CSV_HEADER: Final = (
    "period",
    "platform",
    "kind",
    "payee",
    "currency",
    "owed",
    "paid",
    "overdue",
    "lines_owed",
    "lines_paid",
    "lines_overdue",
    "oldest_owed_at",
)


@dataclass(frozen=True)
class BalanceScope:
    """Whose lines: a creator's royalties (``creator``), or what a platform owes
    (``platform``), optionally of one ``kind`` and one rebate ``payee``."""

    creator: bytes | None = None
    platform: str | None = None
    kind: str | None = None
    payee: str | None = None
    #: Rebates to the agents of this platform's tree (payees ``"<platform>:<hash>"``,
    #: ``registry.agents``), whichever platform owes them.
    agents_of: str | None = None


@dataclass(frozen=True, slots=True)
class BalanceLine:
    period: str
    platform: str
    kind: str
    #: A royalty's recipient (checksummed address) or a rebate's payee.
    payee: str
    currency: str
    owed: int
    paid: int
    overdue: int
    lines_owed: int
    lines_paid: int
    lines_overdue: int
    #: When the oldest owed line became due (None: nothing owed).
    oldest_owed_at: int | None

    def as_dict(self) -> dict[str, Any]:
        row = dict(zip(CSV_HEADER, self.csv_row(), strict=True))
        row.update(
            lines_owed=self.lines_owed,
            lines_paid=self.lines_paid,
            lines_overdue=self.lines_overdue,
            oldest_owed_at=self.oldest_owed_at,
        )
        return row

    def csv_row(self) -> list[Any]:
        return [
            self.period,
            self.platform,
            self.kind,
            self.payee,
            self.currency,
            str(self.owed),
            str(self.paid),
            str(self.overdue),
            self.lines_owed,
            self.lines_paid,
            self.lines_overdue,
            "" if self.oldest_owed_at is None else self.oldest_owed_at,
        ]


@dataclass(frozen=True)
class Balances:
    since: int
    until: int
    period: Period
    as_of: int
    overdue_after: int
    lines: list[BalanceLine]

    def totals(self) -> list[dict[str, str]]:
        """Owed, paid and overdue per (platform, currency) over the whole span."""
        sums: dict[tuple[str, str], list[int]] = {}
        for line in self.lines:
            slot = sums.setdefault((line.platform, line.currency), [0, 0, 0])
            slot[0] += line.owed
            slot[1] += line.paid
            slot[2] += line.overdue
        return [
            {
                "platform": platform,
                "currency": currency,
                "owed": str(owed),
                "paid": str(paid),
                "overdue": str(overdue),
            }
            for (platform, currency), (owed, paid, overdue) in sorted(sums.items())
        ]

    def as_dict(self) -> dict[str, Any]:
        """As ``BalancesOut``."""
        return {
            "since": self.since,
            "until": self.until,
            "period": self.period,
            "as_of": self.as_of,
            "overdue_after": self.overdue_after,
            "lines": [line.as_dict() for line in self.lines],
            "totals": self.totals(),
        }

    def csv_rows(self) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for line in self.lines:
            writer.writerow(line.csv_row())
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()


def due_at_column() -> Any:
    """When a due line became due: its settlement, or its writing for a plain transfer's."""
    c = royalty_lines_t.c
    return func.coalesce(c.settled_at, c.created_at)


def balances(
    conn: Connection,
    scope: BalanceScope,
    *,
    since: int,
    until: int,
    period: Period,
    now: int,
    overdue_after: int,
) -> Balances:
    """Owed, paid and overdue of the scope's due lines that became due in [since, until)."""
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}")
    if since > until:
        raise InvalidInput("since must not be after until")
    if scope.creator is None and scope.platform is None and scope.agents_of is None:
        raise InvalidInput("a balance is a creator's, a platform's or its agents'")
    c = royalty_lines_t.c
    pl = payout_lines_t.c
    due_at = due_at_column()
    query = (
        select(
            due_at.label("due_at"),
            c.platform,
            c.kind,
            c.recipient,
            c.payee,
            c.currency,
            c.amount,
            pl.payout_id,
        )
        .select_from(royalty_lines_t.outerjoin(payout_lines_t, pl.line_id == c.id))
        .where(c.status == "due", due_at >= since, due_at < until)
    )
    if scope.creator is not None:
        query = query.where(c.creator == scope.creator, c.kind == "royalty")
    if scope.platform is not None:
        query = query.where(c.platform == scope.platform)
    if scope.kind is not None:
        query = query.where(c.kind == scope.kind)
    if scope.payee is not None:
        query = query.where(c.payee == scope.payee)
    if scope.agents_of is not None:
        query = query.where(
            c.kind == "rebate", c.payee.startswith(f"{scope.agents_of}:", autoescape=True)
        )
    rows = conn.execute(query.order_by(c.id).limit(MAX_LINES + 1)).all()
    if len(rows) > MAX_LINES:
        raise InvalidInput(f"more than {MAX_LINES:,} lines: ask for a shorter period")
    late = now - overdue_after
    grouped: dict[tuple[str, str, str, str, str], list[int]] = {}
    oldest: dict[tuple[str, str, str, str, str], int] = {}
    for due, platform, kind, recipient, payee, currency, amount, payout_id in rows:
        who = checksum(bytes(recipient)) if kind == "royalty" and recipient else (payee or "")
        key = (period_of(int(due), period), platform, kind, who, currency)
        slot = grouped.setdefault(key, [0, 0, 0, 0, 0, 0])
        value = int(amount)
        if payout_id is not None:
            slot[1] += value
            slot[4] += 1
            continue
        slot[0] += value
        slot[3] += 1
        oldest[key] = min(oldest.get(key, int(due)), int(due))
        if int(due) <= late:
            slot[2] += value
            slot[5] += 1
    lines = [
        BalanceLine(
            period=key[0],
            platform=key[1],
            kind=key[2],
            payee=key[3],
            currency=key[4],
            owed=slot[0],
            paid=slot[1],
            overdue=slot[2],
            lines_owed=slot[3],
            lines_paid=slot[4],
            lines_overdue=slot[5],
            oldest_owed_at=oldest.get(key),
        )
        for key, slot in sorted(grouped.items())
    ]
    return Balances(since, until, period, now, overdue_after, lines)


@dataclass(frozen=True, slots=True)
class OwedLine:
    """A due line not paid yet: what a platform picks the lines of a payout from."""

    line_id: int
    kind: str
    recipient: bytes | None
    payee: str | None
    currency: str
    amount: int
    due_at: int
    order_id: int | None
    good_type: int
    fingerprint: bytes


def owed_lines(
    conn: Connection,
    *,
    platform: str,
    after: int,
    limit: int,
    kind: str | None = None,
    recipient: bytes | None = None,
    payee: str | None = None,
    currency: str | None = None,
) -> list[OwedLine]:
    """The platform's due, unpaid lines in id order after ``after`` (a cursor page)."""
    c = royalty_lines_t.c
    pl = payout_lines_t.c
    query = (
        select(
            c.id,
            c.kind,
            c.recipient,
            c.payee,
            c.currency,
            c.amount,
            due_at_column().label("due_at"),
            c.order_id,
            c.good_type,
            c.fingerprint,
        )
        .select_from(royalty_lines_t.outerjoin(payout_lines_t, pl.line_id == c.id))
        .where(c.platform == platform, c.status == "due", pl.line_id.is_(None), c.id > after)
    )
    if kind is not None:
        query = query.where(c.kind == kind)
    if recipient is not None:
        query = query.where(c.recipient == recipient)
    if payee is not None:
        query = query.where(c.payee == payee)
    if currency is not None:
        query = query.where(c.currency == currency)
    return [
        OwedLine(
            line_id=int(r.id),
            kind=r.kind,
            recipient=None if r.recipient is None else bytes(r.recipient),
            payee=r.payee,
            currency=r.currency,
            amount=int(r.amount),
            due_at=int(r.due_at),
            order_id=None if r.order_id is None else int(r.order_id),
            good_type=int(r.good_type),
            fingerprint=bytes(r.fingerprint),
        )
        for r in conn.execute(query.order_by(c.id).limit(limit))
    ]


__all__ = [
    "CSV_HEADER",
    "DAY",
    "DEFAULT_OVERDUE_DAYS",
    "BalanceLine",
    "BalanceScope",
    "Balances",
    "OwedLine",
    "balances",
    "due_at_column",
    "owed_lines",
]
