"""Wire schema of a credit score (issue 18 item 1): the score, its inputs, its formula."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt

from verifier.schemas.fields import Strict

Count = Annotated[StrictInt, Field(ge=0, le=2**53 - 1)]


class CreditInputsOut(Strict):
    """The facts the score was computed from (``registry.creditfacts`` says which rows)."""

    sales_completed: Count
    fake_deliveries_refused: Count
    disputes_lost: Count
    bad_sale_attempts: Count
    dead_goods_offered: Count
    overdue_royalties: Count
    days_active: Count


class CreditOut(Strict):
    """A platform's or a seller's score under ``formula`` (``registry.credit``): ``score`` is
    null while ``rating`` is ``unrated`` (too little history, not a bad score). Recompute it
    from ``inputs`` (or from an evidence export's facts: ``tracemark credit recompute``)."""

    subject: Literal["platform", "seller"]
    platform: str
    #: The seller's keyed reference hash (as exports carry it); null for a platform.
    seller: str | None
    formula: Literal["credit/v1", "credit/v2"]
    rating: Literal["rated", "unrated"]
    score: Annotated[StrictInt, Field(ge=0, le=1000)] | None
    inputs: CreditInputsOut
    #: The time the inputs were read as of (Unix seconds).
    as_of: Count
    #: How long a due royalty line stays unpaid before it counts as overdue (seconds).
    overdue_after: Count


class HolderCreditOut(Strict):
    """A verify answer's current holder's credit: the holding platform's score and, when a
    seller reference holds the good there, that seller's. Read from the scores the risk
    worker refreshes every ``refreshed_every`` seconds (``registry.creditscores``), not per
    request: each score's ``as_of`` says when it was computed and its ``inputs`` recompute it;
    the ``*_url`` routes answer the same score read live. ``seller`` is null while the holding
    reference has no fact as a seller (it never sold: its score would be unrated)."""

    platform: CreditOut | None
    seller: CreditOut | None
    platform_url: str
    seller_url: str | None
    refreshed_every: Count


class PlatformCreditsOut(Strict):
    """Every platform's score as the risk worker last computed it (each with its ``as_of``
    and inputs), refreshed every ``refreshed_every`` seconds: the auditor's table."""

    items: list[CreditOut]
    refreshed_every: Count
