"""The ``payout-overdue`` rule (issue 17 item 7): a platform that leaves due royalty or rebate
lines unpaid past the overdue age.

Not a rule over the market's records (``readmodels.rules``): its input is the ledger
(``royalty_lines`` and ``payout_lines``), read whole at every refresh with one query bounded
by what is overdue, so the incremental engine (``readmodels.riskstate``) and the full
recompute (``readmodels.riskindex``) are both left as they are and stay equal; the risk
worker (``readmodels.riskworker``) adds these signals to either's, the same way, every
refresh. A signal's id is its rule and platform (``Signal.signal_id``): it is raised once
when the platform first has an overdue line, rewritten as its overdue amounts change, and
removed when it has paid every overdue line (or the lines were reversed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, select

from readmodels.signals import MAX_EVIDENCE, PAYOUT_OVERDUE, Evidence, Signal, Subject
from registry.balances import DAY, due_at_column
from registry.payouts import payout_lines_t
from registry.records import checksum
from registry.transfers import royalty_lines_t

#: Most overdue lines read a refresh (per platform the evidence lists only ``MAX_EVIDENCE``,
#: but the amounts add every line read: a ledger past this says so in the detail).
MAX_OVERDUE_LINES: Final = 200_000


@dataclass(frozen=True, slots=True)
class OverdueLine:
    line_id: int
    platform: str
    kind: str
    payee: str
    currency: str
    amount: int
    due_at: int


def read_overdue(conn: Connection, *, now: int, overdue_after: int) -> list[OverdueLine]:
    """Every due line no payout names that became due at or before ``now - overdue_after``,
    oldest first."""
    c = royalty_lines_t.c
    pl = payout_lines_t.c
    due_at = due_at_column()
    rows = conn.execute(
        select(
            c.id,
            c.platform,
            c.kind,
            c.recipient,
            c.payee,
            c.currency,
            c.amount,
            due_at.label("due_at"),
        )
        .select_from(royalty_lines_t.outerjoin(payout_lines_t, pl.line_id == c.id))
        .where(c.status == "due", pl.line_id.is_(None), due_at <= now - overdue_after)
        .order_by(due_at, c.id)
        .limit(MAX_OVERDUE_LINES)
    )
    return [
        OverdueLine(
            line_id=int(r.id),
            platform=r.platform,
            kind=r.kind,
            payee=checksum(bytes(r.recipient)) if r.recipient is not None else (r.payee or ""),
            currency=r.currency,
            amount=int(r.amount),
            due_at=int(r.due_at),
        )
        for r in rows
    ]


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def overdue_payouts(lines: Iterable[OverdueLine], *, overdue_after: int) -> list[Signal]:
    """One ``payout-overdue`` signal per platform with overdue lines, about that platform:
    what it owes past the age per currency, how many lines, since when; the oldest lines
    as evidence."""
    by_platform: dict[str, list[OverdueLine]] = defaultdict(list)
    for line in lines:
        by_platform[line.platform].append(line)
    signals = []
    for platform, owed in sorted(by_platform.items()):
        owed.sort(key=lambda line: (line.due_at, line.line_id))
        sums: dict[str, int] = defaultdict(int)
        for line in owed:
            sums[line.currency] += line.amount
        amounts = ", ".join(f"{amount} {currency}" for currency, amount in sorted(sums.items()))
        days = overdue_after // DAY
        age = f"{days} days" if overdue_after % DAY == 0 else f"{overdue_after} s"
        evidence = tuple(
            Evidence(
                "royalty-line",
                f"line {line.line_id}",
                line.due_at,
                f"{line.kind} of {line.amount} {line.currency} to {line.payee}, "
                f"due since {_day(line.due_at)}, unpaid",
            )
            for line in owed[:MAX_EVIDENCE]
        )
        signals.append(
            Signal(
                PAYOUT_OVERDUE,
                f"{platform} has {len(owed)} royalty or rebate line(s) due for more than {age} "
                f"and unpaid: {amounts} (oldest due since {_day(owed[0].due_at)})",
                evidence,
                Subject("platform", platform),
                (),
                (platform,),
            )
        )
    return signals


def overdue_signals(conn: Connection, *, now: int, overdue_after: int) -> Sequence[Signal]:
    """The rule over the ledger as it is at ``now``."""
    return overdue_payouts(
        read_overdue(conn, now=now, overdue_after=overdue_after), overdue_after=overdue_after
    )


__all__ = [
    "MAX_OVERDUE_LINES",
    "OverdueLine",
    "overdue_payouts",
    "overdue_signals",
    "read_overdue",
]
