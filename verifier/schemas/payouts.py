"""Wire schemas of payouts and balances (issue 17 item 7): what a platform paid against the
royalty and rebate lines it owes, and owed / paid / overdue per platform, payee and period."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from registry.edges import AddressText, GoodTypeName, Hex32
from verifier.schemas.fields import Amount, Currency, Strict

LineKind = Literal["royalty", "rebate"]
#: Most lines one payout may name: ``registry.payouts.MAX_PAYOUT_LINES`` (not imported: the
#: client must not import the registry's storage; a test holds the two equal).
MAX_PAYOUT_LINES = 1000
#: A rebate's payee as its lines name it (``"<platform>:<agent hash>"``, ``registry.agents``).
Payee = Annotated[str, StringConstraints(min_length=1, max_length=160, pattern=r"^[!-~]+$")]
LineId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class PayoutIn(Strict):
    """A payment your platform made to one payee, in one currency, for whole due lines it
    owes (``GET /v1/payouts/owed`` lists them): ``amount`` must be exactly their sum."""

    kind: LineKind
    #: A royalty's recipient (the lines' address); omit for a rebate.
    recipient: AddressText | None = None
    #: A rebate's payee (the lines' payee); omit for a royalty.
    payee: Payee | None = None
    amount: Amount
    currency: Currency
    #: Your own payment reference (a bank or chain transaction id), kept as given.
    reference: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    #: When you paid (Unix seconds; not in the future).
    paid_at: Annotated[int, Field(ge=0, le=2**63 - 1)]
    lines: Annotated[list[LineId], Field(min_length=1, max_length=MAX_PAYOUT_LINES)]


class PayoutOut(Strict):
    payout_id: int
    platform: str
    kind: LineKind
    recipient: AddressText | None
    payee: str | None
    amount: str
    currency: str
    reference: str
    paid_at: int
    #: When the registry recorded it.
    created_at: int
    lines: list[int]
    #: True when this answers a retry with the same Idempotency-Key.
    replayed: bool


class OwedLineOut(Strict):
    """A due line your platform owes and no payout has paid."""

    line_id: int
    kind: LineKind
    recipient: AddressText | None
    payee: str | None
    currency: str
    amount: str
    #: When it became due (its sale stood; a plain transfer's line: when it was recorded).
    due_at: int
    order_id: int | None
    good_type: GoodTypeName
    fingerprint: Hex32


class BalanceLineOut(Strict):
    """Owed (due, unpaid), paid and overdue (owed longer than ``overdue_after``) amounts of
    the due lines that became due in one period, to one payee, owed by one platform."""

    period: str
    platform: str
    kind: LineKind
    #: A royalty's recipient (address) or a rebate's payee.
    payee: str
    currency: str
    owed: str
    paid: str
    overdue: str
    lines_owed: int
    lines_paid: int
    lines_overdue: int
    oldest_owed_at: int | None


class BalanceTotalOut(Strict):
    platform: str
    currency: str
    owed: str
    paid: str
    overdue: str


class BalancesOut(Strict):
    since: int
    until: int
    period: Literal["day", "month", "all"]
    #: The time the balances are as of: overdue means due before ``as_of - overdue_after``.
    as_of: int
    overdue_after: int
    lines: list[BalanceLineOut]
    #: Per platform and currency over the whole span.
    totals: list[BalanceTotalOut]


__all__ = [
    "BalanceLineOut",
    "BalanceTotalOut",
    "BalancesOut",
    "LineKind",
    "OwedLineOut",
    "PayoutIn",
    "PayoutOut",
]
