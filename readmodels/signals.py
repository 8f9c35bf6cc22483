"""Piracy and fraud signals: what a rule raises (code, subject, evidence), and the thresholds.

A ``Signal`` names what it is about (``subject``), why (``detail``, an English sentence, and
``message``, the same said as the pages' catalogue templates and their parameters), and the
rows that raised it (``evidence``). The numbers a rule compares against live in one frozen
``Thresholds``: they were chosen by the tuning step of the labelled scenario generator
(``python -m bench.scenario --tune-only``) on its tuning seeds and then frozen here; the
benchmark scores them on other seeds and mixes. The rules themselves are in
``readmodels.holderrules`` and ``readmodels.velocityrules`` and the laundering red flags in
``readmodels.launderrules``; ``readmodels.rules.evaluate`` runs them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from readmodels.launderruleslimits import DEFAULT_AMOUNT_LIMITS, AmountLimit
from readmodels.market import (
    AttemptRecord,
    GoodKey,
    TransferRecord,
    VerificationEventRecord,
)
from registry.fingerprints import GoodType

DUPLICATE_CLAIM: Final = "duplicate-claim"
SOLD_BY_NON_HOLDER: Final = "sold-by-non-holder"
OFFERED_BY_NON_HOLDER: Final = "offered-by-non-holder"
DEAD_GOOD_TRANSFER: Final = "dead-good-transfer"
PROBE_BURST: Final = "probe-burst"
CODE_VELOCITY: Final = "code-velocity"
PLATFORM_VELOCITY: Final = "platform-velocity"
BATCH_VELOCITY: Final = "batch-velocity"
LAUNDERING_RING: Final = "laundering-ring"
#: The laundering red flags (issue 18 item 2, ``readmodels.launderrules``).
BELOW_FACE_VALUE: Final = "below-face-value"
FAST_CASH_OUT: Final = "fast-cash-out"
FAN_IN: Final = "fan-in"
BUYER_DAILY_AMOUNT: Final = "buyer-daily-amount"
ROUND_TRIP: Final = "round-trip"
VERIFY_PER_PURCHASE: Final = "verify-per-purchase"
REDEEMED_ELSEWHERE: Final = "redeemed-elsewhere"
#: About a platform: due royalty or rebate lines left unpaid past the overdue age
#: (``readmodels.payoutrules``; read from the ledger, not the market's records).
PAYOUT_OVERDUE: Final = "payout-overdue"
#: About a seller account: sales above a limit per currency without a real-name attestation
#: at the required level (``readmodels.realnamerule``; read from transfers and attestations).
UNATTESTED_SELLER: Final = "unattested-seller"
#: Not a rule: the explanation ``readmodels.riskindex`` attaches to a high anomaly score.
ANOMALY: Final = "anomaly"

#: How much each signal adds to a good's risk (``readmodels.riskindex``): 1 - prod(1 - weight).
WEIGHTS: Final[Mapping[str, float]] = {
    DUPLICATE_CLAIM: 0.6,
    SOLD_BY_NON_HOLDER: 0.7,
    OFFERED_BY_NON_HOLDER: 0.6,
    DEAD_GOOD_TRANSFER: 0.7,
    PROBE_BURST: 0.5,
    CODE_VELOCITY: 0.5,
    PLATFORM_VELOCITY: 0.6,
    BATCH_VELOCITY: 0.7,
    LAUNDERING_RING: 0.7,
    # Red flags, not proof: each has an honest look-alike (a clearance sale, a quick gift).
    BELOW_FACE_VALUE: 0.4,
    FAST_CASH_OUT: 0.5,
    FAN_IN: 0.5,
    BUYER_DAILY_AMOUNT: 0.4,
    ROUND_TRIP: 0.3,
    VERIFY_PER_PURCHASE: 0.3,
    REDEEMED_ELSEWHERE: 0.4,
    # About a platform's dues, not a good: it implicates no good, so it adds to no good's risk.
    PAYOUT_OVERDUE: 0.5,
    # About a seller, not a good: like payout-overdue it adds to no good's risk.
    UNATTESTED_SELLER: 0.3,
    # The anomaly score enters a risk as itself; its explanation adds nothing more.
    ANOMALY: 0.0,
}

#: At most this many evidence items per signal (a leaked batch can name thousands of codes):
#: the detail says how many there were, the first ones are listed.
MAX_EVIDENCE: Final = 25
#: Goods a signal's document lists (a leaked batch can implicate thousands; the count is given).
MAX_LISTED_GOODS: Final = 20

HOUR: Final = 3_600


@dataclass(frozen=True)
class Thresholds:
    """Every number the rules compare against, tuned on the scenario generator and frozen."""

    #: A refused report identical to the accepted one (platform, seller, buyer, price) within
    #: this many seconds is a platform retrying without an Idempotency-Key, not a double sale.
    retry_window: int = 600
    #: A platform that verifies a code may record acquiring it this long afterwards.
    offer_grace: int = 2 * HOUR
    #: Foreign platforms (neither held nor acquired it) verifying a moved, unconsumed code.
    offer_min_platforms: int = 2
    #: Failed code lookups of one key within ``probe_window`` ...
    probe_window: int = HOUR
    probe_min_failures: int = 40
    #: ... that are at least this share of its code lookups in that window.
    probe_min_ratio: float = 0.5
    #: A rate-limiter flag with at least this many failed and refused probes.
    probe_flag_min: int = 20
    #: Distinct platforms verifying one single-use code within ``code_window``.
    code_window: int = HOUR
    code_min_platforms: int = 3
    #: A platform's foreign codes (verified, never acquired) within ``platform_window`` ...
    platform_window: int = 6 * HOUR
    platform_min_foreign: int = 30
    #: ... at least this many times its median over the look-back's windows, and at least
    #: this share of the codes it verified in that window.
    platform_baseline_factor: float = 3.0
    platform_min_foreign_ratio: float = 0.5
    #: Codes of one batch first verified by one platform within ``batch_window`` ...
    batch_window: int = 6 * HOUR
    batch_min_codes: int = 20
    #: ... of which at least this share it never acquires.
    batch_min_foreign_ratio: float = 0.8
    #: A good coming back to an earlier holder at least this often ...
    ring_min_returns: int = 3
    #: ... among at most this many parties ...
    ring_max_parties: int = 4
    #: ... its price rising at every hop, by at least this much from the cycle's first to last.
    ring_min_growth: float = 1.5
    # -- laundering red flags (``readmodels.launderrules``) --
    #: A resale (its seller not the creator) priced below this share of its product's face
    #: value, in the face value's own currency.
    face_min_ratio: float = 0.5
    #: Registration (its leaf's timestamp) to the consuming final transfer, a resale between.
    cash_out_window: int = 30 * 60
    #: Distinct first holders (who bought from the creator) selling to one buyer party ...
    fan_in_min_sources: int = 5
    #: ... within this many seconds.
    fan_in_window: int = 24 * HOUR
    #: The most one buyer party may pay per code and within ``amount_window``, per currency
    #: (``readmodels.launderruleslimits``: the defaults and the rules they are from).
    amount_limits: tuple[AmountLimit, ...] = DEFAULT_AMOUNT_LIMITS
    amount_window: int = 24 * HOUR
    #: A good coming back to an earlier holder at least this often (a ring is reported as one).
    round_trip_min_returns: int = 1
    #: Verifications that found a good, at least this many ...
    verify_min_events: int = 8
    #: ... and at least this many per accepted transfer of it (one transfer at least).
    verify_min_per_purchase: float = 8.0


# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What a signal is about: ``kind`` is good, platform, key, batch, creator or party (a
    holder: a platform and a reference hash)."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record that raised a signal, named so an auditor can look it up."""

    kind: str  # entry, transfer, attempt, verification, probe-flag
    ref: str
    at: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class DetailPart:
    """One clause of a signal's detail as a page catalogue's template (``api/messages``:
    ``signal.<code>.detail`` or ``signal.<code>.detail.<variant>``) and the values of its
    ``{name}`` placeholders: counts, amounts, ids, currency codes, lists of ids, never an
    English word (a word a page translates is a variant of the key, or a ``js.param.<name>.
    <value>`` text). A page joins a signal's parts with its language's separator."""

    key: str
    params: tuple[tuple[str, str | int], ...]

    def document(self) -> dict[str, Any]:
        return {"key": self.key, "params": dict(self.params)}


def says(code: str, variant: str = "", **params: str | int) -> DetailPart:
    """A clause of ``code``'s detail: ``signal.<code>.detail[.<variant>]`` with ``params``.
    NOTE: called with the code's constant, a literal variant and keyword parameters only:
    tests/readmodels/test_signal_details.py reads every call from the syntax tree and checks
    both catalogues carry each template with exactly these parameters."""
    key = f"signal.{code}.detail" + (f".{variant}" if variant else "")
    return DetailPart(key, tuple(sorted(params.items())))


@dataclass(frozen=True)
class Signal:
    code: str
    detail: str
    evidence: tuple[Evidence, ...]
    subject: Subject
    #: The goods this signal implicates (its subject for a good's signal; the leaked codes of
    #: a batch; the codes a probing key hit), which the risk index attaches it to.
    goods: tuple[GoodKey, ...] = ()
    #: The platforms it concerns (whose reports, lookups or holdings it is about): whom a
    #: "signal raised" webhook goes to. Empty for a creators' matter (duplicate claims).
    platforms: tuple[str, ...] = ()
    #: ``detail`` as catalogue templates (``DetailPart``), for a page in its reader's language.
    #: NOTE: not in ``document()`` (the API's, the history's and the reports' signal: a new
    #: member there would make a new version of every signal) nor in its identity; the risk
    #: worker writes it with each good's signals, which the verify answer reads.
    message: tuple[DetailPart, ...] = field(default=(), compare=False)

    @property
    def weight(self) -> float:
        return WEIGHTS[self.code]

    @property
    def signal_id(self) -> str:
        """Stable across refreshes: the same rule about the same subject is the same signal."""
        digest = hashlib.sha256(f"{self.code}\0{self.subject.kind}\0{self.subject.id}".encode())
        return digest.hexdigest()[:32]

    def document(self) -> dict[str, Any]:
        """The signal as the API lists it and webhooks send it (``SignalDetailOut``): the
        first ``MAX_LISTED_GOODS`` goods it implicates, and how many there are."""
        return {
            "signal_id": self.signal_id,
            "code": self.code,
            "detail": self.detail,
            "weight": self.weight,
            "subject": {"kind": self.subject.kind, "id": self.subject.id},
            "goods": [good_name(g) for g in self.goods[:MAX_LISTED_GOODS]],
            "goods_total": len(self.goods),
            "platforms": list(self.platforms),
            "evidence": [
                {"kind": e.kind, "ref": e.ref, "at": e.at, "detail": e.detail}
                for e in self.evidence
            ],
        }


def good_name(good: GoodKey) -> str:
    return f"{GoodType(good[0]).name.lower()}:0x{good[1].hex()}"


def good_subject(good: GoodKey) -> Subject:
    return Subject("good", good_name(good))


def good_signal(
    code: str,
    detail: str,
    evidence: Iterable[Evidence],
    good: GoodKey,
    platforms: Iterable[str],
    *message: DetailPart,
) -> Signal:
    """A signal about one good: the good is its subject and all it implicates."""
    return Signal(
        code,
        detail,
        capped(evidence),
        good_subject(good),
        (good,),
        tuple(sorted(platforms)),
        message,
    )


def batch_subject(record_id: int) -> Subject:
    return Subject("batch", f"batch:{record_id}")


def party_name(platform: str | None, ref: bytes | None) -> str:
    if platform is None:
        return "the creator"
    return f"{platform}/{ref.hex()[:8] if ref is not None else '?'}"


def transfer_evidence(t: TransferRecord) -> Evidence:
    price = "" if t.price is None else f" for {t.price} {t.currency or ''}".rstrip()
    return Evidence(
        "transfer",
        f"transfer {t.transfer_id}",
        t.created_at,
        f"{party_name(t.seller_platform, t.seller_ref)} -> "
        f"{party_name(t.buyer_platform, t.buyer_ref)}{price}, "
        f"reported by {t.platform}{', final' if t.final else ''}",
    )


def attempt_evidence(a: AttemptRecord) -> Evidence:
    return Evidence(
        "attempt",
        f"attempt {a.attempt_id}",
        a.at,
        f"{a.platform} reported {party_name(a.seller_platform, a.seller_ref)} -> "
        f"{party_name(a.buyer_platform, a.buyer_ref)}; refused: {a.reason}",
    )


def verification_evidence(v: VerificationEventRecord) -> Evidence:
    return Evidence(
        "verification", f"verification {v.event_id}", v.at, f"{v.platform} by {v.via}: {v.verdict}"
    )


def capped(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    items = list(evidence)
    return tuple(items[:MAX_EVIDENCE])


__all__ = [
    "ANOMALY",
    "BATCH_VELOCITY",
    "BELOW_FACE_VALUE",
    "BUYER_DAILY_AMOUNT",
    "CODE_VELOCITY",
    "DEAD_GOOD_TRANSFER",
    "DUPLICATE_CLAIM",
    "FAN_IN",
    "FAST_CASH_OUT",
    "LAUNDERING_RING",
    "MAX_EVIDENCE",
    "MAX_LISTED_GOODS",
    "OFFERED_BY_NON_HOLDER",
    "PAYOUT_OVERDUE",
    "PLATFORM_VELOCITY",
    "PROBE_BURST",
    "REDEEMED_ELSEWHERE",
    "ROUND_TRIP",
    "SOLD_BY_NON_HOLDER",
    "UNATTESTED_SELLER",
    "VERIFY_PER_PURCHASE",
    "WEIGHTS",
    "DetailPart",
    "Evidence",
    "Signal",
    "Subject",
    "Thresholds",
    "attempt_evidence",
    "batch_subject",
    "capped",
    "good_name",
    "good_signal",
    "good_subject",
    "party_name",
    "says",
    "transfer_evidence",
    "verification_evidence",
]
