"""The incremental risk engine: per-good, per-platform and per-batch state that each refresh
updates from the new records only (issue 16, item 4).

``RiskIndex.from_inputs`` (``readmodels.riskindex``) runs every rule over the whole look-back;
``RiskState.refresh`` takes only the records read since its high-water marks and:

1. files each new record under its good (and platform); records that leave the look-back (a
   heap of their times, so expiring costs what expires) and verifications that *settle* (pass
   ``offer_grace``, when "never acquired" becomes final: a second heap) touch their good
   (``readmodels.risklookback``);
2. re-runs the good's rules (``readmodels.holderrules``, ``code_velocity``) on that good's
   records only, and re-derives its share of the platform and batch state: per (good,
   platform) its first settled verification and whether it was foreign;
3. re-runs the platform rules (``probe_bursts`` per platform, ``platform_velocity_of``) and
   the batch rule (``batch_velocity_of``) for the touched platforms and (batch, platform)
   pairs, from that maintained state (``readmodels.riskplatforms``). ``platform_velocity``
   compares a window with the platform's median over the look-back's windows, whose edges
   move with ``now``: it is re-run every refresh, but only for the few platforms with
   ``platform_min_foreign`` foreign codes or more (the others cannot fire);
4. re-scores the touched goods' anomaly against scales fitted at the last *refit*, and
   re-combines the risk of every good whose signals or score changed.

Every rule's answer for a subject depends only on that subject's records, ``now`` and the
look-back's start; so rules' signals equal the full recompute's exactly (property-tested
against ``RiskIndex.from_inputs`` in ``tests/readmodels/test_riskstate.py``).

NOTE: the anomaly score is the approximation. A good's features are rates over its exposure,
which grow stale for every good as time passes, and its scale is the population's median and
MAD: exact, that is a pass over every active good each refresh, the cost this engine removes.
So the population's scales are refitted (and every active good re-scored) only every
``refit_seconds`` of the clock, or when the population halved or doubled since the last fit;
between refits a touched good is scored exactly against the last fit's scales, an untouched
one keeps its last score (its rates only fall as exposure grows, so a stale score errs high,
by at most what ``refit_seconds`` of exposure changes). ``refit_seconds=0`` refits every
refresh: the full recompute's anomaly exactly. Platforms are few (hundreds): their features are
counters kept per platform and they are scored exactly every refresh.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from readmodels.anomaly import (
    Fitted,
    Scale,
    explain,
    fit_scales,
    fitted,
    good_feature_values,
    score_only,
    score_with,
)
from readmodels.holderrules import (
    Ring,
    dead_good_transfers,
    duplicate_claims,
    offered_by_non_holder,
    ring_of,
    ring_signal,
    sold_by_non_holder,
)
from readmodels.launderrules import good_red_flags
from readmodels.launderrulesparties import PartyRedFlags
from readmodels.market import (
    ANONYMOUS,
    Chains,
    EntryRecord,
    GoodKey,
    HoldingRecord,
    ProbeFlag,
    SignalInputs,
    VerificationEventRecord,
)
from readmodels.riskindex import EXPLAIN_FROM, LOOKBACK, MAX_EVENTS, STORE_FROM, Risk, combine
from readmodels.risklookback import LookBack
from readmodels.riskplatforms import BatchPair, PlatformState
from readmodels.riskstateparts import NO_CHAINS, GoodState, Signals, first_settled
from readmodels.signals import ANOMALY, Signal, Thresholds, good_subject
from readmodels.velocityrules import code_velocity
from registry.fingerprints import Use

_SINGLE: Final = int(Use.SINGLE)

#: How often (seconds of the clock) the goods' anomaly scales are refitted over the whole
#: active population, every active good re-scored.
REFIT_SECONDS: Final = 600


@dataclass
class RiskChanges:
    """What one refresh changed: goods' risks (None: no longer stored) and signals."""

    goods: dict[GoodKey, Risk | None] = field(default_factory=dict)
    signals: dict[str, Signal] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    refitted: bool = False


class RiskState:
    """The incremental engine's state; ``refresh`` from one thread at a time."""

    def __init__(
        self,
        thresholds: Thresholds | None = None,
        *,
        lookback: int = LOOKBACK,
        refit_seconds: int = REFIT_SECONDS,
        max_events: int = MAX_EVENTS,
    ) -> None:
        self.th = thresholds or Thresholds()
        self.lookback = lookback
        self.refit_seconds = refit_seconds
        self.max_events = max_events
        self.registrations: dict[GoodKey, EntryRecord] = {}
        self.holdings: dict[GoodKey, HoldingRecord] = {}
        self.built_at = 0
        self._by_platform = PlatformState(self.th)
        self._lookback = LookBack(self.th, self._by_platform, max_events=max_events)
        self._goods: dict[GoodKey, GoodState] = self._lookback.goods  # the same dict
        self._rings: dict[frozenset[tuple[str, bytes]], set[GoodKey]] = defaultdict(set)
        self._parties = PartyRedFlags(self.th)  # the laundering rules about a buyer party
        self.signals = Signals()
        self._scales: dict[int, dict[str, Scale]] = {}
        self._fitted: dict[int, Fitted] = {}  # the same, as ``score_only`` reads them
        self._fitted_at: int | None = None
        self._fitted_size = 0
        self._active: set[GoodKey] = set()  # goods with features (the anomaly's population)
        self.goods: dict[GoodKey, Risk] = {}  # stored goods: a signal or a score past STORE_FROM
        self.platforms: dict[str, Risk] = {}

    # -- reads --------------------------------------------------------------------------------

    def risk(self, good: GoodKey) -> Risk | None:
        return self.goods.get(good)

    def all_signals(self) -> list[Signal]:
        return self.signals.all()

    # -- one refresh ----------------------------------------------------------------------------

    def refresh(
        self, new: SignalInputs, *, now: int, probe_flags: Sequence[ProbeFlag] = ()
    ) -> RiskChanges:
        """Take the records read since the last refresh (and the registrations and holdings of
        the goods they name) and return what changed."""
        since = max(0, now - self.lookback)
        touched: set[GoodKey] = set()
        platforms: set[str] = set()
        for good, entry in new.registrations.items():
            self.registrations[good] = entry
            touched.add(good)
        for good, holding in new.holdings.items():
            self.holdings[good] = holding
            touched.add(good)
        self._lookback.ingest(new, since, touched, platforms)
        self._lookback.expire(since, touched, platforms)
        self._lookback.settle(now, touched)
        changes = RiskChanges()
        batches: set[BatchPair] = set()
        rings: set[frozenset[tuple[str, bytes]]] = set()
        rescored: set[GoodKey] = set()  # goods whose features changed
        for good in touched:
            self._recompute_good(good, now, since, platforms, batches, rings, rescored)
        for parties in rings:  # "the same parties did this with N other goods" changed
            for good in self._rings.get(parties, set()):
                state = self._goods[good]
                events = list(state.events.values())
                self._set_own(good, state, now, events, self.registrations.get(good))
        self._parties.rules(self.signals)
        self._by_platform.rules(
            platforms, batches, self.registrations, probe_flags, self.signals, now=now, since=since
        )
        self._maybe_refit(now, since, touched, rescored, changes)
        implicated = self.signals.settle(changes.signals, changes.removed)
        for good in rescored | implicated:
            self._assemble(good, changes)
        self.platforms = self._by_platform.scores(self.signals, now=now, since=since)
        self.built_at = now
        return changes

    # -- per good -----------------------------------------------------------------------------

    def _recompute_good(
        self,
        good: GoodKey,
        now: int,
        since: int,
        platforms: set[str],
        batches: set[BatchPair],
        rings: set[frozenset[tuple[str, bytes]]],
        rescored: set[GoodKey],
    ) -> None:
        state = self._goods.get(good)
        if state is None:
            state = self._goods[good] = GoodState()
        holding = self.holdings.get(good)
        ring = None
        if state.transfers or holding is not None:
            state.chains = Chains(state.transfers, {} if holding is None else {good: holding})
            ring = ring_of(state.chains.by_good.get(good, []), self.th)
        else:
            state.chains = NO_CHAINS  # no chain: no ring
        if ring is not None or state.ring is not None:
            self._move_ring(good, state.ring, ring, rings)
        state.ring = ring
        self._parties.contribute(good, state.chains.by_good.get(good, []))
        events = list(state.events.values())
        entry = self.registrations.get(good)
        self._set_own(good, state, now, events, entry)
        self._contribute(good, state, now, platforms, batches, entry)
        features = good_feature_values(
            entry,
            events,
            state.transfers,
            state.chains,
            now=now,
            since=since,
            grace=self.th.offer_grace,
        )
        # Same features, same scales: the same score (most touched goods' features change:
        # a new verification moves its rate).
        if features != state.features:
            state.features, state.score = features, None
            rescored.add(good)
        if features is None:
            self._active.discard(good)
        else:
            self._active.add(good)
        if state.empty():
            del self._goods[good]

    def _move_ring(
        self,
        good: GoodKey,
        old: Ring | None,
        new: Ring | None,
        rings: set[frozenset[tuple[str, bytes]]],
    ) -> None:
        """The good leaves its old ring's parties and joins its new one's."""
        if old is not None:
            self._rings[old[1]].discard(good)
            if not self._rings[old[1]]:
                del self._rings[old[1]]
            rings.add(old[1])
        if new is not None:
            self._rings[new[1]].add(good)
            rings.add(new[1])

    def _set_own(
        self,
        good: GoodKey,
        state: GoodState,
        now: int,
        events: list[VerificationEventRecord],
        entry: EntryRecord | None,
    ) -> None:
        """The good's own rules, on its records only."""
        th, chains = self.th, state.chains
        found: list[Signal] = []
        if state.conflicts:
            found += duplicate_claims({} if entry is None else {good: entry}, state.conflicts)
        if state.attempts:
            found += sold_by_non_holder(state.attempts, chains, th)
            found += dead_good_transfers(state.attempts, chains, th)
        if events and entry is not None and entry.use == _SINGLE:
            # Each rule's own first test, asked before calling it (the rules take many goods'
            # records and build per-good indexes; most goods fail these at once): a good that
            # never moved has no holder to offer it behind; a code needs as many platforms.
            if chains is not NO_CHAINS:
                found += offered_by_non_holder(events, chains, {good: entry}, th, now=now)
            if len(events) >= th.code_min_platforms and (
                len({v.platform for v in events if v.platform != ANONYMOUS})
                >= th.code_min_platforms
            ):
                found += code_velocity(events, {good: entry}, th)
        if state.ring is not None:
            others = len(self._rings[state.ring[1]]) - 1
            found.append(ring_signal(good, state.ring, others))
        chain = chains.by_good.get(good, [])
        found += good_red_flags(good, chain, entry, events, state.ring, th)
        self.signals.put(("good", good), found)

    def _contribute(
        self,
        good: GoodKey,
        state: GoodState,
        now: int,
        platforms: set[str],
        batches: set[BatchPair],
        entry: EntryRecord | None,
    ) -> None:
        """The good's share of the platforms' and batches' state, replaced by its new one."""
        new = first_settled(entry, state, self.th.offer_grace, now)
        if new or state.share:  # most touched goods have none yet (nothing settled)
            self._by_platform.share(good, entry, state.share, new, platforms, batches)
        state.share = new

    # -- the goods' anomaly and risk ----------------------------------------------------------

    def _maybe_refit(
        self,
        now: int,
        since: int,
        touched: set[GoodKey],
        rescored: set[GoodKey],
        changes: RiskChanges,
    ) -> None:
        size = len(self._active)
        due = (
            self._fitted_at is None
            or now - self._fitted_at >= self.refit_seconds
            or not self._fitted_size // 2 <= size <= max(1, self._fitted_size) * 2
            or any(good[0] not in self._scales for good in rescored if good in self._active)
        )
        if not due:
            return
        population: dict[int, list[dict[str, float]]] = defaultdict(list)
        for good in self._active:
            state = self._goods[good]
            if good not in touched:  # rates are per day of exposure: stale for every good
                state.features = good_feature_values(
                    self.registrations.get(good),
                    list(state.events.values()),
                    state.transfers,
                    state.chains,
                    now=now,
                    since=since,
                    grace=self.th.offer_grace,
                )
            state.score = None
            if state.features is not None:
                population[good[0]].append(state.features)
        self._scales = {kind: fit_scales(members) for kind, members in population.items()}
        self._fitted = {kind: fitted(scales) for kind, scales in self._scales.items()}
        self._fitted_at, self._fitted_size = now, size
        rescored |= self._active
        rescored |= {g for g in self.goods if g not in self._active}
        changes.refitted = True

    def _assemble(self, good: GoodKey, changes: RiskChanges) -> None:
        state = self._goods.get(good)
        score = 0.0
        if state is not None and state.features is not None and good in self._active:
            if state.score is None:
                state.score = score_only(state.features, self._fitted.get(good[0], ()))
            score = state.score
        implicating = self.signals.implicating(good)  # in id order
        before = self.goods.get(good)
        # Most goods: no signal, a score too low to store (``combine``'s rounding, exactly).
        if not implicating and score < EXPLAIN_FROM and round(1.0 - (1.0 - score), 3) < STORE_FROM:
            if before is not None:
                del self.goods[good]
                changes.goods[good] = None
            return
        explained: dict[str, Signal] = {}
        for signal in implicating:
            explained.setdefault(signal.code, signal)
        if score >= EXPLAIN_FROM and state is not None and state.features is not None:
            _, parts = score_with(state.features, self._scales.get(good[0], {}))
            explained.setdefault(ANOMALY, explain(good_subject(good), score, parts))
        risk = combine(score, explained.values())
        keep = bool(risk.signals) or risk.score >= STORE_FROM
        if keep and before != risk:
            self.goods[good] = risk
            changes.goods[good] = risk
        elif not keep and before is not None:
            del self.goods[good]
            changes.goods[good] = None


__all__ = ["REFIT_SECONDS", "RiskChanges", "RiskState"]
