"""The incremental risk engine's records (``readmodels.riskstate``): every record of the
look-back filed under its good, and the two heaps that say when one leaves it or settles.

Kept apart from ``RiskState`` (the rules' and scores' state derived from these records): this
is step 1 of its refresh, what came in and what went out, and the rules never read the heaps.
"""

from __future__ import annotations

import heapq
from collections import deque

from readmodels.market import ANONYMOUS, GoodKey, SignalInputs, VerificationEventRecord
from readmodels.riskplatforms import PlatformState
from readmodels.riskstateparts import GoodState
from readmodels.signals import Thresholds


class LookBack:
    """The look-back's records by good (``goods``): each new record filed under its good and
    counted on its platform; records that leave the look-back expire by a heap of their
    times, verification events beyond ``max_events`` (the oldest by id) with them; a second
    heap says when a verification settles (passes ``offer_grace``)."""

    def __init__(self, th: Thresholds, platforms: PlatformState, *, max_events: int) -> None:
        self.th = th
        self.max_events = max_events
        self.goods: dict[GoodKey, GoodState] = {}
        self._events: deque[VerificationEventRecord] = deque()  # id order, for the cap
        self._live = 0
        self._expiry: list[tuple[int, int, int, GoodKey]] = []  # (time, kind, id, good)
        self._settle: list[tuple[int, GoodKey]] = []
        self._by_platform = platforms

    def good(self, good: GoodKey) -> GoodState:
        """``good``'s state, made empty if it has none yet."""
        state = self.goods.get(good)
        if state is None:
            state = self.goods[good] = GoodState()
        return state

    def ingest(
        self, new: SignalInputs, since: int, touched: set[GoodKey], platforms: set[str]
    ) -> None:
        """File the new records of the look-back under their goods (``touched``) and count them
        on their platforms (``platforms``)."""
        for c in new.conflicts:
            self.good(c.good).conflicts.append(c)
            touched.add(c.good)
        for t in new.transfers:
            if t.created_at < since:
                continue
            good = t.good
            self.good(good).transfers.append(t)
            self._by_platform.counts[t.platform].reported += 1
            heapq.heappush(self._expiry, (t.created_at, 0, t.transfer_id, good))
            touched.add(good)
            platforms.add(t.platform)
        for a in new.attempts:
            if a.at < since:
                continue
            good = a.good
            self.good(good).attempts.append(a)
            self._by_platform.counts[a.platform].refused += 1
            heapq.heappush(self._expiry, (a.at, 1, a.attempt_id, good))
            touched.add(good)
            platforms.add(a.platform)
        # The loop runs once per new event (~10^4 a refresh): locals, no property calls.
        grace, goods, expiry, settle = self.th.offer_grace, self.goods, self._expiry, self._settle
        add_event = self._by_platform.add_event
        added = 0
        for v in new.verifications:
            at = v.at
            if at < since:
                continue
            good = (v.good_type, v.fingerprint)
            state = goods.get(good)
            if state is None:
                state = goods[good] = GoodState()
            state.events[v.event_id] = v
            self._events.append(v)
            added += 1
            platform = v.platform
            add_event(v)
            heapq.heappush(expiry, (at, 2, v.event_id, good))
            if platform != ANONYMOUS and v.verdict != "unknown":
                heapq.heappush(settle, (at + grace, good))
            touched.add(good)
            platforms.add(platform)
        self._live += added

    def expire(self, since: int, touched: set[GoodKey], platforms: set[str]) -> None:
        """Drop the records older than ``since`` and the events past ``max_events``, touching
        their goods and platforms."""
        while self._expiry and self._expiry[0][0] < since:
            _, kind, record_id, good = heapq.heappop(self._expiry)
            state = self.goods.get(good)
            if state is None:
                continue
            if kind == 0:
                gone_t = [t for t in state.transfers if t.transfer_id == record_id]
                state.transfers = [t for t in state.transfers if t.transfer_id != record_id]
                for t in gone_t:
                    self._by_platform.counts[t.platform].reported -= 1
                    platforms.add(t.platform)
            elif kind == 1:
                gone_a = [a for a in state.attempts if a.attempt_id == record_id]
                state.attempts = [a for a in state.attempts if a.attempt_id != record_id]
                for a in gone_a:
                    self._by_platform.counts[a.platform].refused -= 1
                    platforms.add(a.platform)
            else:
                event = state.events.get(record_id)
                if event is None:
                    continue  # already dropped by the cap
                self._drop_event(event, state, platforms)
            touched.add(good)
        # The newest ``max_events`` by id, as the full recompute's store keeps them; the
        # queue also holds events already expired by time, skipped here.
        while self._live > self.max_events or (self._events and not self._alive(self._events[0])):
            event = self._events.popleft()
            if self._alive(event):
                self._drop_event(event, self.goods[event.good], platforms)
                touched.add(event.good)

    def settle(self, now: int, touched: set[GoodKey]) -> None:
        """Touch the goods whose verifications settle by ``now`` (pass ``offer_grace``)."""
        while self._settle and self._settle[0][0] <= now:
            touched.add(heapq.heappop(self._settle)[1])

    def _alive(self, event: VerificationEventRecord) -> bool:
        state = self.goods.get(event.good)
        return state is not None and event.event_id in state.events

    def _drop_event(
        self, event: VerificationEventRecord, state: GoodState, platforms: set[str]
    ) -> None:
        del state.events[event.event_id]
        self._live -= 1
        self._by_platform.drop_event(event)
        platforms.add(event.platform)


__all__ = ["LookBack"]
