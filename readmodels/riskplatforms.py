"""The incremental risk engine's platforms and batches (``readmodels.riskstate``): each
platform's counters and sorted times, and each (batch, platform)'s first settled
verifications, changed by differences as goods' records come, go and settle; the platform
and batch rules over them; the platforms' scores."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Mapping, Sequence

from readmodels.anomaly import (
    DAY,
    PlatformCounts,
    explain,
    platform_feature_values,
    score_population,
)
from readmodels.market import EntryRecord, GoodKey, ProbeFlag, VerificationEventRecord
from readmodels.riskindex import EXPLAIN_FROM, Risk, combine
from readmodels.riskstateparts import Share, Signals
from readmodels.signals import ANOMALY, Signal, Subject, Thresholds
from readmodels.velocityrules import (
    batch_velocity_of,
    platform_velocity_of,
    probe_bursts,
    window_max,
)

#: A bulk batch on a platform: (the batch's record id, platform).
BatchPair = tuple[int, str]


class PlatformState:
    """Per platform: the anomaly counters, its code lookups, its failed lookups' times, its
    settled times, its first foreign verification per code (and their times); per (batch,
    platform): the first settled verification per code with its foreign flag."""

    def __init__(self, th: Thresholds) -> None:
        self.th = th
        self.counts: dict[str, PlatformCounts] = defaultdict(PlatformCounts)
        self._lookups: dict[str, dict[int, VerificationEventRecord]] = defaultdict(dict)
        self._failed_times: dict[str, list[int]] = defaultdict(list)  # sorted
        self._settled_times: dict[str, list[int]] = defaultdict(list)
        self._firsts: dict[str, dict[GoodKey, VerificationEventRecord]] = defaultdict(dict)
        self._first_times: dict[str, list[int]] = defaultdict(list)  # of ``_firsts``, sorted
        self._batches: dict[BatchPair, dict[GoodKey, tuple[VerificationEventRecord, bool]]]
        self._batches = defaultdict(dict)
        self._velocity: set[str] = set()  # platforms with a platform-velocity signal
        self._flags: set[str] = set()  # keys with a probe flag's signal

    # -- records in and out -------------------------------------------------------------------

    def add_event(self, v: VerificationEventRecord) -> None:
        counts = self.counts[v.platform]
        counts.verified += 1
        if v.via == "code":
            counts.lookups += 1
            self._lookups[v.platform][v.event_id] = v
            if v.verdict == "unknown":  # a failed code lookup
                counts.failed += 1
                bisect.insort(self._failed_times[v.platform], v.at)

    def drop_event(self, v: VerificationEventRecord) -> None:
        counts = self.counts[v.platform]
        counts.verified -= 1
        if v.via == "code":
            counts.lookups -= 1
            self._lookups[v.platform].pop(v.event_id, None)
            if v.verdict == "unknown":
                counts.failed -= 1
                times = self._failed_times[v.platform]
                del times[bisect.bisect_left(times, v.at)]

    def share(
        self,
        good: GoodKey,
        entry: EntryRecord | None,
        old: Mapping[str, Share],
        new: Mapping[str, Share],
        platforms: set[str],
        batches: set[BatchPair],
    ) -> None:
        """Replace the good's share of the platforms' and batches' state, ``old``, by
        ``new`` (``riskstateparts.first_settled``)."""
        for platform in old.keys() | new.keys():
            before, after = old.get(platform), new.get(platform)
            if before == after:
                continue
            platforms.add(platform)
            counts = self.counts[platform]
            times = self._settled_times[platform]
            if before is not None:
                for t in before.times:
                    del times[bisect.bisect_left(times, t)]
                counts.settled -= len(before.times)
                counts.foreign -= before.foreign
                if before.first_foreign:
                    del self._firsts[platform][good]
                    firsts = self._first_times[platform]
                    del firsts[bisect.bisect_left(firsts, before.first.at)]
            if after is not None:
                for t in after.times:
                    bisect.insort(times, t)
                counts.settled += len(after.times)
                counts.foreign += after.foreign
                if after.first_foreign:
                    self._firsts[platform][good] = after.first
                    bisect.insort(self._first_times[platform], after.first.at)
            if entry is not None and entry.position is not None:
                pair = (entry.record_id, platform)
                batches.add(pair)
                seen = self._batches[pair]
                if after is None:
                    seen.pop(good, None)
                else:
                    seen[good] = (after.first, after.first_foreign)
                if not seen:
                    del self._batches[pair]

    # -- the rules ------------------------------------------------------------------------------

    def rules(
        self,
        platforms: set[str],
        batches: set[BatchPair],
        registrations: Mapping[GoodKey, EntryRecord],
        flags: Sequence[ProbeFlag],
        signals: Signals,
        *,
        now: int,
        since: int,
    ) -> None:
        """Probe bursts of the touched platforms, platform velocity of those that can fire,
        batch velocity of the touched (batch, platform) pairs, the probe flags."""
        th = self.th
        for platform in platforms:
            failed = self._failed_times.get(platform, [])
            found: list[Signal] = []
            # Its busiest window first (a pass over its failed lookups' times): the rule
            # reads every lookup only if a window holds enough failures to fire.
            if (
                len(failed) >= th.probe_min_failures
                and window_max(failed, th.probe_window)[0] >= th.probe_min_failures
            ):
                found = probe_bursts(self._lookups[platform].values(), (), th)
            signals.put(("probe", platform), found)
        # Its median over the look-back's windows moves with ``now``: every refresh, for the
        # platforms that have enough foreign codes to fire (or fired).
        velocity = {p for p, seen in self._firsts.items() if len(seen) >= th.platform_min_foreign}
        for platform in velocity | self._velocity:
            signal = platform_velocity_of(
                platform,
                self._firsts.get(platform, {}),
                self._settled_times[platform],
                th,
                now=now,
                since=since,
                times=self._first_times[platform],
            )
            signals.put(("velocity", platform), [] if signal is None else [signal])
            (self._velocity.add if signal is not None else self._velocity.discard)(platform)
        by_key: dict[str, list[Signal]] = defaultdict(list)
        for signal in probe_bursts((), flags, th):
            by_key[signal.subject.id].append(signal)
        for key in self._flags | by_key.keys():
            signals.put(("flag", key), by_key.get(key, []))
        self._flags = set(by_key)
        for pair in batches:
            seen = self._batches.get(pair)
            batch = None if not seen else batch_velocity_of(*pair, seen, registrations, th)
            signals.put(("batch", pair), [] if batch is None else [batch])
        for platform in [p for p, c in self.counts.items() if _idle(c)]:
            del self.counts[platform]

    def scores(self, signals: Signals, *, now: int, since: int) -> dict[str, Risk]:
        """Every platform's risk: scored exactly from its counters (platforms are few), with
        the signals about it."""
        days = max(1.0, (now - since) / DAY)
        features = {p: platform_feature_values(c, days) for p, c in self.counts.items()}
        by_platform: dict[str, dict[str, Signal]] = defaultdict(dict)
        for signal in signals.about_platforms():
            name = signal.subject.id
            if signal.subject.kind == "platform":
                by_platform[name].setdefault(signal.code, signal)
            elif name.startswith("platform:"):
                by_platform[name.removeprefix("platform:")].setdefault(signal.code, signal)
        risks: dict[str, Risk] = {}
        for platform, (score, parts) in score_population(features).items():
            explained = by_platform[platform]
            if score >= EXPLAIN_FROM:
                explained.setdefault(ANOMALY, explain(Subject("platform", platform), score, parts))
            risks[platform] = combine(score, explained.values())
        for platform, explained in by_platform.items():
            risks.setdefault(platform, combine(0.0, explained.values()))
        return risks


def _idle(counts: PlatformCounts) -> bool:
    return not (counts.verified or counts.reported or counts.refused)


__all__ = ["BatchPair", "PlatformState"]
