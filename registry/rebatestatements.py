"""Rebate statements: what a platform's agents are owed, per agent, currency and period.

Read from the one ledger (``royalty_lines`` rows of kind ``rebate``, written by settlement):
only ``due`` lines are owed; ``held`` lines (an order not yet standing) and ``reversed`` ones
(a refund) are shown beside them, never added to what is owed. A platform sees only its own
agents: the lines whose payee is ``<platform>:...``. Lines fall in the period of their
``created_at`` (when the sale's lines were written), as the creators' statements do, so a
line moves from held to due within its period, never between periods. Amounts are decimal
text in the table and added up here in Python integers, as ``registry.statements`` does.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, select

from registry.agents import parse_payee
from registry.errors import InvalidInput
from registry.parties import check_platform_id
from registry.statements import MAX_LINES, PERIODS, Period, period_of
from registry.transfers import royalty_lines_t

#: The statuses a statement shows, in column order.
STATUSES = ("due", "held", "reversed")


@dataclass(frozen=True, slots=True)
class AgentStatementLine:
    period: str
    payee: str
    currency: str
    #: Amount and number of lines per status (``STATUSES``).
    due: int
    held: int
    reversed: int
    due_lines: int
    held_lines: int
    reversed_lines: int


@dataclass(frozen=True)
class AgentStatement:
    platform: str
    payee: str | None
    since: int
    until: int
    period: Period
    lines: list[AgentStatementLine]

    def totals(self) -> list[dict[str, object]]:
        """Per (payee, currency) over the statement: ``owed`` is the due lines only."""
        sums: dict[tuple[str, str], list[int]] = {}
        for line in self.lines:
            slot = sums.setdefault((line.payee, line.currency), [0, 0, 0])
            slot[0] += line.due
            slot[1] += line.held
            slot[2] += line.reversed
        return [
            {
                "payee": payee,
                "currency": currency,
                "owed": str(due),
                "held": str(held),
                "reversed": str(reversed_),
            }
            for (payee, currency), (due, held, reversed_) in sorted(sums.items())
        ]

    def csv_rows(self) -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(
            [
                *("period", "payee", "currency", "owed", "held", "reversed"),
                *("due_lines", "held_lines", "reversed_lines"),
            ]
        )
        for line in self.lines:
            writer.writerow(
                [
                    *(line.period, line.payee, line.currency),
                    *(str(line.due), str(line.held), str(line.reversed)),
                    *(line.due_lines, line.held_lines, line.reversed_lines),
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        if buffer.getvalue():
            yield buffer.getvalue()


def agent_statement(
    conn: Connection,
    platform: str,
    *,
    payee: str | None,
    since: int,
    until: int,
    period: Period,
) -> AgentStatement:
    """The rebates of ``platform``'s agents (or of the one ``payee``) for lines written in
    [since, until), grouped by period, payee and currency."""
    check_platform_id(platform)
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}")
    if since > until:
        raise InvalidInput("since must not be after until")
    c = royalty_lines_t.c
    query = select(c.created_at, c.payee, c.currency, c.amount, c.status).where(
        c.kind == "rebate", c.created_at >= since, c.created_at < until
    )
    if payee is not None:
        owner, _ = parse_payee(payee)
        if owner != platform:
            # Another platform's agent is the same as an agent with no lines: nothing shown.
            return AgentStatement(platform, payee, since, until, period, [])
        query = query.where(c.payee == payee)
    else:
        # "<platform>:" up to "<platform>;" (';' follows ':'): its agents, by the payee index.
        query = query.where(c.payee >= platform + ":", c.payee < platform + ";")
    rows = conn.execute(query.order_by(c.created_at, c.id).limit(MAX_LINES + 1)).all()
    if len(rows) > MAX_LINES:
        raise InvalidInput(f"more than {MAX_LINES:,} rebate lines: ask for a shorter period")
    grouped: dict[tuple[str, str, str], list[int]] = {}
    for at, line_payee, currency, amount, status in rows:
        if status not in STATUSES:
            continue
        slot = grouped.setdefault((period_of(int(at), period), line_payee, currency), [0] * 6)
        index = STATUSES.index(status)
        slot[index] += int(amount)
        slot[3 + index] += 1
    lines = [
        AgentStatementLine(key[0], key[1], key[2], *values)
        for key, values in sorted(grouped.items())
    ]
    return AgentStatement(platform, payee, since, until, period, lines)


__all__ = ["STATUSES", "AgentStatement", "AgentStatementLine", "agent_statement"]
