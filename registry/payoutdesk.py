"""The registry's payout use cases (issue 17 item 7), mixed into ``registry.service.Registry``.

Each method owns its transaction (STYLE 8); the rules are ``registry.payouts`` and the reads
``registry.balances``. Kept apart so the facade stays one screen per concern.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from registry.balances import (
    DAY,
    DEFAULT_OVERDUE_DAYS,
    Balances,
    BalanceScope,
    OwedLine,
    balances,
    owed_lines,
)
from registry.db import read_transaction, retrying, write_transaction
from registry.payouts import PayoutRequest, PayoutView, load_payout, record_payout
from registry.statements import Period


class PayoutDesk:
    """Record payouts; read balances and the lines still owed."""

    # Provided by ``Registry``.
    engine: Engine
    clock: Callable[[], int]

    #: A due line unpaid for longer than this is overdue (``TRACEMARK_PAYOUT_OVERDUE_DAYS``).
    payout_overdue_seconds: int = DEFAULT_OVERDUE_DAYS * DAY

    def record_payout(self, request: PayoutRequest) -> PayoutView:
        """Record a platform's payout against its due lines (one transaction); a refusal
        changes nothing, a retry with its Idempotency-Key replays it."""

        def attempt() -> PayoutView:
            with write_transaction(self.engine) as conn:
                return record_payout(conn, request, now=self.clock())

        return retrying(attempt)

    def payout(self, payout_id: int, *, platform: str) -> PayoutView:
        with read_transaction(self.engine) as conn:
            return load_payout(conn, payout_id, platform=platform)

    def owed_lines(
        self,
        platform: str,
        *,
        after: int = 0,
        limit: int = 50,
        kind: str | None = None,
        recipient: bytes | None = None,
        payee: str | None = None,
        currency: str | None = None,
    ) -> list[OwedLine]:
        with read_transaction(self.engine) as conn:
            return owed_lines(
                conn,
                platform=platform,
                after=after,
                limit=limit,
                kind=kind,
                recipient=recipient,
                payee=payee,
                currency=currency,
            )

    def balances(self, scope: BalanceScope, *, since: int, until: int, period: Period) -> Balances:
        with read_transaction(self.engine) as conn:
            return balances(
                conn,
                scope,
                since=since,
                until=until,
                period=period,
                now=self.clock(),
                overdue_after=self.payout_overdue_seconds,
            )


__all__ = ["PayoutDesk"]
