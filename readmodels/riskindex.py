"""The in-memory risk index: each good's and platform's risk, read in O(1), refreshed in place.

``RiskIndex`` combines the anomaly score (``readmodels.anomaly``) with the rules
(``readmodels.rules``): a good's risk is ``1 - (1 - anomaly) x prod(1 - weight)`` over the
distinct signals that implicate it. It is built from the database (``RiskIndex.build``) and
refreshed incrementally (only rows past the last ids read) by the risk worker
(``readmodels.riskworker``), a process of its own, which writes each good's risk where the
verify statement joins it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from sqlalchemy import Engine

from readmodels.anomaly import (
    DAY,
    explain,
    good_features,
    platform_features,
    score_population,
)
from readmodels.market import (
    AttemptRecord,
    Chains,
    EntryRecord,
    GoodKey,
    HoldingRecord,
    ProbeFlag,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
)
from readmodels.marketreads import Watermarks, read_inputs
from readmodels.rules import evaluate
from readmodels.signals import (
    ANOMALY,
    Signal,
    Subject,
    Thresholds,
    good_subject,
)

#: How far back the index reads (and keeps records in memory).
LOOKBACK: Final = 30 * DAY
#: How often the risk worker (``readmodels.riskworker``) tops the index up.
REFRESH_SECONDS: Final = 5.0
#: Most verification events kept (~150 bytes each): past this, the newest only, so the rules
#: see a shorter window than ``LOOKBACK`` on a platform verifying thousands a second.
MAX_EVENTS: Final = 1_000_000
#: An anomaly score from which the index explains it with an ``anomaly`` signal.
EXPLAIN_FROM: Final = 0.5
#: Goods whose risk is below this and that have no signal are not stored (risk 0).
STORE_FROM: Final = 0.05


@dataclass
class _Store:
    """The records of the look-back, kept in memory and topped up with new rows only."""

    registrations: dict[GoodKey, EntryRecord] = field(default_factory=dict)
    conflicts: dict[int, EntryRecord] = field(default_factory=dict)
    transfers: dict[int, TransferRecord] = field(default_factory=dict)
    attempts: dict[int, AttemptRecord] = field(default_factory=dict)
    holdings: dict[GoodKey, HoldingRecord] = field(default_factory=dict)
    verifications: list[VerificationEventRecord] = field(default_factory=list)
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
        # Ids come in order, times only roughly: any event may have fallen out.
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
        signals = canonical(evaluate(inputs, th, now=now, since=since))
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
                    explained.setdefault(ANOMALY, explain(good_subject(good), score, parts))
                goods[good] = combine(score, explained.values())
        for good, explained in by_good.items():
            if good not in goods:
                goods[good] = combine(0.0, explained.values())
        goods = {g: r for g, r in goods.items() if r.signals or r.score >= STORE_FROM}
        platforms: dict[str, Risk] = {}
        features = platform_features(inputs, chains, now=now, since=since, grace=th.offer_grace)
        for platform, (score, parts) in score_population(features).items():
            explained = by_platform[platform]
            if score >= EXPLAIN_FROM:
                subject = Subject("platform", platform)
                explained.setdefault(ANOMALY, explain(subject, score, parts))
            platforms[platform] = combine(score, explained.values())
        for platform, explained in by_platform.items():
            platforms.setdefault(platform, combine(0.0, explained.values()))
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


def canonical(signals: Iterable[Signal]) -> list[Signal]:
    """One signal per id, in id order. Two rules' runs can name one subject (a batch leaked
    on two platforms): the first in a fixed order of their contents is kept, so the full
    recompute and the incremental engine (``readmodels.riskstate``) keep the same one; a good
    then lists, per code, the signal of the lowest id that implicates it."""
    chosen: dict[str, Signal] = {}
    for signal in signals:
        kept = chosen.get(signal.signal_id)
        if kept is None or signal_order(signal) < signal_order(kept):
            chosen[signal.signal_id] = signal
    return [chosen[k] for k in sorted(chosen)]


def signal_order(signal: Signal) -> tuple[str, tuple[str, ...], str, str]:
    return (signal.detail, signal.platforms, repr(signal.goods), repr(signal.evidence))


def combine(anomaly: float, signals: Iterable[Signal]) -> Risk:
    """A risk from an anomaly score and the signals that implicate the subject."""
    remaining = 1.0 - anomaly
    kept = tuple(signals)
    for signal in kept:
        remaining *= 1.0 - signal.weight
    return Risk(round(1.0 - remaining, 3), kept)


def flags_from(limiter_flags: Iterable[ProbeFlag]) -> list[ProbeFlag]:
    """The API rate limiter's ``flags()`` as a list for the rules.

    NOTE: the limiter flags with the rules' own ``ProbeFlag``, so this only takes a snapshot;
    it stays for the scenario benchmark, which calls it.
    """
    return list(limiter_flags)


__all__ = [
    "EXPLAIN_FROM",
    "LOOKBACK",
    "MAX_EVENTS",
    "REFRESH_SECONDS",
    "STORE_FROM",
    "Risk",
    "RiskIndex",
    "canonical",
    "combine",
    "flags_from",
    "signal_order",
]
