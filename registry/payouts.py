"""Payouts (issue 17 item 7): a platform records what it paid against the lines it owes.

``royalty_lines`` is the one ledger of what is owed (migration 0023): each line names the
``platform`` that owes it, its ``kind`` (a ``royalty`` to a ``recipient`` address, a
``rebate`` to an agent ``payee``), its ``currency``, its decimal-text ``amount`` and its
``status``; only a ``due`` line can be paid (a ``held`` one is still in escrow, a
``reversed`` one was never owed). A payout pays whole lines: one payee, one currency, lines
of the paying platform only, each at most once, and the amount must be exactly their sum
(no partial payment, no rounding: the platform says which lines its transfer settled).

Refusals change nothing (the caller's transaction rolls back): 422 ``payout-refused`` for a
request that does not fit the lines (an unknown line or another platform's, the same answer
for both; another payee, kind or currency; a total that is not the lines' sum), 409
``line-not-payable`` for a held or reversed line, 409 ``line-already-paid`` for a line some
payout already paid. ``payout_lines`` is keyed by the line: of two payouts racing for one
line exactly one inserts its row; the other meets the key and is the same 409.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

import rfc8785
from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from registry.errors import Conflict, InvalidInput, NotFound
from registry.idempotentwrites import earlier_write
from registry.models import Payout, PayoutLine
from registry.records import checksum
from registry.royalty import MAX_PRICE
from registry.transfers import royalty_lines_t

payouts_t: Table = Payout.__table__  # type: ignore[attr-defined]
payout_lines_t: Table = PayoutLine.__table__  # type: ignore[attr-defined]

Kind = Literal["royalty", "rebate"]
KINDS: Final = ("royalty", "rebate")
#: Most lines one payout may name (a platform paying more splits it into several payouts).
MAX_PAYOUT_LINES: Final = 1000
#: How far in the future a payment's time may be (clocks differ), in seconds.
CLOCK_SKEW: Final = 300
_CURRENCY: Final = re.compile(r"^[0-9]*[A-Z][A-Z0-9]*$")


class PayoutRefused(InvalidInput):
    """The payout does not fit the lines it names (whose, to whom, how much): nothing paid."""

    code = "payout-refused"
    http_status = 422
    diagnostics = "List due lines your platform owes to this payee and pay their exact sum."


class LineNotPayable(Conflict):
    """A line is held in escrow (its sale does not stand yet) or reversed (never owed)."""

    code = "line-not-payable"
    diagnostics = "Only due lines can be paid: wait until the sale stands."


class LineAlreadyPaid(Conflict):
    """A line was already paid by a payout (lines are paid once, in full)."""

    code = "line-already-paid"
    diagnostics = "Leave the paid lines out; GET the payout named to see what it paid."


@dataclass(frozen=True)
class PayoutRequest:
    """What a platform reports having paid: to one payee, in one currency, for whole lines."""

    platform: str
    kind: Kind
    #: A royalty's recipient (20-byte address); None for a rebate.
    recipient: bytes | None
    #: A rebate's payee (as the lines name it); None for a royalty.
    payee: str | None
    amount: int
    currency: str
    reference: str
    paid_at: int
    line_ids: tuple[int, ...]
    idempotency_key: str | None = None

    def check(self, *, now: int) -> None:
        """The request's own shape (before any line is read); ``InvalidInput`` (400)."""
        if self.kind not in KINDS:
            raise InvalidInput("kind must be royalty or rebate")
        if self.kind == "royalty" and (self.recipient is None or self.payee is not None):
            raise InvalidInput("a royalty payout names its recipient (an address), no payee")
        if self.kind == "rebate" and (self.payee is None or self.recipient is not None):
            raise InvalidInput("a rebate payout names its payee, no recipient")
        if self.recipient is not None and len(self.recipient) != 20:
            raise InvalidInput("recipient must be a 20-byte address")
        if self.payee is not None and not (
            1 <= len(self.payee) <= 160 and self.payee.isprintable()
        ):
            raise InvalidInput("payee must be 1 to 160 printable characters")
        if not 0 < self.amount <= MAX_PRICE:
            raise InvalidInput("amount must be a positive integer of minor units")
        if not (len(self.currency) <= 16 and _CURRENCY.match(self.currency)):
            raise InvalidInput("currency must be an upper-case code, e.g. EUR")
        if not (1 <= len(self.reference) <= 128 and self.reference.isprintable()):
            raise InvalidInput("reference must be 1 to 128 printable characters")
        if not 0 <= self.paid_at <= now + CLOCK_SKEW:
            raise InvalidInput("paid_at must not be in the future")
        if not 1 <= len(self.line_ids) <= MAX_PAYOUT_LINES:
            raise InvalidInput(f"name 1 to {MAX_PAYOUT_LINES} lines")
        if len(set(self.line_ids)) != len(self.line_ids):
            raise InvalidInput("a line is named twice")
        if any(not 0 < line < 2**63 for line in self.line_ids):
            raise InvalidInput("line ids are positive integers")

    def request_hash(self) -> bytes:
        """The payout as the platform sent it, to tell a retry from a reused key."""
        document: dict[str, Any] = {
            "platform": self.platform,
            "kind": self.kind,
            "recipient": None if self.recipient is None else "0x" + self.recipient.hex(),
            "payee": self.payee,
            "amount": str(self.amount),
            "currency": self.currency,
            "reference": self.reference,
            "paid_at": self.paid_at,
            "lines": sorted(self.line_ids),
        }
        return hashlib.sha256(rfc8785.dumps(document)).digest()


@dataclass(frozen=True)
class PayoutView:
    payout_id: int
    platform: str
    kind: str
    recipient: bytes | None
    payee: str | None
    amount: int
    currency: str
    reference: str
    paid_at: int
    created_at: int
    line_ids: tuple[int, ...]
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """As ``PayoutOut``."""
        return {
            "payout_id": self.payout_id,
            "platform": self.platform,
            "kind": self.kind,
            "recipient": None if self.recipient is None else checksum(self.recipient),
            "payee": self.payee,
            "amount": str(self.amount),
            "currency": self.currency,
            "reference": self.reference,
            "paid_at": self.paid_at,
            "created_at": self.created_at,
            "lines": list(self.line_ids),
            "replayed": self.replayed,
        }


def load_payout(conn: Connection, payout_id: int, *, platform: str) -> PayoutView:
    """The platform's payout; another platform's is the same ``NotFound`` as none."""
    c = payouts_t.c
    row = conn.execute(select(payouts_t).where(c.id == payout_id, c.platform == platform)).first()
    if row is None:
        raise NotFound("no payout of that id was recorded by your platform")
    pl = payout_lines_t.c
    lines = conn.execute(
        select(pl.line_id).where(pl.payout_id == payout_id).order_by(pl.line_id)
    ).scalars()
    return PayoutView(
        payout_id=int(row.id),
        platform=row.platform,
        kind=row.kind,
        recipient=None if row.recipient is None else bytes(row.recipient),
        payee=row.payee,
        amount=int(row.amount),
        currency=row.currency,
        reference=row.reference,
        paid_at=int(row.paid_at),
        created_at=int(row.created_at),
        line_ids=tuple(int(line) for line in lines),
    )


def _replay(conn: Connection, request: PayoutRequest) -> PayoutView | None:
    payout_id = earlier_write(conn, payouts_t, request, "payout")
    if payout_id is None:
        return None
    view = load_payout(conn, payout_id, platform=request.platform)
    return PayoutView(**{**view.__dict__, "replayed": True})


def _check_lines(conn: Connection, request: PayoutRequest) -> None:
    """Every named line is a due, unpaid line the platform owes this payee in this currency,
    and their amounts add up to the payout's exactly."""
    c = royalty_lines_t.c
    rows = {
        int(r.id): r
        for r in conn.execute(
            select(
                c.id, c.platform, c.status, c.kind, c.recipient, c.payee, c.currency, c.amount
            ).where(c.id.in_(request.line_ids))
        )
    }
    for line_id in request.line_ids:
        row = rows.get(line_id)
        # Another platform's line is answered as an unknown one: no probing of others' ledgers.
        if row is None or row.platform != request.platform:
            raise PayoutRefused(f"line {line_id} is not a line your platform owes")
    for line_id in request.line_ids:
        if rows[line_id].status != "due":
            raise LineNotPayable(
                f"line {line_id} is {rows[line_id].status}, not due: it cannot be paid"
            )
    pl = payout_lines_t.c
    paid = conn.execute(
        select(pl.line_id, pl.payout_id)
        .where(pl.line_id.in_(request.line_ids))
        .order_by(pl.line_id)
    ).first()
    if paid is not None:
        raise LineAlreadyPaid(f"line {paid.line_id} was already paid by payout {paid.payout_id}")
    for line_id in request.line_ids:
        row = rows[line_id]
        payee = bytes(row.recipient) if row.kind == "royalty" and row.recipient else row.payee
        wanted = request.recipient if request.kind == "royalty" else request.payee
        if row.kind != request.kind or payee != wanted:
            raise PayoutRefused(f"line {line_id} is owed to another payee")
        if row.currency != request.currency:
            raise PayoutRefused(f"line {line_id} is owed in {row.currency}")
    total = sum(int(rows[line_id].amount) for line_id in request.line_ids)
    if total != request.amount:
        raise PayoutRefused(
            f"the lines add up to {total} {request.currency}, not {request.amount}: "
            "a payout pays whole lines, exactly"
        )


def record_payout(conn: Connection, request: PayoutRequest, *, now: int) -> PayoutView:
    """Record the payout in the caller's write transaction; a refusal raises (the caller
    rolls back, so nothing is written). A retry with its Idempotency-Key replays it."""
    request.check(now=now)
    replayed = _replay(conn, request)
    if replayed is not None:
        return replayed
    _check_lines(conn, request)
    try:
        with conn.begin_nested():
            payout_id = int(
                conn.execute(
                    payouts_t.insert()
                    .values(
                        platform=request.platform,
                        kind=request.kind,
                        recipient=request.recipient,
                        payee=request.payee,
                        amount=str(request.amount),
                        currency=request.currency,
                        reference=request.reference,
                        paid_at=request.paid_at,
                        created_at=now,
                        line_count=len(request.line_ids),
                        idempotency_key=request.idempotency_key,
                        request_hash=request.request_hash(),
                    )
                    .returning(payouts_t.c.id)
                ).scalar_one()
            )
    except IntegrityError:  # the same key, racing: the other one recorded it
        found = _replay(conn, request)
        if found is None:
            raise
        return found
    try:
        with conn.begin_nested():
            conn.execute(
                payout_lines_t.insert(),
                [{"line_id": line, "payout_id": payout_id} for line in request.line_ids],
            )
    except IntegrityError as exc:  # the backstop: a racing payout paid a line first
        raise LineAlreadyPaid("a line was just paid by another payout") from exc
    return load_payout(conn, payout_id, platform=request.platform)


__all__ = [
    "CLOCK_SKEW",
    "KINDS",
    "MAX_PAYOUT_LINES",
    "Kind",
    "LineAlreadyPaid",
    "LineNotPayable",
    "PayoutRefused",
    "PayoutRequest",
    "PayoutView",
    "load_payout",
    "payout_lines_t",
    "payouts_t",
    "record_payout",
]
