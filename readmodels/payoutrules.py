"""The ``payout-overdue`` rule (issue 17 item 7): a platform that leaves due royalty or rebate
lines unpaid past the overdue age.

Not a rule over the market's records (``readmodels.rules``): its input is the ledger
(``royalty_lines`` and ``payout_lines``), read by ``OverdueWatch`` (again when a payout was
recorded, else once every ``OVERDUE_EVERY`` seconds), so the incremental engine
(``readmodels.riskstate``) and the full recompute (``readmodels.riskindex``) are both left as
they are and stay equal; the risk worker (``readmodels.riskworker``) adds these signals to
either's, the same way, every refresh. A signal's id is its rule and platform
(``Signal.signal_id``): it is raised once when the platform first has an overdue line,
rewritten as its overdue amounts change, and removed when it has paid every overdue line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Connection, func, select

from readmodels.signals import MAX_EVIDENCE, PAYOUT_OVERDUE, Evidence, Signal, Subject, says
from registry.balances import DAY, due_at_column
from registry.payouts import payout_lines_t, payouts_t
from registry.records import checksum
from registry.transfers import royalty_lines_t

#: How often (seconds of the clock) the ledger is read again when no payout was recorded in
#: between: a line becomes overdue up to this late (against an age of days); a payout makes
#: the next refresh read at once, so a paid-up platform's signal goes with it.
OVERDUE_EVERY: Final = 60


@dataclass(frozen=True, slots=True)
class OverdueLine:
    line_id: int
    kind: str
    payee: str
    currency: str
    amount: int
    due_at: int


@dataclass(frozen=True)
class PlatformOverdue:
    """What one platform owes past the age: line count, amounts per currency, the oldest
    line's due time, and its oldest ``MAX_EVIDENCE`` lines."""

    platform: str
    lines: int
    amounts: dict[str, int]
    oldest: int
    evidence: tuple[OverdueLine, ...]


def read_overdue(conn: Connection, *, now: int, overdue_after: int) -> list[PlatformOverdue]:
    """Per platform, the due lines no payout names that became due at or before
    ``now - overdue_after``. The amounts are added here (decimal text up to 2^256 - 1, not
    the databases' integers) from a flat read of (platform, currency, amount, due time); only
    the evidence lines are read whole, and only their recipients checksummed."""
    c = royalty_lines_t.c
    pl = payout_lines_t.c
    due_at = due_at_column()
    joined = royalty_lines_t.outerjoin(payout_lines_t, pl.line_id == c.id)
    overdue = (c.status == "due", pl.line_id.is_(None), due_at <= now - overdue_after)
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    oldest: dict[str, int] = {}
    flat = select(c.platform, c.currency, c.amount, due_at).select_from(joined).where(*overdue)
    for platform, currency, amount, due in conn.execute(flat):
        counts[platform] += 1
        amounts[platform][currency] += int(amount)
        oldest[platform] = min(oldest.get(platform, int(due)), int(due))
    found = []
    for platform in sorted(counts):
        rows = conn.execute(
            select(c.id, c.kind, c.recipient, c.payee, c.currency, c.amount, due_at.label("due"))
            .select_from(joined)
            .where(*overdue, c.platform == platform)
            .order_by(due_at, c.id)
            .limit(MAX_EVIDENCE)
        )
        evidence = tuple(
            OverdueLine(
                line_id=int(r.id),
                kind=r.kind,
                payee=checksum(bytes(r.recipient)) if r.recipient is not None else (r.payee or ""),
                currency=r.currency,
                amount=int(r.amount),
                due_at=int(r.due),
            )
            for r in rows
        )
        found.append(
            PlatformOverdue(
                platform, counts[platform], dict(amounts[platform]), oldest[platform], evidence
            )
        )
    return found


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def overdue_payouts(owed: Iterable[PlatformOverdue], *, overdue_after: int) -> list[Signal]:
    """One ``payout-overdue`` signal per platform with overdue lines, about that platform:
    what it owes past the age per currency, how many lines, since when; the oldest lines
    as evidence."""
    days = overdue_after // DAY
    age = f"{days} days" if overdue_after % DAY == 0 else f"{overdue_after} s"
    signals = []
    for found in owed:
        total = ", ".join(
            f"{amount} {currency}" for currency, amount in sorted(found.amounts.items())
        )
        evidence = tuple(
            Evidence(
                "royalty-line",
                f"line {line.line_id}",
                line.due_at,
                f"{line.kind} of {line.amount} {line.currency} to {line.payee}, "
                f"due since {_day(line.due_at)}, unpaid",
            )
            for line in found.evidence
        )
        signals.append(
            Signal(
                PAYOUT_OVERDUE,
                f"{found.platform} has {found.lines} royalty or rebate line(s) due for more "
                f"than {age} and unpaid: {total} (oldest due since {_day(found.oldest)})",
                evidence,
                Subject("platform", found.platform),
                (),
                (found.platform,),
                (
                    says(
                        PAYOUT_OVERDUE,
                        "days",
                        platform=found.platform,
                        lines=found.lines,
                        days=days,
                        total=total,
                        oldest=_day(found.oldest),
                    )
                    if overdue_after % DAY == 0
                    else says(
                        PAYOUT_OVERDUE,
                        "seconds",
                        platform=found.platform,
                        lines=found.lines,
                        seconds=overdue_after,
                        total=total,
                        oldest=_day(found.oldest),
                    ),
                ),
            )
        )
    return signals


def overdue_signals(conn: Connection, *, now: int, overdue_after: int) -> Sequence[Signal]:
    """The rule over the ledger as it is at ``now``."""
    return overdue_payouts(
        read_overdue(conn, now=now, overdue_after=overdue_after), overdue_after=overdue_after
    )


class OverdueWatch:
    """The risk worker's copy of the overdue signals, read again when a payout was recorded
    since (the newest payout id moved), when ``every`` seconds of the clock passed, or when
    the clock went back; ``every=0`` reads every refresh."""

    def __init__(self, overdue_after: int, *, every: int = OVERDUE_EVERY) -> None:
        self.overdue_after = overdue_after
        self.every = every
        self._read_at: int | None = None
        self._payouts: int | None = None
        self._signals: dict[str, Signal] = {}

    def signals(self, conn: Connection, now: int) -> dict[str, Signal]:
        newest = conn.execute(select(func.max(payouts_t.c.id))).scalar()
        fresh = (
            self._read_at is not None
            and newest == self._payouts
            and self._read_at <= now < self._read_at + self.every
        )
        if not fresh:
            found = overdue_signals(conn, now=now, overdue_after=self.overdue_after)
            self._signals = {s.signal_id: s for s in found}
            self._read_at, self._payouts = now, newest
        return self._signals


__all__ = [
    "OVERDUE_EVERY",
    "OverdueLine",
    "OverdueWatch",
    "PlatformOverdue",
    "overdue_payouts",
    "overdue_signals",
    "read_overdue",
]
