"""The facts ``credit/v2`` (``registry.credit``) reads, from the database or from an export.

A *fact* is one row the registry holds about a subject, reduced to what the formula needs:
its kind, the platform it is about, the seller party (when there is one) and its time.

    kind                     from                                     platform        seller
    sale                     recorded transfers priced above 0 to a   the reporter    seller party
                             buyer party other than the seller, one
                             per (reporter, seller party, good), at
                             the first of them
    refund                   an order refunded (a dispute lost)       the order's     order's seller
    fake-delivery            a refused transfer "not-the-reserved-good" the reporter  seller party
    bad-sale                 a refused transfer: double-sale,         the reporter    seller party
                             not-the-holder
    dead-good                a refused transfer: revoked, consumed    the reporter    seller party
    overdue                  a due royalty/rebate line no payout      the platform    none
                             names, due for longer than the overdue   that owes it
                             age at ``as_of``

A platform's inputs count the facts whose platform is it; a seller's (a platform and the
keyed hash of its reference, ``registry.parties``) those whose seller party is it. Days
active are whole days from the subject's first fact to ``as_of``. Facts after ``as_of``
do not count. Two readers compute the inputs and must agree: SQL aggregates here (what the
API answers) and ``fold`` over exported facts (what ``tracemark credit recompute`` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, and_, func, literal, not_, select, union_all

from registry.credit import FORMULA, CreditInputs, credit_score
from registry.orders import State
from registry.orderviews import orders_t
from registry.payouts import payout_lines_t
from registry.transfers import attempts_t, royalty_lines_t, transfers_t

DAY: Final = 86_400

#: Refusal reasons (``transfer_attempts.reason``) by fact kind.
ATTEMPT_KINDS: Final = {
    "not-the-reserved-good": "fake-delivery",
    "double-sale": "bad-sale",
    "not-the-holder": "bad-sale",
    "revoked": "dead-good",
    "consumed": "dead-good",
}
KINDS: Final = ("sale", "refund", "fake-delivery", "bad-sale", "dead-good", "overdue")

#: A subject: ``("platform", platform, None)`` or ``("seller", platform, seller_ref)``.
Subject = tuple[str, str, bytes | None]


@dataclass(frozen=True)
class Fact:
    kind: str
    platform: str
    seller_platform: str | None
    seller_ref: bytes | None
    at: int


def _facts_query(as_of: int, overdue_after: int, *, sellers: bool = False) -> Any:
    """Every fact as one UNION ALL; ``sellers``: only the kinds a seller party can have (an
    overdue line names no seller, and asking the ledger for one would scan it whole)."""
    t, a, o, r, pl = (
        transfers_t.c,
        attempts_t.c,
        orders_t.c,
        royalty_lines_t.c,
        payout_lines_t.c,
    )
    # credit/v2's sale (the red team's wash trade: v1 counted every transfer, unpriced ones
    # between two of a platform's own references included). Prices are canonical decimal
    # text (str(int)), so "0" is the only zero; a transfer to the seller party itself never
    # counts; a good passed round counts once per seller party (and reporter).
    to_itself = and_(t.seller_platform == t.buyer_platform, t.seller_ref == t.buyer_ref)
    sales = (
        select(
            literal("sale").label("kind"),
            t.platform,
            t.seller_platform,
            t.seller_ref,
            func.min(t.created_at).label("at"),
        )
        .where(
            t.created_at <= as_of,
            t.price.is_not(None),
            t.price != "0",
            not_(t.price.startswith("-")),
            # NULL seller (the creator's sale) is another party than any buyer.
            t.seller_platform.is_(None) | t.seller_ref.is_(None) | not_(to_itself),
        )
        .group_by(t.platform, t.seller_platform, t.seller_ref, t.good_type, t.fingerprint)
    )
    refunds = select(
        literal("refund").label("kind"),
        o.platform,
        o.seller_platform,
        o.seller_ref,
        o.updated_at.label("at"),
    ).where(o.state == State.REFUNDED, o.updated_at <= as_of)
    attempts = select(
        a.reason.label("kind"), a.platform, a.seller_platform, a.seller_ref, a.at
    ).where(a.reason.in_(tuple(ATTEMPT_KINDS)), a.at <= as_of)
    due_at = func.coalesce(r.settled_at, r.created_at)
    overdue = (
        select(
            literal("overdue").label("kind"),
            r.platform,
            literal(None).label("seller_platform"),
            literal(None).label("seller_ref"),
            due_at.label("at"),
        )
        .select_from(royalty_lines_t.outerjoin(payout_lines_t, pl.line_id == r.id))
        .where(r.status == "due", pl.line_id.is_(None), due_at <= as_of - overdue_after)
    )
    if sellers:
        return union_all(sales, refunds, attempts)
    return union_all(sales, refunds, attempts, overdue)


def read_facts(conn: Connection, *, as_of: int, overdue_after: int) -> Iterator[Fact]:
    """Every fact the formula reads as of ``as_of`` (for the export), in no set order."""
    for row in conn.execute(_facts_query(as_of, overdue_after)):
        kind = ATTEMPT_KINDS.get(row.kind, row.kind)
        seller_ref = None if row.seller_ref is None else bytes(row.seller_ref)
        yield Fact(kind, row.platform, row.seller_platform, seller_ref, int(row.at))


@dataclass
class _Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    first: int | None = None

    def add(self, kind: str, count: int, first: int | None) -> None:
        self.counts[kind] += count
        if first is not None and (self.first is None or first < self.first):
            self.first = first

    def inputs(self, as_of: int) -> CreditInputs:
        c = self.counts
        days = 0 if self.first is None else max(0, (as_of - self.first) // DAY)
        return CreditInputs(
            sales_completed=c["sale"],
            fake_deliveries_refused=c["fake-delivery"],
            disputes_lost=c["refund"],
            bad_sale_attempts=c["bad-sale"],
            dead_goods_offered=c["dead-good"],
            overdue_royalties=c["overdue"],
            days_active=days,
        )


def subject_inputs(
    conn: Connection,
    platform: str,
    seller_ref: bytes | None = None,
    *,
    as_of: int,
    overdue_after: int,
) -> CreditInputs:
    """A platform's inputs (``seller_ref`` None) or a seller's on ``platform``, by SQL
    aggregates: a count and a first time per kind."""
    # A seller's facts are found by its party's indexes (migration 0027); a platform's by the
    # platform's, in every branch (the database pushes the condition into each).
    facts = _facts_query(as_of, overdue_after, sellers=seller_ref is not None).subquery()
    f = facts.c
    if seller_ref is None:
        where = f.platform == platform
    else:
        where = (f.seller_platform == platform) & (f.seller_ref == seller_ref)
    tally = _Tally()
    for row in conn.execute(
        select(f.kind, func.count(), func.min(f.at)).where(where).group_by(f.kind)
    ):
        kind = str(row[0])
        tally.add(ATTEMPT_KINDS.get(kind, kind), int(row[1]), int(row[2]))
    return tally.inputs(as_of)


def all_inputs(conn: Connection, *, as_of: int, overdue_after: int) -> dict[Subject, CreditInputs]:
    """Every platform's and seller's inputs from one grouped pass over the facts (by
    platform, seller party and kind; each group added to its platform and its seller): what
    scoring a whole market costs (``bench/credit_bench.py``)."""
    facts = _facts_query(as_of, overdue_after).subquery()
    f = facts.c
    tallies: dict[Subject, _Tally] = {}
    grouped = select(
        f.platform, f.seller_platform, f.seller_ref, f.kind, func.count(), func.min(f.at)
    ).group_by(f.platform, f.seller_platform, f.seller_ref, f.kind)
    for platform, seller_platform, seller_ref, kind, count, first in conn.execute(grouped):
        kind = ATTEMPT_KINDS.get(kind, kind)
        subjects: list[Subject] = [("platform", platform, None)]
        if seller_platform is not None and seller_ref is not None:
            subjects.append(("seller", seller_platform, bytes(seller_ref)))
        for subject in subjects:
            tallies.setdefault(subject, _Tally()).add(kind, int(count), int(first))
    return {subject: tally.inputs(as_of) for subject, tally in tallies.items()}


def fold(facts: Iterable[Fact], *, as_of: int) -> dict[Subject, CreditInputs]:
    """Every platform's and seller's inputs from the facts alone (the recompute's path)."""
    tallies: dict[Subject, _Tally] = {}
    for fact in facts:
        if fact.at > as_of:
            continue
        subjects: list[Subject] = [("platform", fact.platform, None)]
        if fact.seller_platform is not None and fact.seller_ref is not None:
            subjects.append(("seller", fact.seller_platform, fact.seller_ref))
        for subject in subjects:
            tallies.setdefault(subject, _Tally()).add(fact.kind, 1, fact.at)
    return {subject: tally.inputs(as_of) for subject, tally in tallies.items()}


def credit_document(
    subject: Subject,
    inputs: CreditInputs,
    *,
    as_of: int,
    overdue_after: int,
    formula: str = FORMULA,
) -> dict[str, object]:
    """A score as the API answers it and the recompute prints it (``CreditOut``); ``formula``
    is the one the inputs were read under (an old export's may be ``credit/v1``)."""
    kind, platform, seller_ref = subject
    return {
        "subject": kind,
        "platform": platform,
        "seller": None if seller_ref is None else "0x" + seller_ref.hex(),
        **credit_score(inputs, formula).as_dict(),
        "as_of": as_of,
        "overdue_after": overdue_after,
    }


def read_credit(
    conn: Connection,
    platform: str,
    seller_ref: bytes | None = None,
    *,
    as_of: int,
    overdue_after: int,
) -> dict[str, object]:
    """A platform's (or its seller's) score, inputs and formula, read as of ``as_of``."""
    inputs = subject_inputs(conn, platform, seller_ref, as_of=as_of, overdue_after=overdue_after)
    subject: Subject = ("platform" if seller_ref is None else "seller", platform, seller_ref)
    return credit_document(subject, inputs, as_of=as_of, overdue_after=overdue_after)


__all__ = [
    "ATTEMPT_KINDS",
    "KINDS",
    "Fact",
    "Subject",
    "all_inputs",
    "credit_document",
    "fold",
    "read_credit",
    "read_facts",
    "subject_inputs",
]
