"""Blocks of a keyed caller's shared window that one API replica holds and spends locally
(issue 16's cluster CPU): a busy key's request charge costs Redis one round trip a block
instead of one a request.

Why: a platform's fingerprint lookup has one limit check, its key's request charge, and that
check's round trip to Redis was a fifth of a replica's CPU (docs/ARCHITECTURE.md, "Cluster
CPU per verification"). A replica that sees a key often takes ``size`` hits of its window in
one script call (``api.windowscript.Block``) and admits that key's next ``size - 1`` requests
without asking.

What it keeps (each an invariant a test checks, ``tests/api/test_tokenblocks.py``):

- **Never over-admits.** Every hit a block admits is in Redis before the request it admits:
  taken with the block, and stamped with the end of the block's lease, so it stays in the
  window at least ``expiry`` seconds after that request (a hit stamped at the take would
  leave the window up to a lease early, and the window would then admit a lease's worth of
  requests too many). A leftover is never spent after its lease: spending it then would be
  such an early-leaving hit. So the accepted requests of any span of ``expiry`` seconds, over
  every replica, are at most the window's amount, as with one hit a request.
- **Under-admits by a bounded amount.** A block's unspent hits are not given back: they count
  until they leave the window. At most ``size - 1 <= cap`` a replica and key, ``cap`` =
  ``amount // (4 * replicas)`` (a quarter of the window over all replicas together), and a
  block's hits stay ``lease`` longer than one hit would. A block is taken only while the
  window stays at most half full after it (``spare``): a key near its limit gets one hit a
  request, exactly as without blocks, so the blocks cost a busy key nothing of its limit's
  rate when it matters. Worst case for another replica: it is refused while this one holds
  up to ``cap`` unspent hits, for at most ``lease`` plus the window.
- **A quiet key gets single hits.** The size follows this replica's recent rate of the key
  (decaying over the window): ``rate * lease`` hits, 1 (no block) below two a lease.
- **Only keyed callers' request charges** (``api.sharedlimits.BLOCKABLE``): the anonymous
  tier, public code lookups, a code's budget and the probe budget are exact, one hit a check.
- **Redis down**: a block's leftovers were recorded in Redis and are spent within their
  lease; then the local share (``api.sharedfallback``) as before.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem

from api.windowscript import Block

#: A block's lease as a share of its window: how long its hits may wait to be spent, which
#: is also how much longer than one hit they stay in the window.
LEASE_SHARE: Final = 0.25
#: The longest lease, seconds (a day-long window still spends its blocks within a second).
MAX_LEASE: Final = 1.0
#: Keys whose blocks and rates are kept at once (least recently used dropped: a dropped block's
#: hits stay counted in Redis, so dropping only under-admits).
MAX_KEYS: Final = 10_000


@dataclass
class _Held:
    """One key's block in this replica and its recent rate."""

    left: int = 0
    until: float = 0.0  # the lease's end, on the monotonic clock
    score: float = 0.0  # requests, decaying with the window (``rate = score / window``)
    at: float = 0.0  # when ``score`` was last updated


@dataclass(frozen=True)
class _Sizing:
    cap: int
    lease: float
    spare: int
    window: float


class TokenBlocks:
    """Blocks of the windows in ``items`` (bucket -> its moving window), one a key, held by
    this replica of ``replicas``; thread-safe, O(1) a request."""

    def __init__(
        self,
        items: Mapping[str, RateLimitItem],
        *,
        replicas: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.items = dict(items)
        self._sizing = {
            name: _Sizing(
                cap=max(1, item.amount // (4 * max(1, replicas))),
                lease=min(MAX_LEASE, item.get_expiry() * LEASE_SHARE),
                spare=item.amount // 2,
                window=float(item.get_expiry()),
            )
            for name, item in self.items.items()
        }
        self._clock = clock
        self._wall = wall
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._lock = threading.Lock()

    def spend(self, bucket: str, key: str) -> bool:
        """One hit of ``key``'s block, if it holds one within its lease (the request is then
        admitted without Redis); counts the request in the key's rate either way."""
        with self._lock:
            now = self._clock()
            held = self._seen(bucket, key, now)
            if held.left > 0 and now < held.until:
                held.left -= 1
                return True
            held.left = 0  # a leftover past its lease is never spent
            return False

    def wanted(self, bucket: str, key: str) -> Block | None:
        """The block to take with this request's charge (None: one hit), its lease started.
        Call after ``spend`` said no (that counted the request)."""
        sizing = self._sizing[bucket]
        with self._lock:
            now = self._clock()
            held = self._held.get((bucket, key))
            if held is None:
                return None
            rate = held.score / sizing.window
            size = min(sizing.cap, math.floor(rate * sizing.lease))
            if size <= 1:
                return None
        # NOTE: the wall clock read after the monotonic one: the stamp is then no earlier than
        # the lease's end, so every request the block admits is admitted before its stamp.
        return Block(size, sizing.spare, self._wall() + sizing.lease, until=now + sizing.lease)

    def keep(self, bucket: str, key: str, count: int, block: Block) -> None:
        """``block``'s hits beyond the one its request spent, this replica's until its lease
        ends. (Two requests of a key taking blocks at once: the one kept last wins, and the
        other's hits are left unspent, which only under-admits.)"""
        with self._lock:
            held = self._held.get((bucket, key))
            if held is not None:
                held.left, held.until = max(0, count), block.until

    def held(self, bucket: str, key: str) -> int:
        """Hits of ``key``'s block this replica may still spend (0 past its lease)."""
        with self._lock:
            held = self._held.get((bucket, key))
            if held is None or self._clock() >= held.until:
                return 0
            return held.left

    def _seen(self, bucket: str, key: str, now: float) -> _Held:
        ident = (bucket, key)
        held = self._held.get(ident)
        if held is None:
            held = self._held[ident] = _Held(at=now)
            while len(self._held) > MAX_KEYS:
                self._held.popitem(last=False)
        else:
            self._held.move_to_end(ident)
        window = self._sizing[bucket].window
        held.score = held.score * math.exp(-max(0.0, now - held.at) / window) + 1.0
        held.at = now
        return held


__all__ = ["LEASE_SHARE", "MAX_KEYS", "MAX_LEASE", "TokenBlocks"]
