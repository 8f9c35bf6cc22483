"""Wire schemas of the standing fraud and piracy signals auditors list."""

from __future__ import annotations

from typing import Literal

from verifier.schemas.fields import (
    Strict,
)


class SignalSubjectOut(Strict):
    #: party: a holder, ``platform/0x`` and the keyed hash of its reference.
    kind: Literal["good", "platform", "key", "batch", "creator", "party"]
    id: str


class EvidenceOut(Strict):
    """One record that raised a signal: ``kind`` entry, transfer, attempt, verification or
    probe-flag; ``ref`` names it (``transfer 12``) for a trace or an export."""

    kind: str
    ref: str
    at: int | None
    detail: str


class SignalDetailOut(Strict):
    """A signal as auditors list it: the rule, what it is about, and its evidence."""

    signal_id: str
    code: str
    detail: str
    weight: float
    subject: SignalSubjectOut
    #: The goods it implicates (``code:0x...``), the first ``MAX_LISTED_GOODS`` of ``goods_total``.
    goods: list[str]
    goods_total: int
    platforms: list[str]
    evidence: list[EvidenceOut]


class SignalPage(Strict):
    #: When the risk index these signals come from was built (Unix seconds; 0: not yet).
    built_at: int
    items: list[SignalDetailOut]
    next_cursor: str | None
