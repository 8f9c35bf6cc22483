"""Credit scores (信用分, issue 18 item 1): the published formulas ``credit/v1``, ``/v2``, pure.

A score is a function of a subject's inputs alone (counts of facts the registry holds, and
the days since its first one), in integer arithmetic only, so anyone holding the inputs (or
the facts, ``registry.creditfacts``) gets the same number on any machine. The constants
below are frozen: changing any of them is a new version, never an edit.

``credit/v2`` (published since the red team's wash-trade finding) keeps this arithmetic and
changes what a sale is (``registry.creditfacts``): v1 counted every recorded transfer, v2
counts a transfer only when priced above 0, to a buyer party other than the seller, and
each good once per seller party and reporting platform. The version a document names
selects the rule, so an export naming ``credit/v1`` still recomputes to its v1 number.

    rated  iff  sales_completed >= MIN_SALES and days_active >= MIN_DAYS (else "unrated")

    earned  = min(SALES_CAP, SALES_STEP * bit_length(sales_completed))
            + min(TIME_CAP, TIME_CAP * days_active // TIME_FULL_DAYS)
    weighted = W_FAKE * fake_deliveries_refused + W_DISPUTE * disputes_lost
             + W_BAD_SALE * bad_sale_attempts + W_DEAD_GOOD * dead_goods_offered
             + W_OVERDUE * overdue_royalties
    penalty = min(PENALTY_CAP, PENALTY_SCALE * weighted // (sales_completed + SALES_DAMPING))
    score   = max(0, BASE + earned - penalty)                      (0 .. 1000)

So the score never falls when sales or days active grow (more sales also dilute the
penalty) and never rises when any refusal, lost dispute or overdue royalty is added; the
caps and floors make these weak, not strict, steps. Unrated is "not enough history", not a
bad score: it carries no number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

#: The formula the registry publishes now; ``FORMULAS`` every one a document may name.
FORMULA: Final = "credit/v2"
FORMULAS: Final = ("credit/v1", "credit/v2")

#: The minimum history to be rated.
MIN_SALES: Final = 10
MIN_DAYS: Final = 30

BASE: Final = 500
SALES_STEP: Final = 30
SALES_CAP: Final = 300
TIME_CAP: Final = 200
TIME_FULL_DAYS: Final = 365

W_FAKE: Final = 20
W_DISPUTE: Final = 10
W_BAD_SALE: Final = 15
W_DEAD_GOOD: Final = 5
W_OVERDUE: Final = 3
PENALTY_SCALE: Final = 400
PENALTY_CAP: Final = 1000
SALES_DAMPING: Final = 10

MAX_SCORE: Final = BASE + SALES_CAP + TIME_CAP

#: An input beyond this is refused (a count no registry reaches; keeps the numbers bounded).
MAX_INPUT: Final = 2**53 - 1


@dataclass(frozen=True)
class CreditInputs:
    """What a formula reads of one subject (a platform, or a seller on a platform)."""

    sales_completed: int = 0
    fake_deliveries_refused: int = 0
    #: Orders refunded after a dispute (the seller lost it).
    disputes_lost: int = 0
    #: Refused transfers: double sale or not the holder.
    bad_sale_attempts: int = 0
    #: Refused transfers of goods revoked or consumed.
    dead_goods_offered: int = 0
    #: Royalty lines owed past the overdue age (a platform's; a seller owes none).
    overdue_royalties: int = 0
    days_active: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():  # not asdict: it copies, 10x the cost
            if type(value) is not int or not 0 <= value <= MAX_INPUT:
                raise ValueError(f"{name} must be an integer in [0, 2^53 - 1]")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class CreditScore:
    """A score with what it was computed from: ``score`` is None when unrated."""

    formula: str
    rated: bool
    score: int | None
    inputs: CreditInputs

    def as_dict(self) -> dict[str, object]:
        return {
            "formula": self.formula,
            "rating": "rated" if self.rated else "unrated",
            "score": self.score,
            "inputs": self.inputs.as_dict(),
        }


def is_rated(inputs: CreditInputs) -> bool:
    """The minimum-history rule."""
    return inputs.sales_completed >= MIN_SALES and inputs.days_active >= MIN_DAYS


def penalty(inputs: CreditInputs) -> int:
    weighted = (
        W_FAKE * inputs.fake_deliveries_refused
        + W_DISPUTE * inputs.disputes_lost
        + W_BAD_SALE * inputs.bad_sale_attempts
        + W_DEAD_GOOD * inputs.dead_goods_offered
        + W_OVERDUE * inputs.overdue_royalties
    )
    return min(PENALTY_CAP, PENALTY_SCALE * weighted // (inputs.sales_completed + SALES_DAMPING))


def earned(inputs: CreditInputs) -> int:
    sales = min(SALES_CAP, SALES_STEP * inputs.sales_completed.bit_length())
    time = min(TIME_CAP, TIME_CAP * inputs.days_active // TIME_FULL_DAYS)
    return sales + time


def credit_score(inputs: CreditInputs, formula: str = FORMULA) -> CreditScore:
    """``formula`` of ``inputs`` (see the module's formula: v1 and v2 share the arithmetic,
    their inputs differ in what a sale is, so the inputs must be read under ``formula``)."""
    if formula not in FORMULAS:
        raise ValueError(f"unknown credit formula (known: {', '.join(FORMULAS)})")
    if not is_rated(inputs):
        return CreditScore(formula, False, None, inputs)
    return CreditScore(formula, True, max(0, BASE + earned(inputs) - penalty(inputs)), inputs)


__all__ = [
    "FORMULA",
    "FORMULAS",
    "MAX_SCORE",
    "CreditInputs",
    "CreditScore",
    "credit_score",
    "is_rated",
]
