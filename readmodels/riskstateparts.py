"""The incremental risk engine's parts (``readmodels.riskstate``): a good's state, its share of
the platforms' and batches' state, and the standing signals by source."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from readmodels.holderrules import Ring
from readmodels.market import (
    ANONYMOUS,
    AttemptRecord,
    Chains,
    EntryRecord,
    GoodKey,
    TransferRecord,
    VerificationEventRecord,
)
from readmodels.riskindex import signal_order
from readmodels.signals import Signal
from registry.fingerprints import Use

#: Where a signal came from: ("good", good), ("probe", platform), ("velocity", platform),
#: ("batch", (record_id, platform)), ("flag", key).
Source = tuple[str, object]


@dataclass(frozen=True, slots=True)
class Share:
    """One good's part in one platform's state: the times of the platform's settled
    verifications of it, how many were foreign (never acquired within ``offer_grace``), and
    the first of them (the batch rule's, and the platform rule's when it was foreign)."""

    times: tuple[int, ...]
    foreign: int
    first: VerificationEventRecord
    first_foreign: bool


#: The chains of a good with no transfer and no holding (most goods): shared, never changed.
NO_CHAINS: Final = Chains((), {})


@dataclass(slots=True)
class GoodState:
    """One good's records in the look-back, in id order, and what was derived from them."""

    events: dict[int, VerificationEventRecord] = field(default_factory=dict)
    transfers: list[TransferRecord] = field(default_factory=list)
    attempts: list[AttemptRecord] = field(default_factory=list)
    conflicts: list[EntryRecord] = field(default_factory=list)
    chains: Chains = NO_CHAINS
    ring: Ring | None = None
    features: dict[str, float] | None = None
    #: Its anomaly score against the last fit's scales (None: to be scored again).
    score: float | None = None
    share: dict[str, Share] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.events or self.transfers or self.attempts or self.conflicts)


def first_settled(
    entry: EntryRecord | None, state: GoodState, grace: int, now: int
) -> dict[str, Share]:
    """Per platform, the good's settled single-use verifications (what
    ``velocityrules._foreign_verifications`` yields for it).

    "Foreign" is monotone in time: a platform that dealt in the good by ``at + grace`` has
    dealt by any later one, so the first settled verification is the first foreign one
    whenever any is foreign (the platform rule's "first foreign" is this ``first``)."""
    if entry is None or entry.use != int(Use.SINGLE):
        return {}
    by_platform: dict[str, list[VerificationEventRecord]] = defaultdict(list)
    for v in state.events.values():
        if v.platform == ANONYMOUS or v.verdict == "unknown" or v.at + grace > now:
            continue
        by_platform[v.platform].append(v)
    shares = {}
    for platform, events in by_platform.items():
        first = min(events, key=lambda v: (v.at, v.event_id))
        foreign = [not state.chains.dealt_by(v.good, platform, v.at + grace) for v in events]
        shares[platform] = Share(
            tuple(sorted(v.at for v in events)),
            sum(foreign),
            first,
            not state.chains.dealt_by(first.good, platform, first.at + grace),
        )
    return shares


class Signals:
    """The standing signals by source, one chosen per id (``riskindex.canonical``'s choice),
    and per good the chosen signals that implicate it."""

    def __init__(self) -> None:
        self._by_source: dict[Source, list[Signal]] = {}
        self._candidates: dict[str, dict[Source, Signal]] = defaultdict(dict)
        self._chosen: dict[str, Signal] = {}
        self._attached: dict[GoodKey, dict[str, Signal]] = defaultdict(dict)
        self._dirty: set[str] = set()
        self._about_platforms: set[str] = set()  # chosen ids about a platform or a key

    def put(self, source: Source, signals: Sequence[Signal]) -> None:
        """What ``source``'s rule says now (replacing what it said before)."""
        old = self._by_source.get(source, [])
        if old == list(signals):
            return
        for s in old:
            self._candidates[s.signal_id].pop(source, None)
            self._dirty.add(s.signal_id)
        for s in signals:
            self._candidates[s.signal_id][source] = s
            self._dirty.add(s.signal_id)
        if signals:
            self._by_source[source] = list(signals)
        else:
            self._by_source.pop(source, None)

    def settle(self, changed: dict[str, Signal], removed: set[str]) -> set[GoodKey]:
        """Choose again where ``put`` changed something; note the changes in ``changed`` and
        ``removed``; return the goods whose implicating signals changed."""
        implicated: set[GoodKey] = set()
        for sid in self._dirty:
            candidates = self._candidates.get(sid)
            new = min(candidates.values(), key=signal_order) if candidates else None
            if not candidates:
                self._candidates.pop(sid, None)
            old = self._chosen.get(sid)
            if new == old:
                continue
            if new is not None and new.subject.kind in ("platform", "key"):
                self._about_platforms.add(sid)
            else:
                self._about_platforms.discard(sid)
            if old is not None:
                for good in old.goods:
                    attached = self._attached[good]
                    attached.pop(sid, None)
                    if not attached:
                        del self._attached[good]
                    implicated.add(good)
            if new is not None:
                self._chosen[sid] = new
                for good in new.goods:
                    self._attached[good][sid] = new
                    implicated.add(good)
                changed[sid] = new
                removed.discard(sid)
            else:
                del self._chosen[sid]
                changed.pop(sid, None)
                removed.add(sid)
        self._dirty.clear()
        return implicated

    def implicating(self, good: GoodKey) -> list[Signal]:
        attached = self._attached.get(good)
        return [] if not attached else [attached[k] for k in sorted(attached)]

    def all(self) -> list[Signal]:
        return [self._chosen[k] for k in sorted(self._chosen)]

    def about_platforms(self) -> list[Signal]:
        """The chosen signals about a platform or a key, in id order (what the platforms'
        risks read each refresh: not every standing signal)."""
        return [self._chosen[k] for k in sorted(self._about_platforms)]

    def __len__(self) -> int:
        return len(self._chosen)


__all__ = ["NO_CHAINS", "GoodState", "Share", "Signals", "Source", "first_settled"]
