"""The payout and balance calls of the client (issue 17 item 7): a platform records what it
paid against the lines it owes and reads what it owes; a creator reads its royalties' owed,
paid and overdue; a platform reads its agents' rebates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from verifier.creatorcalls import MAX_CSV_BYTES
from verifier.schemas import DEFAULT_PAGE, Page
from verifier.schemas.payouts import BalancesOut, OwedLineOut, PayoutIn, PayoutOut
from verifier.transport import RegistryTransport, request_model

Period = Literal["day", "month", "all"]
LineKind = Literal["royalty", "rebate"]


class PayoutCalls(RegistryTransport):
    """Payouts (transfer-scoped key) and balances (that key, or a creator's session)."""

    def record_payout(
        self,
        *,
        kind: LineKind,
        amount: int | str,
        currency: str,
        reference: str,
        paid_at: int,
        lines: Sequence[int],
        recipient: str | None = None,
        payee: str | None = None,
        idempotency_key: str | None = None,
    ) -> PayoutOut:
        """Record a payment your platform made to one ``recipient`` (royalties) or ``payee``
        (rebates) for whole due ``lines`` it owes; ``amount`` must be exactly their sum. Send
        an ``idempotency_key`` to make a retry record it once."""
        fields = {
            "kind": kind,
            "recipient": recipient,
            "payee": payee,
            "amount": str(amount),
            "currency": currency,
            "reference": reference,
            "paid_at": paid_at,
            "lines": list(lines),
        }
        body = request_model(PayoutIn, fields, "the payout's fields are invalid")
        return self._post(
            "/v1/payouts",
            body.model_dump(mode="json", exclude_none=True),
            PayoutOut,
            idempotency_key=idempotency_key,
        )

    def payout(self, payout_id: int) -> PayoutOut:
        """One of your platform's payouts, with the lines it paid."""
        return self._model(PayoutOut, self._send("GET", f"/v1/payouts/{int(payout_id)}"))

    def owed_lines(
        self,
        *,
        kind: LineKind | None = None,
        recipient: str | None = None,
        payee: str | None = None,
        currency: str | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> Page[OwedLineOut]:
        """One page of the due lines your platform owes and has not paid, oldest first."""
        params: dict[str, str | int] = {"limit": limit}
        for name, value in (
            ("kind", kind),
            ("recipient", recipient),
            ("payee", payee),
            ("currency", currency),
            ("cursor", cursor),
        ):
            if value is not None:
                params[name] = value
        answer = self._send("GET", "/v1/payouts/owed", params=params)
        return self._model(Page[OwedLineOut], answer)

    def platform_balances(
        self,
        *,
        kind: LineKind | None = None,
        payee: str | None = None,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
    ) -> BalancesOut:
        """What your platform owes: owed, paid and overdue per period, payee and currency."""
        params = self._span(since, until, period, kind=kind, payee=payee)
        return self._model(BalancesOut, self._send("GET", "/v1/payouts/balances", params=params))

    def agent_balances(
        self,
        *,
        payee: str | None = None,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
    ) -> BalancesOut:
        """What your platform's agents are owed in rebates, by whichever platform owes them."""
        params = self._span(since, until, period, payee=payee)
        answer = self._send("GET", "/v1/payouts/agent-balances", params=params)
        return self._model(BalancesOut, answer)

    def creator_balances(
        self, *, since: int = 0, until: int | None = None, period: Period = "month"
    ) -> BalancesOut:
        """The signed-in creator's royalties: owed, paid and overdue per period, platform
        and recipient."""
        params = self._span(since, until, period)
        answer = self._send("GET", "/v1/creators/me/balances", params=params)
        return self._model(BalancesOut, answer)

    def balances_csv(
        self,
        which: Literal["platform", "agents", "creator"],
        *,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
    ) -> str:
        """The same balances as CSV text (a header, then one row per line of balance)."""
        path = {
            "platform": "/v1/payouts/balances",
            "agents": "/v1/payouts/agent-balances",
            "creator": "/v1/creators/me/balances",
        }[which]
        params = self._span(since, until, period)
        params["format"] = "csv"
        answer = self._send("GET", path, params=params, limit=MAX_CSV_BYTES)
        return answer.body.decode("utf-8")

    @staticmethod
    def _span(
        since: int, until: int | None, period: Period, **filters: str | None
    ) -> dict[str, str | int]:
        params: dict[str, str | int] = {"since": since, "period": period}
        if until is not None:
            params["until"] = until
        params.update({name: value for name, value in filters.items() if value is not None})
        return params


__all__ = ["PayoutCalls"]
