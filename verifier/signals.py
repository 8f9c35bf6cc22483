"""Piracy and fraud signals: explainable rules over the registry's records, each with its evidence.

Every rule is a pure function over plain records (``verifier.market``: read from the database
by ``read_inputs``, or made by hand in a test) and returns ``Signal``s naming what they are
about (``subject``), why (``detail``), and the rows that raised them (``evidence``). The
numbers a rule compares against live in one frozen ``Thresholds``: they were chosen by the
tuning step of the labelled scenario generator (``python -m bench.scenario --tune-only``) on
its tuning seeds and then frozen here; the benchmark scores them on other seeds and mixes.

The rules (``evaluate`` runs them all):

=========================  ==========================================================  ========
code                       fires when                                                  subject
=========================  ==========================================================  ========
``duplicate-claim``        another creator claimed an already registered good          good
                           (CONFLICT entries; log order proves who was first)
``sold-by-non-holder``     a refused transfer whose seller was not the holder (409),   good
                           unless it repeats the accepted report (a retry)
``offered-by-non-holder``  a single-use code, after it moved, verified by platforms    good
                           that neither held it nor acquired it: when it was already
                           consumed, or on ``offer_min_platforms`` such platforms
``dead-good-transfer``     a refused transfer of a revoked or consumed good, unless    good
                           it repeats the final sale (a retry)
``probe-burst``            a burst of failed code lookups from one platform key (or    key
                           all anonymous callers), or a key the rate limiter flagged
``code-velocity``          one single-use code verified on ``code_min_platforms``      good
                           platforms within ``code_window``
``platform-velocity``      a platform verifying many single-use codes it never         platform
                           acquires, far above its own usual rate
``batch-velocity``         many codes of one bulk batch appearing at once on a         batch
                           platform that never acquires them (a leaked batch)
``laundering-ring``        a good passed around the same few parties, coming back      good
                           to earlier holders, at rising prices
=========================  ==========================================================  ========

"Acquires" is the honest twin that keeps these rules quiet: a platform that verifies a code
and then records buying it (within ``offer_grace``) is a buyer checking its purchase, the
shape of a launch-day sale however large the burst.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from registry.eip712 import checksum_address as checksum
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from verifier.market import (
    ANONYMOUS,
    REFUSED_CONSUMED,
    REFUSED_DOUBLE_SALE,
    REFUSED_NOT_DISTRIBUTOR,
    REFUSED_NOT_THE_HOLDER,
    REFUSED_REVOKED,
    AttemptRecord,
    EntryRecord,
    GoodKey,
    HoldingRecord,
    ProbeFlag,
    SignalInputs,
    TransferRecord,
    VerificationRecord,
)

DUPLICATE_CLAIM: Final = "duplicate-claim"
SOLD_BY_NON_HOLDER: Final = "sold-by-non-holder"
OFFERED_BY_NON_HOLDER: Final = "offered-by-non-holder"
DEAD_GOOD_TRANSFER: Final = "dead-good-transfer"
PROBE_BURST: Final = "probe-burst"
CODE_VELOCITY: Final = "code-velocity"
PLATFORM_VELOCITY: Final = "platform-velocity"
BATCH_VELOCITY: Final = "batch-velocity"
LAUNDERING_RING: Final = "laundering-ring"
#: Not a rule: the explanation ``verifier.anomaly`` attaches to a high anomaly score.
ANOMALY: Final = "anomaly"

#: How much each signal adds to a good's risk (``verifier.anomaly``): 1 - prod(1 - weight).
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


# -- signals ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What a signal is about: ``kind`` is good, platform, key, batch or creator."""

    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """One record that raised a signal, named so an auditor can look it up."""

    kind: str  # entry, transfer, attempt, verification, probe-flag
    ref: str
    at: int | None
    detail: str


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


def batch_subject(record_id: int) -> Subject:
    return Subject("batch", f"batch:{record_id}")


def _party(platform: str | None, ref: bytes | None) -> str:
    if platform is None:
        return "the creator"
    return f"{platform}/{ref.hex()[:8] if ref is not None else '?'}"


def _transfer_evidence(t: TransferRecord) -> Evidence:
    price = "" if t.price is None else f" for {t.price} {t.currency or ''}".rstrip()
    return Evidence(
        "transfer",
        f"transfer {t.transfer_id}",
        t.created_at,
        f"{_party(t.seller_platform, t.seller_ref)} -> {_party(t.buyer_platform, t.buyer_ref)}"
        f"{price}, reported by {t.platform}{', final' if t.final else ''}",
    )


def _attempt_evidence(a: AttemptRecord) -> Evidence:
    return Evidence(
        "attempt",
        f"attempt {a.attempt_id}",
        a.at,
        f"{a.platform} reported {_party(a.seller_platform, a.seller_ref)} -> "
        f"{_party(a.buyer_platform, a.buyer_ref)}; refused: {a.reason}",
    )


def _verification_evidence(v: VerificationRecord) -> Evidence:
    return Evidence(
        "verification", f"verification {v.event_id}", v.at, f"{v.platform} by {v.via}: {v.verdict}"
    )


def _capped(evidence: Iterable[Evidence]) -> tuple[Evidence, ...]:
    items = list(evidence)
    return tuple(items[:MAX_EVIDENCE])


# -- what happened to each good ----------------------------------------------------------------


class Chains:
    """Each good's accepted transfers in order, to ask who held it and who acquired it when."""

    def __init__(
        self, transfers: Iterable[TransferRecord], holdings: Mapping[GoodKey, HoldingRecord]
    ) -> None:
        by_good: dict[GoodKey, list[TransferRecord]] = defaultdict(list)
        for t in transfers:
            by_good[t.good].append(t)
        for chain in by_good.values():
            chain.sort(key=lambda t: (t.created_at, t.transfer_id))
        self.by_good: dict[GoodKey, list[TransferRecord]] = dict(by_good)
        self.holdings = holdings
        self._by_id = {t.transfer_id: t for chain in by_good.values() for t in chain}
        # (good, platform) -> when the platform first took part in a transfer of the good.
        self._first_dealt: dict[tuple[GoodKey, str], int] = {}
        for good, chain in self.by_good.items():
            for t in chain:
                for platform in t.platforms:
                    self._first_dealt.setdefault((good, platform), t.created_at)

    def transfer(self, transfer_id: int | None) -> TransferRecord | None:
        return None if transfer_id is None else self._by_id.get(transfer_id)

    def dealt_by(self, good: GoodKey, platform: str, until: int) -> bool:
        """Did ``platform`` take part in a transfer of ``good`` at or before ``until``?"""
        first = self._first_dealt.get((good, platform))
        return first is not None and first <= until

    def state_at(self, good: GoodKey, at: int) -> tuple[bool, str | None, bool]:
        """(moved, holder platform, consumed) just before ``at``."""
        chain = self.by_good.get(good, [])
        times = [t.created_at for t in chain]
        done = bisect.bisect_left(times, at)
        if done:
            last = chain[done - 1]
            return True, last.buyer_platform, last.final
        if chain:  # the earliest transfer we see was made by the holder of the time
            return chain[0].seller_platform is not None, chain[0].seller_platform, False
        holding = self.holdings.get(good)
        if holding is not None:  # it moved before the period we read
            return True, holding.holder_platform, holding.consumed
        return False, None, False


def _is_retry(attempt: AttemptRecord, accepted: TransferRecord | None, th: Thresholds) -> bool:
    """A refused report repeating the accepted one: the platform retried without a key."""
    return (
        accepted is not None
        and accepted.platform == attempt.platform
        and accepted.seller_platform == attempt.seller_platform
        and accepted.seller_ref == attempt.seller_ref
        and accepted.buyer_platform == attempt.buyer_platform
        and accepted.buyer_ref == attempt.buyer_ref
        and accepted.price == attempt.price
        and 0 <= attempt.at - accepted.created_at <= th.retry_window
    )


def _window_max(times: Sequence[int], window: int) -> tuple[int, int]:
    """The most of the sorted ``times`` inside any ``window`` seconds, and where it starts."""
    best, best_start, lo = 0, 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 > best:
            best, best_start = hi - lo + 1, lo
    return best, best_start


def _dense_spans(times: Sequence[int], window: int, least: int) -> list[tuple[int, int]]:
    """The merged stretches of the sorted ``times`` covered by windows holding ``least``."""
    spans: list[tuple[int, int]] = []
    lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 >= least:
            if spans and times[lo] <= spans[-1][1]:
                spans[-1] = (spans[-1][0], t)
            else:
                spans.append((times[lo], t))
    return spans


# -- the rules ---------------------------------------------------------------------------------


def duplicate_claims(
    registrations: Mapping[GoodKey, EntryRecord], conflicts: Iterable[EntryRecord]
) -> list[Signal]:
    """Duplicate content claimed by different creators: one signal per contested good."""
    by_good: dict[GoodKey, list[EntryRecord]] = defaultdict(list)
    for entry in conflicts:
        if entry.kind == int(EntryKind.CONFLICT):
            by_good[entry.good].append(entry)
    signals = []
    for good, claims in by_good.items():
        claims.sort(key=lambda e: (e.leaf_index is None, e.leaf_index or 0, e.entry_id))
        first = registrations.get(good)
        evidence = []
        if first is not None:
            evidence.append(
                Evidence(
                    "entry",
                    f"leaf {first.leaf_index}",
                    first.timestamp,
                    f"REGISTER by {checksum(first.actor)}",
                )
            )
        evidence += [
            Evidence(
                "entry", f"leaf {c.leaf_index}", c.timestamp, f"CONFLICT by {checksum(c.actor)}"
            )
            for c in claims
        ]
        owner = "its creator" if first is None else checksum(first.actor)
        claimants = sorted({checksum(c.actor) for c in claims})
        signals.append(
            Signal(
                DUPLICATE_CLAIM,
                f"registered first by {owner}; later claimed by {', '.join(claimants)}"
                f" ({len(claims)} claim(s), log order proves who was first)",
                _capped(evidence),
                good_subject(good),
                (good,),
            )
        )
    return signals


def sold_by_non_holder(
    attempts: Iterable[AttemptRecord], chains: Chains, th: Thresholds
) -> list[Signal]:
    """Refused double sales (the seller did not hold the good), retries left out, first
    sales claimed by a platform the creator did not name as a distributor, and goods another
    platform holds claimed without its consent (``not-the-holder``)."""
    by_good: dict[GoodKey, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        if a.reason not in (REFUSED_DOUBLE_SALE, REFUSED_NOT_DISTRIBUTOR, REFUSED_NOT_THE_HOLDER):
            continue
        if _is_retry(a, chains.transfer(a.earlier_transfer_id), th):
            continue
        by_good[a.good].append(a)
    signals = []
    for good, found in by_good.items():
        found.sort(key=lambda a: (a.at, a.attempt_id))
        evidence = [_attempt_evidence(a) for a in found]
        earlier = next(
            (
                chains.transfer(a.earlier_transfer_id)
                for a in found
                if a.earlier_transfer_id is not None
            ),
            None,
        )
        if earlier is not None:
            evidence.insert(0, _transfer_evidence(earlier))
        doubles = [a for a in found if a.reason == REFUSED_DOUBLE_SALE]
        unnamed = sorted({a.platform for a in found if a.reason == REFUSED_NOT_DISTRIBUTOR})
        unasked = sorted({a.platform for a in found if a.reason == REFUSED_NOT_THE_HOLDER})
        sellers = sorted({_party(a.seller_platform, a.seller_ref) for a in doubles})
        said = []
        if doubles:
            said.append(f"sold {len(doubles)} time(s) by {', '.join(sellers)}, who did not hold it")
        if unnamed:
            said.append(
                f"claimed first-hand from its creator by {', '.join(unnamed)}, "
                "not among the creator's distributors"
            )
        if unasked:
            said.append(
                f"claimed from another platform's holder by {', '.join(unasked)}, "
                "without that platform's consent"
            )
        concerned = {a.platform for a in found} | ({earlier.buyer_platform} if earlier else set())
        signals.append(
            Signal(
                SOLD_BY_NON_HOLDER,
                "; ".join(said),
                _capped(evidence),
                good_subject(good),
                (good,),
                tuple(sorted(concerned)),
            )
        )
    return signals


def dead_good_transfers(
    attempts: Iterable[AttemptRecord], chains: Chains, th: Thresholds
) -> list[Signal]:
    """Refused transfers of revoked or consumed goods, retries of the final sale left out."""
    by_good: dict[GoodKey, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        if a.reason == REFUSED_REVOKED or (
            a.reason == REFUSED_CONSUMED
            and not _is_retry(a, chains.transfer(a.earlier_transfer_id), th)
        ):
            by_good[a.good].append(a)
    signals = []
    for good, found in by_good.items():
        found.sort(key=lambda a: (a.at, a.attempt_id))
        reasons = sorted({a.reason for a in found})
        signals.append(
            Signal(
                DEAD_GOOD_TRANSFER,
                f"{len(found)} transfer attempt(s) of a {' and '.join(reasons)} good",
                _capped(_attempt_evidence(a) for a in found),
                good_subject(good),
                (good,),
                tuple(sorted({a.platform for a in found})),
            )
        )
    return signals


def offered_by_non_holder(
    verifications: Iterable[VerificationRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
) -> list[Signal]:
    """A single-use code, after it moved, verified on platforms that are not its holder's and
    that do not acquire it within ``offer_grace``: someone is offering what they do not hold.

    Fires at once for a consumed code (a used card offered again); otherwise when
    ``offer_min_platforms`` such platforms saw it, since one platform checking a code and not
    buying it is an honest declined offer.
    """
    foreign: dict[GoodKey, dict[str, VerificationRecord]] = defaultdict(dict)
    consumed_offer: set[GoodKey] = set()
    for v in verifications:
        if v.platform == ANONYMOUS or v.verdict == "unknown":
            continue
        entry = registrations.get(v.good)
        if entry is None or entry.use != int(Use.SINGLE):
            continue
        moved, holder, consumed = chains.state_at(v.good, v.at)
        if not moved or v.platform == holder or chains.dealt_by(v.good, v.platform, v.at):
            continue
        if not consumed:
            if v.at + th.offer_grace > now:
                continue  # it may still record buying it
            if chains.dealt_by(v.good, v.platform, v.at + th.offer_grace):
                continue
        else:
            consumed_offer.add(v.good)
        foreign[v.good].setdefault(v.platform, v)
    signals = []
    for good, seen in foreign.items():
        if good not in consumed_offer and len(seen) < th.offer_min_platforms:
            continue
        found = sorted(seen.values(), key=lambda v: (v.at, v.event_id))
        state = "after it was consumed" if good in consumed_offer else "while another party held it"
        signals.append(
            Signal(
                OFFERED_BY_NON_HOLDER,
                f"offered on {len(found)} platform(s) that never held it ({', '.join(seen)}) "
                f"{state}",
                _capped(_verification_evidence(v) for v in found),
                good_subject(good),
                (good,),
                tuple(sorted(seen)),
            )
        )
    return signals


def probe_bursts(
    verifications: Iterable[VerificationRecord], flags: Iterable[ProbeFlag], th: Thresholds
) -> list[Signal]:
    """Card-draining probes: failed code lookups piling up for one key (or for all anonymous
    callers together), or a key the API's rate limiter flagged for exhausting its budget."""
    lookups: dict[str, list[VerificationRecord]] = defaultdict(list)
    for v in verifications:
        if v.via == "code":
            lookups[v.platform].append(v)
    signals = []
    for platform, events in lookups.items():
        events.sort(key=lambda v: (v.at, v.event_id))
        failed = [v for v in events if v.failed_code_lookup]
        if len(failed) < th.probe_min_failures:
            continue
        times = [v.at for v in failed]
        peak, _ = _window_max(times, th.probe_window)
        if peak < th.probe_min_failures:
            continue
        # The burst: every stretch where a window holds at least the threshold of failures.
        spans = _dense_spans(times, th.probe_window, th.probe_min_failures)
        inside = [v for v in events if any(a <= v.at <= b for a, b in spans)]
        burst = [v for v in inside if v.failed_code_lookup]
        if len(burst) < th.probe_min_ratio * len(inside):
            continue
        hits = [v for v in inside if not v.failed_code_lookup]
        evidence = [_verification_evidence(v) for v in burst[:3]]
        evidence += [_verification_evidence(v) for v in hits]
        minutes = (spans[-1][1] - spans[0][0]) // 60
        signals.append(
            Signal(
                PROBE_BURST,
                f"{len(burst)} failed code lookups of {len(inside)} by {platform} over "
                f"{minutes} min (up to {peak} within {th.probe_window // 60} min); "
                f"{len(hits)} hit(s), possibly drained codes",
                _capped(evidence),
                Subject("key", f"platform:{platform}"),
                tuple(dict.fromkeys(v.good for v in hits)),
                () if platform == ANONYMOUS else (platform,),
            )
        )
    for flag in flags:
        if flag.failed_probes + flag.refused < th.probe_flag_min:
            continue
        signals.append(
            Signal(
                PROBE_BURST,
                f"{flag.key} exhausted its failed-code-lookup budget: {flag.failed_probes} "
                f"failed, {flag.refused} refused since it was flagged",
                (
                    Evidence(
                        "probe-flag", flag.key, int(flag.first_at), f"last at {int(flag.last_at)}"
                    ),
                ),
                Subject("key", flag.key),
            )
        )
    return signals


def code_velocity(
    verifications: Iterable[VerificationRecord],
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
) -> list[Signal]:
    """One single-use code verified on many platforms at once: listed in several places."""
    by_good: dict[GoodKey, list[VerificationRecord]] = defaultdict(list)
    for v in verifications:
        if v.platform == ANONYMOUS or v.verdict == "unknown":
            continue
        entry = registrations.get(v.good)
        if entry is not None and entry.use == int(Use.SINGLE):
            by_good[v.good].append(v)
    signals = []
    for good, events in by_good.items():
        if len({v.platform for v in events}) < th.code_min_platforms:
            continue
        events.sort(key=lambda v: (v.at, v.event_id))
        seen: Counter[str] = Counter()
        lo = 0
        for hi, v in enumerate(events):
            seen[v.platform] += 1
            while v.at - events[lo].at > th.code_window:
                seen[events[lo].platform] -= 1
                if not seen[events[lo].platform]:
                    del seen[events[lo].platform]
                lo += 1
            if len(seen) >= th.code_min_platforms:
                window = events[lo : hi + 1]
                signals.append(
                    Signal(
                        CODE_VELOCITY,
                        f"verified on {len(seen)} platforms ({', '.join(sorted(seen))}) within "
                        f"{(v.at - events[lo].at) // 60} min",
                        _capped(_verification_evidence(w) for w in window),
                        good_subject(good),
                        (good,),
                        tuple(sorted(seen)),
                    )
                )
                break
    return signals


def _foreign_verifications(
    verifications: Iterable[VerificationRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    now: int,
) -> Iterator[tuple[VerificationRecord, bool]]:
    """Settled verifications of single-use codes by platforms, with "never acquired" flags:
    (event, foreign) once ``offer_grace`` has passed, so that a pending purchase is neither."""
    for v in verifications:
        if v.platform == ANONYMOUS or v.verdict == "unknown":
            continue
        entry = registrations.get(v.good)
        if entry is None or entry.use != int(Use.SINGLE) or v.at + th.offer_grace > now:
            continue
        yield v, not chains.dealt_by(v.good, v.platform, v.at + th.offer_grace)


def platform_velocity(
    verifications: Iterable[VerificationRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
    since: int,
) -> list[Signal]:
    """A platform verifying many codes it never acquires, far above its own usual rate: it is
    listing someone else's codes (a leak), not checking purchases."""
    firsts: dict[str, dict[GoodKey, VerificationRecord]] = defaultdict(dict)
    settled: dict[str, list[int]] = defaultdict(list)
    for v, foreign in _foreign_verifications(verifications, chains, registrations, th, now):
        settled[v.platform].append(v.at)
        if foreign:
            seen = firsts[v.platform]
            if v.good not in seen or v.at < seen[v.good].at:
                seen[v.good] = v
    signals = []
    span = max(1, (now - since) // th.platform_window + 1)
    for platform, seen in firsts.items():
        events = sorted(seen.values(), key=lambda v: (v.at, v.event_id))
        times = [v.at for v in events]
        count, start = _window_max(times, th.platform_window)
        if count < th.platform_min_foreign:
            continue
        buckets = Counter((t - since) // th.platform_window for t in times)
        per_window = sorted([*buckets.values(), *[0] * max(0, span - len(buckets))])
        baseline = per_window[len(per_window) // 2]
        if count < th.platform_baseline_factor * baseline:
            continue
        window = events[start : start + count]
        t0, t1 = window[0].at, window[-1].at
        checked = sum(1 for t in settled[platform] if t0 <= t <= t1)
        if count < th.platform_min_foreign_ratio * checked:
            continue
        signals.append(
            Signal(
                PLATFORM_VELOCITY,
                f"{platform} verified {count} single-use codes it never acquired within "
                f"{th.platform_window // HOUR} h (its usual: {baseline} per window)",
                _capped(_verification_evidence(v) for v in window),
                Subject("platform", platform),
                tuple(v.good for v in window),
                (platform,),
            )
        )
    return signals


def batch_velocity(
    verifications: Iterable[VerificationRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
) -> list[Signal]:
    """Many codes of one bulk batch appearing at once on a platform that never acquires them:
    the batch leaked (a launch-day sale is as large a burst, but its platform buys each code)."""
    firsts: dict[tuple[int, str], dict[GoodKey, tuple[VerificationRecord, bool]]] = defaultdict(
        dict
    )
    for v, foreign in _foreign_verifications(verifications, chains, registrations, th, now):
        entry = registrations[v.good]
        if entry.position is None:
            continue
        seen = firsts[(entry.record_id, v.platform)]
        if v.good not in seen or v.at < seen[v.good][0].at:
            seen[v.good] = (v, foreign)
    signals = []
    for (record_id, platform), seen in firsts.items():
        events = sorted(seen.values(), key=lambda pair: (pair[0].at, pair[0].event_id))
        foreign_times = [v.at for v, foreign in events if foreign]
        count, start = _window_max(foreign_times, th.batch_window)
        if count < th.batch_min_codes:
            continue
        t0, t1 = foreign_times[start], foreign_times[start + count - 1]
        window = [(v, f) for v, f in events if t0 <= v.at <= t1]
        if count / len(window) < th.batch_min_foreign_ratio:
            continue
        leaked = [v for v, f in window if f]
        positions = sorted(p for v in leaked if (p := registrations[v.good].position) is not None)
        signals.append(
            Signal(
                BATCH_VELOCITY,
                f"{count} codes of batch {record_id} (positions {positions[0]}-{positions[-1]}) "
                f"first appeared on {platform} within {(t1 - t0) // 60} min, which never "
                f"acquired them ({len(window) - count} it did)",
                _capped(_verification_evidence(v) for v in leaked),
                batch_subject(record_id),
                tuple(v.good for v in leaked),
                (platform,),
            )
        )
    return signals


def laundering_rings(chains: Chains, th: Thresholds) -> list[Signal]:
    """A good passed around the same few parties, returning to earlier holders, at rising
    prices: the value moves, the good only goes round (laundering through game cards)."""
    signals = []
    rings: dict[frozenset[tuple[str, bytes]], list[GoodKey]] = defaultdict(list)
    found: list[tuple[GoodKey, list[TransferRecord], frozenset[tuple[str, bytes]], int]] = []
    for good, chain in chains.by_good.items():
        if len(chain) < th.ring_min_returns + 2:
            continue
        # Where each party's holding starts: a seller held it from its sale's index on (it
        # held it before we saw it), a buyer from the next transfer.
        held: dict[tuple[str, bytes], int] = {}
        returns, start = 0, None
        for i, t in enumerate(chain):
            if t.seller_platform is not None and t.seller_ref is not None:
                held.setdefault((t.seller_platform, t.seller_ref), i)
            buyer = (t.buyer_platform, t.buyer_ref)
            if buyer in held:
                returns += 1
                if start is None:
                    start = held[buyer]
            held.setdefault(buyer, i + 1)
        if returns < th.ring_min_returns or start is None:
            continue
        cycle = chain[start:]
        narrowed: set[tuple[str, bytes]] = set()
        for t in cycle:
            narrowed.add((t.buyer_platform, t.buyer_ref))
            if t.seller_platform is not None and t.seller_ref is not None:
                narrowed.add((t.seller_platform, t.seller_ref))
        prices = [t.price for t in cycle if t.price is not None]
        if len(narrowed) > th.ring_max_parties or len(prices) < 2 or prices[0] <= 0:
            continue
        rising = all(b > a for a, b in itertools.pairwise(prices))
        if not rising or prices[-1] < th.ring_min_growth * prices[0]:
            continue
        parties = frozenset(narrowed)
        rings[parties].append(good)
        found.append((good, cycle, parties, returns))
    for good, cycle, parties, returns in found:
        prices = [t.price for t in cycle if t.price is not None]
        others = len(rings[parties]) - 1
        names = ", ".join(sorted(_party(p, r) for p, r in parties))
        signals.append(
            Signal(
                LAUNDERING_RING,
                f"went round {len(parties)} parties ({names}) {returns} time(s) back to an "
                f"earlier holder, price {prices[0]} -> {prices[-1]}"
                + (f"; the same parties did this with {others} other good(s)" if others else ""),
                _capped(_transfer_evidence(t) for t in cycle),
                good_subject(good),
                (good,),
                tuple(sorted({p for p, _ in parties})),
            )
        )
    return signals


def evaluate(
    inputs: SignalInputs, thresholds: Thresholds | None = None, *, now: int, since: int = 0
) -> list[Signal]:
    """Every rule over one period's records (``since`` .. ``now``, Unix seconds)."""
    th = thresholds or Thresholds()
    chains = Chains(inputs.transfers, inputs.holdings)
    regs = inputs.registrations
    events = inputs.verifications
    return [
        *duplicate_claims(regs, inputs.conflicts),
        *sold_by_non_holder(inputs.attempts, chains, th),
        *offered_by_non_holder(events, chains, regs, th, now=now),
        *dead_good_transfers(inputs.attempts, chains, th),
        *probe_bursts(events, inputs.probe_flags, th),
        *code_velocity(events, regs, th),
        *platform_velocity(events, chains, regs, th, now=now, since=since),
        *batch_velocity(events, chains, regs, th, now=now),
        *laundering_rings(chains, th),
    ]


__all__ = [
    "ANOMALY",
    "BATCH_VELOCITY",
    "CODE_VELOCITY",
    "DEAD_GOOD_TRANSFER",
    "DUPLICATE_CLAIM",
    "LAUNDERING_RING",
    "OFFERED_BY_NON_HOLDER",
    "PLATFORM_VELOCITY",
    "PROBE_BURST",
    "SOLD_BY_NON_HOLDER",
    "WEIGHTS",
    "Chains",
    "Evidence",
    "Signal",
    "Subject",
    "Thresholds",
    "batch_velocity",
    "code_velocity",
    "dead_good_transfers",
    "duplicate_claims",
    "evaluate",
    "good_name",
    "good_subject",
    "laundering_rings",
    "offered_by_non_holder",
    "platform_velocity",
    "probe_bursts",
    "sold_by_non_holder",
]
