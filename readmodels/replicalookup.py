"""The verify lookup on a streaming replica while it is fresh (``registry.replica``).

A good the replica does not have is looked up on the primary again: a good registered a
moment ago, not yet replayed, must not be called unknown (a real good called fake). So a
stale replica can only delay news a verify answer carries (an anchor, a transfer, a
revocation: each at most ``max_lag`` late), never turn a registered good into an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from readmodels.authenticity import GoodFacts, GoodLookup
from registry.fingerprints import GoodType
from registry.replica import ReplicaReads


class ReplicaGoodLookup(GoodLookup):
    """``GoodLookup`` on the primary's engine, asking the replica first while it is fresh."""

    def __init__(self, engine: Engine, reads: ReplicaReads) -> None:
        super().__init__(engine)
        self.reads = reads
        self.on_replica = GoodLookup(reads.replica.engine)
        self._driver_error: type[Exception] = reads.replica.engine.dialect.loaded_dbapi.Error

    def _replica(self, lookup: Callable[[GoodLookup], GoodFacts | None]) -> GoodFacts | None:
        if not self.reads.fresh():
            return None
        try:
            return lookup(self.on_replica)
        except self._driver_error:
            # The replica went away under this thread's connection: drop it, and read on
            # the primary until the watcher sees the replica again.
            self.on_replica.discard()
            self.reads.mark_down()
            return None

    def facts(self, good_type: GoodType, fingerprint: bytes) -> GoodFacts | None:
        found = self._replica(lambda replica: replica.facts(good_type, fingerprint))
        if found is not None:
            return found
        return super().facts(good_type, fingerprint)

    def facts_any(self, good_type: GoodType, fingerprints: Sequence[bytes]) -> GoodFacts | None:
        if len(fingerprints) <= 1:
            return self.facts(good_type, fingerprints[0]) if fingerprints else None
        found = self._replica(lambda replica: replica.facts_any(good_type, fingerprints))
        if found is not None:
            return found
        return super().facts_any(good_type, fingerprints)

    def close(self) -> None:
        self.on_replica.close()
        super().close()


__all__ = ["ReplicaGoodLookup"]
