"""A statistical risk number on top of the rules, and the in-memory risk index verify reads.

The score: robust z-scores (median and MAD) of a few features per good and per platform,
combined into one number from 0 to 1.

- Per good: ``verification_rate`` (platform verifications a day), ``platforms`` (distinct
  platforms that verified it), ``foreign_platforms`` (of those, the ones that never took part
  in a transfer of it), ``transfer_rate`` (transfers a day) and ``price_change`` (log2 of its
  highest price over its first). Rates are per day of *exposure*: the time since
  registration (or since the start of the look-back, if later), floored at one day, which is
  how the time since registration enters: on its own it would flag every launch.
- Per platform: ``verification_rate``, ``failure_ratio`` (failed code lookups), ``foreign_ratio``
  (single-use codes it verified and never acquired), ``transfer_rate``, ``refused_ratio``
  (refused transfers among its reports). Ratios are shrunk towards 0 for small counts.

For each feature, z = (x - median) / scale over the population (the goods of one type, or the
platforms, active in the look-back), with scale = 1.4826 x MAD; when more than half the
population shares one value (MAD = 0, usual: most goods are never verified twice) the
scale falls back to the distance from the median to the 90th percentile / 1.2816, and is never
below a per-feature floor (so that "2 platforms where everyone has 1" is not a 10-sigma
event). Only the suspicious side counts (z > 0). The combined distance d = sqrt(sum z^2)
maps to ``d^2 / (d^2 + HALF^2)``: 0 for a typical good, 0.5 at ``HALF`` robust deviations,
monotone in every feature's distance, and below 1.

NOTE: why not an isolation forest. (1) Explainability: a robust z names the feature and by
how much ("verified 40 times a day, median 0.2"), which an auditor can check; a path length
in random trees cannot be explained. (2) Dependencies: numpy is not installed and
scikit-learn is not to be added; a forest in pure Python would be slow to build every few
seconds at 10^5 goods, and non-deterministic unless seeded. (3) The features are few and each
is suspicious in one direction only; a forest isolates both tails, so never-verified and
very cheap goods would look as anomalous as hot ones. (4) The median and MAD have a 50%
breakdown point: a few frauds in the reference population (the point of the exercise) do not
move the baseline they are measured against, where a mean and standard deviation would be
dragged towards them.

``RiskIndex`` combines the score with the rules (``verifier.signals``): a good's risk is
``1 - (1 - anomaly) x prod(1 - weight)`` over the distinct signals that implicate it. It is
built from the database (``RiskIndex.build``) and refreshed incrementally (only rows past
the last ids read) by the risk worker (``verifier.riskworker``), a process of its own, which
writes each good's risk where the verify statement joins it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Protocol, TypeVar

from sqlalchemy import Engine, Row, Select, Table, func, select

from registry.db import read_transaction
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models import Holding, Product, Transfer, TransferAttempt, VerificationEvent
from verifier.market import (
    ANONYMOUS,
    AttemptRecord,
    EntryRecord,
    GoodKey,
    HoldingRecord,
    ProbeFlag,
    SignalInputs,
    TransferRecord,
    VerificationRecord,
)
from verifier.signals import (
    ANOMALY,
    Chains,
    Evidence,
    Signal,
    Subject,
    Thresholds,
    evaluate,
    good_subject,
)

K = TypeVar("K")

DAY: Final = 86_400
#: How far back the index reads (and keeps records in memory).
LOOKBACK: Final = 30 * DAY
#: How often the risk worker (``verifier.riskworker``) tops the index up.
REFRESH_SECONDS: Final = 5.0
#: Most verification events kept (~150 bytes each): past this, the newest only, so the rules
#: see a shorter window than ``LOOKBACK`` on a platform verifying thousands a second.
MAX_EVENTS: Final = 1_000_000
#: The combined robust distance at which the anomaly score is 0.5.
HALF: Final = 6.0
#: An anomaly score from which the index explains it with an ``anomaly`` signal.
EXPLAIN_FROM: Final = 0.5
#: Goods whose risk is below this and that have no signal are not stored (risk 0).
STORE_FROM: Final = 0.05
#: MAD to a normal standard deviation; the normal's 90th percentile in standard deviations.
_MAD_TO_SD: Final = 1.4826
_Q90_SD: Final = 1.2816
#: Counts added to a ratio's denominator, so that 1 failure in 1 lookup is not 100%.
_SHRINK: Final = 10.0

#: The smallest scale of each feature: a difference below it is never a deviation.
FLOORS: Final[Mapping[str, float]] = {
    "verification_rate": 1.0,
    "platforms": 1.0,
    "foreign_platforms": 1.0,
    "transfer_rate": 0.5,
    "price_change": 0.5,
    "failure_ratio": 0.05,
    "foreign_ratio": 0.1,
    "refused_ratio": 0.05,
}


@dataclass(frozen=True, slots=True)
class Scale:
    """A feature's robust centre and spread over a population."""

    median: float
    scale: float

    @classmethod
    def fit(cls, values: Sequence[float], floor: float) -> Scale:
        if not values:
            return cls(0.0, floor)
        ordered = sorted(values)
        median = _quantile(ordered, 0.5)
        mad = _quantile(sorted(abs(v - median) for v in ordered), 0.5)
        scale = _MAD_TO_SD * mad
        if scale == 0.0:
            scale = (_quantile(ordered, 0.9) - median) / _Q90_SD
        return cls(median, max(scale, floor))

    def z(self, value: float) -> float:
        return (value - self.median) / self.scale


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not ordered:
        return 0.0
    position = q * (len(ordered) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)


def anomaly_score(zs: Iterable[float], half: float = HALF) -> float:
    """0..1 from robust z-scores: only the suspicious side (z > 0) counts."""
    d2 = sum(z * z for z in zs if z > 0)
    return d2 / (d2 + half * half)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One feature's part in a score: its value, the population's median, its z."""

    feature: str
    value: float
    median: float
    z: float


def score_population(
    features: Mapping[K, Mapping[str, float]], floors: Mapping[str, float] = FLOORS
) -> dict[K, tuple[float, list[Contribution]]]:
    """Every member's anomaly score against the population it belongs to."""
    names = sorted({name for values in features.values() for name in values})
    scales = {
        name: Scale.fit([values.get(name, 0.0) for values in features.values()], floors[name])
        for name in names
    }
    scored: dict[K, tuple[float, list[Contribution]]] = {}
    for member, values in features.items():
        parts = []
        for name in names:
            value = values.get(name, 0.0)
            parts.append(Contribution(name, value, scales[name].median, scales[name].z(value)))
        scored[member] = (anomaly_score(p.z for p in parts), parts)
    return scored


# -- features ----------------------------------------------------------------------------------


def good_features(
    inputs: SignalInputs, chains: Chains, *, now: int, since: int, grace: int
) -> dict[int, dict[GoodKey, dict[str, float]]]:
    """Per good type, per good named by the records: the good's features."""
    verifications: Counter[GoodKey] = Counter()
    platforms: dict[GoodKey, set[str]] = defaultdict(set)
    foreign: dict[GoodKey, set[str]] = defaultdict(set)
    for v in inputs.verifications:
        if v.platform != ANONYMOUS and v.verdict != "unknown":
            verifications[v.good] += 1
            platforms[v.good].add(v.platform)
            if v.at + grace <= now and not chains.dealt_by(v.good, v.platform, v.at + grace):
                foreign[v.good].add(v.platform)
    transfers: Counter[GoodKey] = Counter()
    prices: dict[GoodKey, list[int]] = defaultdict(list)
    for t in sorted(inputs.transfers, key=lambda t: (t.created_at, t.transfer_id)):
        transfers[t.good] += 1
        if t.price is not None:
            prices[t.good].append(t.price)
    out: dict[int, dict[GoodKey, dict[str, float]]] = defaultdict(dict)
    for good in set(verifications) | set(transfers):
        entry = inputs.registrations.get(good)
        if entry is None:
            continue
        start = max(entry.timestamp or since, since)
        days = max(1.0, (now - start) / DAY)
        seen = prices.get(good, [])
        change = 0.0
        if len(seen) >= 2 and seen[0] > 0:
            change = max(0.0, math.log2(max(seen) / seen[0]))
        out[good[0]][good] = {
            "verification_rate": verifications[good] / days,
            "platforms": float(len(platforms[good])),
            "foreign_platforms": float(len(foreign[good])),
            "transfer_rate": transfers[good] / days,
            "price_change": change,
        }
    return dict(out)


def platform_features(
    inputs: SignalInputs, chains: Chains, *, now: int, since: int, grace: int
) -> dict[str, dict[str, float]]:
    """Per platform (verifying or reporting, anonymous callers together): its features."""
    days = max(1.0, (now - since) / DAY)
    verified: Counter[str] = Counter()
    lookups: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    foreign: Counter[str] = Counter()
    for v in inputs.verifications:
        verified[v.platform] += 1
        if v.via == "code":
            lookups[v.platform] += 1
            failed[v.platform] += v.failed_code_lookup
        entry = inputs.registrations.get(v.good)
        if (
            v.platform == ANONYMOUS
            or v.verdict == "unknown"
            or entry is None
            or entry.use != 1
            or v.at + grace > now
        ):
            continue
        settled[v.platform] += 1
        foreign[v.platform] += not chains.dealt_by(v.good, v.platform, v.at + grace)
    reported: Counter[str] = Counter(t.platform for t in inputs.transfers)
    refused: Counter[str] = Counter(a.platform for a in inputs.attempts)
    names = set(verified) | set(reported) | set(refused)
    return {
        p: {
            "verification_rate": verified[p] / days,
            "failure_ratio": failed[p] / (lookups[p] + _SHRINK),
            "foreign_ratio": foreign[p] / (settled[p] + _SHRINK),
            "transfer_rate": reported[p] / days,
            "refused_ratio": refused[p] / (refused[p] + reported[p] + _SHRINK),
        }
        for p in names
    }


def _explain(subject: Subject, score: float, parts: Sequence[Contribution]) -> Signal:
    top = sorted((p for p in parts if p.z > 0), key=lambda p: -p.z)[:3]
    described = "; ".join(
        f"{p.feature.replace('_', ' ')} {p.value:.2f} (median {p.median:.2f}, z {p.z:.1f})"
        for p in top
    )
    return Signal(
        ANOMALY,
        f"anomaly score {score:.2f}: {described}",
        tuple(Evidence("feature", p.feature, None, f"{p.value:.3f}") for p in top),
        subject,
    )


# -- reading the records from the database -------------------------------------------------

_transfers_t: Table = Transfer.__table__  # type: ignore[attr-defined]
_attempts_t: Table = TransferAttempt.__table__  # type: ignore[attr-defined]
_holdings_t: Table = Holding.__table__  # type: ignore[attr-defined]
_events_t: Table = VerificationEvent.__table__  # type: ignore[attr-defined]
_products_t: Table = Product.__table__  # type: ignore[attr-defined]

#: Fingerprints per ``IN (...)`` when reading the goods the records name.
_CHUNK = 500


@dataclass
class Watermarks:
    """The last row ids read, so that a reader can come back for only what is new."""

    entry: int = 0
    transfer: int = 0
    attempt: int = 0
    event: int = 0


def _default_use(good_type: int) -> int:
    return int(Use.SINGLE if good_type == int(GoodType.CODE) else Use.TRANSFERABLE)


def _entry_record(row: Row[Any]) -> EntryRecord:
    r = row._mapping
    use = r["use"] if r["use"] is not None else _default_use(int(r["good_type"]))
    return EntryRecord(
        entry_id=int(r["id"]),
        kind=int(r["kind"]),
        good_type=int(r["good_type"]),
        fingerprint=bytes(r["fingerprint"]),
        actor=bytes(r["actor"]),
        leaf_index=None if r["leaf_index"] is None else int(r["leaf_index"]),
        timestamp=None if r["timestamp"] is None else int(r["timestamp"]),
        record_id=int(r["record_id"]),
        position=r["position"],
        use=int(use),
    )


def _entries_query() -> Select[Any]:
    e = entries_t.c
    return select(
        e.id,
        e.kind,
        e.good_type,
        e.fingerprint,
        e.actor,
        e.leaf_index,
        e.timestamp,
        e.record_id,
        e.position,
        _products_t.c.use,
    ).outerjoin(_products_t, _products_t.c.id == e.product_id)


def read_inputs(
    engine: Engine,
    *,
    since: int = 0,
    after: Watermarks | None = None,
    known: Iterable[GoodKey] = (),
    probe_flags: Sequence[ProbeFlag] = (),
    max_events: int | None = None,
) -> tuple[SignalInputs, Watermarks]:
    """The records from ``since`` on (and only rows past ``after``, for an incremental
    reader; of verification events, at most about the newest ``max_events``), the REGISTER
    entries and holdings of the goods they name (except ``known`` ones), and the new
    watermarks. SQLAlchemy Core, one read transaction."""
    marks = after or Watermarks()
    e, t, a, v, h = entries_t.c, _transfers_t.c, _attempts_t.c, _events_t.c, _holdings_t.c
    with read_transaction(engine) as conn:
        first_event = marks.event
        if max_events is not None:
            # Ids are assigned in order: the newest rows are the highest ids.
            newest = conn.execute(select(func.max(v.id))).scalar()
            first_event = max(first_event, int(newest or 0) - max_events)
        conflicts = [
            _entry_record(row)
            for row in conn.execute(
                _entries_query()
                .where(e.kind == int(EntryKind.CONFLICT), e.id > marks.entry)
                .order_by(e.id)
            )
        ]
        transfers = [
            TransferRecord(
                transfer_id=int(r.id),
                good_type=int(r.good_type),
                fingerprint=bytes(r.fingerprint),
                creator=bytes(r.creator),
                platform=r.platform,
                seller_platform=r.seller_platform,
                seller_ref=None if r.seller_ref is None else bytes(r.seller_ref),
                buyer_platform=r.buyer_platform,
                buyer_ref=bytes(r.buyer_ref),
                price=None if r.price is None else int(r.price),
                currency=r.currency,
                final=bool(r.final),
                created_at=int(r.created_at),
            )
            for r in conn.execute(
                select(_transfers_t)
                .where(t.id > marks.transfer, t.created_at >= since)
                .order_by(t.id)
            )
        ]
        attempts = [
            AttemptRecord(
                attempt_id=int(r.id),
                at=int(r.at),
                platform=r.platform,
                good_type=int(r.good_type),
                fingerprint=bytes(r.fingerprint),
                seller_platform=r.seller_platform,
                seller_ref=None if r.seller_ref is None else bytes(r.seller_ref),
                buyer_platform=r.buyer_platform,
                buyer_ref=bytes(r.buyer_ref),
                price=None if r.price is None else int(r.price),
                final=bool(r.final),
                reason=r.reason,
                earlier_transfer_id=r.earlier_transfer_id,
            )
            for r in conn.execute(
                select(_attempts_t).where(a.id > marks.attempt, a.at >= since).order_by(a.id)
            )
        ]
        events = [
            VerificationRecord(
                int(r.id),
                int(r.at),
                r.platform,
                int(r.good_type),
                bytes(r.fingerprint),
                r.via,
                r.verdict,
            )
            for r in conn.execute(
                select(_events_t).where(v.id > first_event, v.at >= since).order_by(v.id)
            )
        ]
        named: set[GoodKey] = set()
        for records in (conflicts, transfers, attempts, events):
            named.update(x.good for x in records)
        skip = set(known)
        registrations: dict[GoodKey, EntryRecord] = {}
        holdings: dict[GoodKey, HoldingRecord] = {}
        by_type: dict[int, list[bytes]] = defaultdict(list)
        for good_type, fingerprint in named:
            by_type[good_type].append(fingerprint)
        for good_type, fingerprints in by_type.items():
            for i in range(0, len(fingerprints), _CHUNK):
                chunk = fingerprints[i : i + _CHUNK]
                unknown = [f for f in chunk if (good_type, f) not in skip]
                for row in (
                    ()
                    if not unknown
                    else conn.execute(
                        _entries_query().where(
                            e.kind == int(EntryKind.REGISTER),
                            e.good_type == good_type,
                            e.fingerprint.in_(unknown),
                        )
                    )
                ):
                    record = _entry_record(row)
                    registrations[record.good] = record
                for r in conn.execute(
                    select(_holdings_t).where(h.good_type == good_type, h.fingerprint.in_(chunk))
                ):
                    holdings[(good_type, bytes(r.fingerprint))] = HoldingRecord(
                        good_type,
                        bytes(r.fingerprint),
                        r.holder_platform,
                        bool(r.consumed),
                        int(r.last_transfer_id),
                    )
    marks = Watermarks(
        entry=max([marks.entry, *(c.entry_id for c in conflicts)]),
        transfer=max([marks.transfer, *(x.transfer_id for x in transfers)]),
        attempt=max([marks.attempt, *(x.attempt_id for x in attempts)]),
        event=max([marks.event, *(x.event_id for x in events)]),
    )
    inputs = SignalInputs(
        registrations=registrations,
        conflicts=conflicts,
        transfers=transfers,
        attempts=attempts,
        holdings=holdings,
        verifications=events,
        probe_flags=tuple(probe_flags),
    )
    return inputs, marks


# -- the index ---------------------------------------------------------------------------------


@dataclass
class _Store:
    """The records of the look-back, kept in memory and topped up with new rows only."""

    registrations: dict[GoodKey, EntryRecord] = field(default_factory=dict)
    conflicts: dict[int, EntryRecord] = field(default_factory=dict)
    transfers: dict[int, TransferRecord] = field(default_factory=dict)
    attempts: dict[int, AttemptRecord] = field(default_factory=dict)
    holdings: dict[GoodKey, HoldingRecord] = field(default_factory=dict)
    verifications: list[VerificationRecord] = field(default_factory=list)
    marks: Watermarks = field(default_factory=Watermarks)

    def update(self, engine: Engine, since: int) -> None:
        new, self.marks = read_inputs(
            engine,
            since=since,
            after=self.marks,
            known=self.registrations.keys(),
            max_events=MAX_EVENTS,
        )
        self.registrations.update(new.registrations)
        self.holdings.update(new.holdings)
        self.conflicts.update((c.entry_id, c) for c in new.conflicts)
        self.transfers.update((t.transfer_id, t) for t in new.transfers)
        self.attempts.update((a.attempt_id, a) for a in new.attempts)
        self.verifications.extend(new.verifications)
        # Forget what fell out of the look-back.
        self.transfers = {k: t for k, t in self.transfers.items() if t.created_at >= since}
        self.attempts = {k: a for k, a in self.attempts.items() if a.at >= since}
        if self.verifications and self.verifications[0].at < since:
            self.verifications = [v for v in self.verifications if v.at >= since]
        if len(self.verifications) > MAX_EVENTS:
            del self.verifications[: len(self.verifications) - MAX_EVENTS]

    def inputs(self, probe_flags: Sequence[ProbeFlag]) -> SignalInputs:
        return SignalInputs(
            registrations=self.registrations,
            conflicts=list(self.conflicts.values()),
            transfers=list(self.transfers.values()),
            attempts=list(self.attempts.values()),
            holdings=self.holdings,
            verifications=self.verifications,
            probe_flags=tuple(probe_flags),
        )


@dataclass(frozen=True)
class Risk:
    """A good's (or a platform's) risk: the number and the signals behind it."""

    score: float
    signals: tuple[Signal, ...]


_NO_RISK: Final = Risk(0.0, ())


class RiskIndex:
    """Risk per good and per platform, computed in the background, read in O(1).

    An index is immutable once built; ``refreshed`` returns a new one (reading only rows past
    the last ids this one read), so a reader swaps one reference and never sees half an index.
    """

    def __init__(
        self,
        goods: Mapping[GoodKey, Risk],
        platforms: Mapping[str, Risk],
        signals: Sequence[Signal],
        *,
        built_at: int,
        thresholds: Thresholds,
        lookback: int = LOOKBACK,
        store: _Store | None = None,
        engine: Engine | None = None,
    ) -> None:
        self._goods = dict(goods)
        self._platforms = dict(platforms)
        self.signals: tuple[Signal, ...] = tuple(signals)
        self.built_at = built_at
        self.thresholds = thresholds
        self.lookback = lookback
        self._store = store
        self._engine = engine

    # -- reads (the hot path) -------------------------------------------------------------

    def risk(self, good_type: int, fingerprint: bytes) -> tuple[float, list[Signal]]:
        """The good's risk from 0 to 1 and the signals behind it; (0.0, []) if nothing."""
        found = self._goods.get((int(good_type), fingerprint), _NO_RISK)
        return found.score, list(found.signals)

    def platform_risk(self, platform: str) -> tuple[float, list[Signal]]:
        found = self._platforms.get(platform, _NO_RISK)
        return found.score, list(found.signals)

    def __len__(self) -> int:
        return len(self._goods)

    def goods(self) -> Mapping[GoodKey, Risk]:
        """Every good with a risk (a signal, or a score from ``STORE_FROM``), read-only."""
        return MappingProxyType(self._goods)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_inputs(
        cls,
        inputs: SignalInputs,
        *,
        now: int,
        since: int = 0,
        thresholds: Thresholds | None = None,
    ) -> RiskIndex:
        """The index over records already in hand (pure: tests and the scenario benchmark)."""
        th = thresholds or Thresholds()
        signals = evaluate(inputs, th, now=now, since=since)
        chains = Chains(inputs.transfers, inputs.holdings)
        by_good: dict[GoodKey, dict[str, Signal]] = defaultdict(dict)
        by_platform: dict[str, dict[str, Signal]] = defaultdict(dict)
        for signal in signals:
            for good in signal.goods:
                by_good[good].setdefault(signal.code, signal)
            if signal.subject.kind == "platform":
                by_platform[signal.subject.id].setdefault(signal.code, signal)
            elif signal.subject.kind == "key" and signal.subject.id.startswith("platform:"):
                by_platform[signal.subject.id.removeprefix("platform:")].setdefault(
                    signal.code, signal
                )
        goods: dict[GoodKey, Risk] = {}
        per_type = good_features(inputs, chains, now=now, since=since, grace=th.offer_grace)
        for members in per_type.values():
            for good, (score, parts) in score_population(members).items():
                explained = by_good[good]
                if score >= EXPLAIN_FROM:
                    explained.setdefault(ANOMALY, _explain(good_subject(good), score, parts))
                goods[good] = _combine(score, explained.values())
        for good, explained in by_good.items():
            if good not in goods:
                goods[good] = _combine(0.0, explained.values())
        goods = {g: r for g, r in goods.items() if r.signals or r.score >= STORE_FROM}
        platforms: dict[str, Risk] = {}
        features = platform_features(inputs, chains, now=now, since=since, grace=th.offer_grace)
        for platform, (score, parts) in score_population(features).items():
            explained = by_platform[platform]
            if score >= EXPLAIN_FROM:
                subject = Subject("platform", platform)
                explained.setdefault(ANOMALY, _explain(subject, score, parts))
            platforms[platform] = _combine(score, explained.values())
        for platform, explained in by_platform.items():
            platforms.setdefault(platform, _combine(0.0, explained.values()))
        return cls(goods, platforms, signals, built_at=now, thresholds=th)

    @classmethod
    def build(
        cls,
        engine: Engine,
        now: int,
        *,
        thresholds: Thresholds | None = None,
        lookback: int = LOOKBACK,
        probe_flags: Sequence[ProbeFlag] = (),
    ) -> RiskIndex:
        """Read the look-back from the database and build the index."""
        return cls._built(engine, _Store(), now, thresholds, lookback, probe_flags)

    def refreshed(self, now: int, *, probe_flags: Sequence[ProbeFlag] = ()) -> RiskIndex:
        """A new index with the rows written since this one (this one stays as it was).

        NOTE: the store of records is handed on, not copied: refresh from one thread only.
        """
        if self._engine is None or self._store is None:
            raise ValueError("an index built from records in hand cannot refresh itself")
        return self._built(
            self._engine, self._store, now, self.thresholds, self.lookback, probe_flags
        )

    @classmethod
    def _built(
        cls,
        engine: Engine,
        store: _Store,
        now: int,
        thresholds: Thresholds | None,
        lookback: int,
        probe_flags: Sequence[ProbeFlag],
    ) -> RiskIndex:
        since = max(0, now - lookback)
        store.update(engine, since)
        index = cls.from_inputs(
            store.inputs(probe_flags), now=now, since=since, thresholds=thresholds
        )
        index.lookback, index._store, index._engine = lookback, store, engine
        return index


def _combine(anomaly: float, signals: Iterable[Signal]) -> Risk:
    remaining = 1.0 - anomaly
    kept = tuple(signals)
    for signal in kept:
        remaining *= 1.0 - signal.weight
    return Risk(round(1.0 - remaining, 3), kept)


class FlagLike(Protocol):
    """What ``api.ratelimit.ProbeFlag`` looks like (the verifier does not import the API)."""

    @property
    def key(self) -> str: ...
    @property
    def first_at(self) -> float: ...
    @property
    def last_at(self) -> float: ...
    @property
    def failed_probes(self) -> int: ...
    @property
    def refused(self) -> int: ...


def flags_from(limiter_flags: Iterable[FlagLike]) -> list[ProbeFlag]:
    """The API rate limiter's ``flags()`` as plain data for the rules."""
    return [
        ProbeFlag(f.key, float(f.first_at), float(f.last_at), int(f.failed_probes), int(f.refused))
        for f in limiter_flags
    ]


__all__ = [
    "FLOORS",
    "HALF",
    "LOOKBACK",
    "Contribution",
    "FlagLike",
    "Risk",
    "RiskIndex",
    "Scale",
    "Watermarks",
    "anomaly_score",
    "flags_from",
    "good_features",
    "platform_features",
    "read_inputs",
    "score_population",
]
