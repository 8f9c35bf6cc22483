"""Rate limits: token buckets per API key, creator, IP, code fingerprint and probe.

Why (THREATS 38): a code is a short secret, so ``/verify`` by code is an oracle that a bot
can drain. The named limits make guessing slow, make the guesser visible, and keep one hot
card from being polled to death, while letting honest platforms and auditors work.

The named limits (``RateLimits``: each bucket, what it is keyed by, its default, and why) are
defined in ``api.namedlimits``; this module re-exports them.

Where they are counted is one setting (``TRACEMARK_RATE_LIMIT_STORAGE``, ``build_limiter``):
``memory://`` (the default, one process: ``make run``) keeps the buckets below in this
process; ``redis://...`` shares every limit and the probing flags between API replicas
(``api.sharedlimits``: moving windows in Redis through the ``limits`` package;
``api.sharedfallback``: what happens while Redis is down). With ``memory://`` and several
replicas each one enforces its own limits, so the effective limit is multiplied by the replica
count.

Memory is bounded: at most ``max_buckets`` buckets (least recently used evicted first;
a bucket idle long enough to be full again is dropped early, which loses nothing) and
``max_flags`` flags. A check is O(1) under one lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from api.namedlimits import (
    ANONYMOUS,
    API_KEY,
    AUDITOR,
    CODE_LOOKUP,
    CODE_LOOKUP_ALL,
    CREATOR,
    EVERYONE,
    FINGERPRINT,
    HEALTH,
    PROBE,
    SIGNED_WRITE,
    Limit,
    RateLimits,
)
from readmodels.market import ProbeFlag
from registry.errors import TracemarkError

T = TypeVar("T")

logger = logging.getLogger("tracemark.api.ratelimit")


class RateLimited(TracemarkError):
    """Too many requests for one bucket; retry after ``retry_after`` seconds (429)."""

    code = "rate-limited"
    http_status = 429
    diagnostics = "Slow down: retry after the Retry-After seconds."

    def __init__(self, detail: str, *, retry_after: int, bucket: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.bucket = bucket


class RateLimitUnavailable(RateLimited):
    """The shared store of rate limits is unreachable and this bucket fails closed (503):
    the anonymous tier and public code lookups are refused rather than counted locally."""

    code = "rate-limit-unavailable"
    http_status = 503
    diagnostics = "Retry after the Retry-After seconds, or call with an API key."


#: ``Check.flag``: none; a refused look counts a refusal on the key's probing flag (making it);
#: a failed code probe is counted on the flag, made when the probe is refused.
NO_FLAG, FLAG_REFUSAL, FLAG_FAILURE = 0, 1, 2


@dataclass(frozen=True)
class Check:
    """One limit check of a request: take ``cost`` from ``bucket`` for ``key`` (only look, when
    not ``consume``), and what its outcome does to ``key``'s probing flag. A request's checks
    go together (``RateLimiter.check_all``): in order, stopping at the first refusal; a
    shared limiter makes them in one round trip (``api.windowscript``)."""

    bucket: str
    key: str
    cost: float = 1.0
    consume: bool = True
    #: See ``RateLimiter.check``.
    local_when_down: bool = False
    flag: int = NO_FLAG


class RateLimiter:
    """Token buckets keyed by (limit name, key); thread-safe; the clock is injectable."""

    #: Buckets looked at, per new bucket, for early eviction of idle (full again) ones.
    _SWEEP = 2

    def __init__(
        self, limits: RateLimits | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.limits = limits or RateLimits()
        self._named = self.limits.named()
        self._clock = clock
        self._lock = threading.Lock()
        # (name, key) -> [tokens, last refill time, rate, burst]
        self._buckets: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
        # key -> [first_at, last_at, failed_probes, refused]
        self._flags: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def check(
        self, bucket: str, key: str, cost: float = 1.0, *, local_when_down: bool = False
    ) -> None:
        """Take ``cost`` tokens from ``bucket`` for ``key``, or raise ``RateLimited``.

        ``local_when_down``: with a shared store that cannot be reached, count this check in
        the process's local share even when ``bucket`` fails closed (the health probes: a
        load balancer must see a degraded replica, not a refused one). This in-process
        limiter has no store to lose and ignores it.
        """
        self.check_all([Check(bucket, key, cost, local_when_down=local_when_down)])

    def check_all(self, checks: Sequence[Check]) -> None:
        """``checks`` in order, stopping at the first refusal (``RateLimited``): what the
        same checks one after another would do, in one round trip to a shared store."""
        if not checks:
            return
        refused = self._take_all(checks)
        if refused is not None:
            raise self._refusal(*refused)

    async def acheck_all(self, checks: Sequence[Check]) -> None:
        """``check_all`` from the event loop: here at once (a coroutine that never suspends);
        a shared limiter awaits its store, so the loop serves other requests meanwhile."""
        if not checks:
            return
        refused = await self._atake_all(checks)
        if refused is not None:
            raise self._refusal(*refused)

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` (code that checks limits) from the event loop. Here, in this process's
        memory, called at once: a check takes ~1 us, less than a hop to a thread. A shared
        limiter runs it in the thread pool, so that the loop never waits for its store."""
        return work()

    async def acheck(
        self, bucket: str, key: str, cost: float = 1.0, *, local_when_down: bool = False
    ) -> None:
        """``check`` from the event loop (see ``acheck_all``)."""
        await self.acheck_all([Check(bucket, key, cost, local_when_down=local_when_down)])

    def peek(self, bucket: str, key: str) -> None:
        """Raise ``RateLimited`` if ``key`` has no token left in ``bucket``; take nothing."""
        self.check_all([Check(bucket, key, consume=False)])

    # -- failed code probes -------------------------------------------------------------------

    def ensure_probe_budget(self, key: str) -> None:
        """Before a code lookup: refuse (429) a key whose failed-probe budget is spent (and
        count the refusal on its flag)."""
        self.check_all([probe_budget(key)])

    def record_probe_failure(self, key: str) -> None:
        """After a lookup of a code that does not exist: spend one token of ``key``'s probe
        budget; when none is left, flag the key and raise ``RateLimited``. A key already
        flagged has the failure counted on its flag either way."""
        self.check_all([Check(PROBE, key, flag=FLAG_FAILURE)])

    async def aensure_probe_budget(self, key: str) -> None:
        """``ensure_probe_budget`` from the event loop (see ``acheck_all``)."""
        await self.acheck_all([probe_budget(key)])

    async def arecord_probe_failure(self, key: str) -> None:
        """``record_probe_failure`` from the event loop (see ``acheck_all``)."""
        await self.acheck_all([Check(PROBE, key, flag=FLAG_FAILURE)])

    def flags(self, since: float | None = None) -> list[ProbeFlag]:
        """Every key flagged for probing (only those whose flag changed after ``since``,
        when given), oldest flag first (a snapshot)."""
        with self._lock:
            return [
                ProbeFlag(key, first, last, int(failed), int(refused))
                for key, (first, last, failed, refused) in self._flags.items()
                if since is None or last > since
            ]

    # -- health ---------------------------------------------------------------------------------

    def alerts(self) -> list[str]:
        """What ``/readyz`` reports as degraded about the limits: nothing, in one process."""
        return []

    def close(self) -> None:
        """Let go of any connection (none in one process)."""

    async def aclose(self) -> None:
        """Let go of the event loop's connections (none in one process), from that loop."""

    # -- internals ------------------------------------------------------------------------------

    def _limit(self, bucket: str) -> tuple[float, int]:
        try:
            limit = self._named[bucket]
        except KeyError:
            raise ValueError(f"no rate limit named {bucket!r}") from None
        return limit.rate, limit.burst

    def _take(
        self,
        bucket: str,
        key: str,
        cost: float,
        *,
        consume: bool = True,
        local_when_down: bool = False,
    ) -> float | None:
        """Refill and (if ``consume``) take; the seconds to wait when short, else None.
        (``local_when_down`` is the shared limiter's: see ``check``.)"""
        rate, burst = self._limit(bucket)
        ident = (bucket, key)
        buckets = self._buckets
        with self._lock:
            now = self._clock()
            state = buckets.get(ident)
            if state is None and not consume:
                # No bucket is a full one: a look needs none made (a code lookup looks at its
                # probe budget every time, and would otherwise make and sweep one each time).
                return None if cost <= burst else (cost - burst) / rate
            if state is None:
                # Growth is what costs memory, so a new bucket pays for the sweep.
                self._sweep(now)
                tokens = float(burst)
                state = [tokens, now, rate, burst]
                buckets[ident] = state
                while len(buckets) > self.limits.max_buckets:
                    buckets.popitem(last=False)
            else:
                # A clock that steps back refills nothing, and the bucket keeps its later
                # time, so stepping forward again refills nothing twice.
                elapsed = now - state[1]
                if elapsed > 0:
                    tokens = state[0] + elapsed * rate
                    if tokens > burst:
                        tokens = burst
                    state[1] = now
                else:
                    tokens = state[0]
                buckets.move_to_end(ident)
            if tokens >= cost:
                state[0] = tokens - cost if consume else tokens
                return None
            state[0] = tokens
            return (cost - tokens) / rate

    def _take_all(self, checks: Sequence[Check]) -> tuple[str, float] | None:
        """``checks`` in order in this process, each with its flag; stops at the first
        refusal: its bucket and wait, else None."""
        for check in checks:
            wait = self._take(
                check.bucket,
                check.key,
                check.cost,
                consume=check.consume,
                local_when_down=check.local_when_down,
            )
            self._flag_outcome(check, wait)
            if wait is not None:
                return check.bucket, wait
        return None

    async def _atake_all(self, checks: Sequence[Check]) -> tuple[str, float] | None:
        """``_take_all`` for the event loop: in memory, the same call (no thread, no await)."""
        return self._take_all(checks)

    def _flag_outcome(self, check: Check, wait: float | None) -> None:
        if check.flag == FLAG_REFUSAL and wait is not None:
            self._flag(check.key, failed=0, refused=1)
        elif check.flag == FLAG_FAILURE:
            refused = wait is not None
            self._flag(check.key, failed=1, refused=int(refused), create=refused)

    def _sweep(self, now: float) -> None:
        # The least recently used buckets first: one that has refilled completely is the
        # same as no bucket at all, so dropping it changes no answer.
        buckets = self._buckets
        for _ in range(self._SWEEP):
            if not buckets:
                return
            ident, (tokens, last, rate, burst) = next(iter(buckets.items()))
            if tokens + (now - last) * rate < burst:
                return
            del buckets[ident]

    def _flag(self, key: str, *, failed: int, refused: int, create: bool = True) -> None:
        """Count on ``key``'s flag; make it first if ``create`` (else an unflagged key is
        left alone)."""
        with self._lock:
            now = self._clock()
            flag = self._flags.get(key)
            if flag is None and not create:
                return
            if flag is None:
                self._flags[key] = [now, now, float(failed), float(refused)]
                while len(self._flags) > self.limits.max_flags:
                    self._flags.popitem(last=False)
                # The alert (THREATS 38): once per flag; the key is "key:<id>" or "ip:<addr>",
                # never a credential, and no code is named.
                logger.warning("probing: %s exhausted its failed-code-lookup budget", key)
                return
            flag[1] = now
            flag[2] += failed
            flag[3] += refused

    @staticmethod
    def _refusal(bucket: str, wait: float) -> RateLimited:
        # Retry-After is whole seconds (RFC 9110 §10.2.3): round up, never 0.
        seconds = max(1, math.ceil(wait - 1e-9))
        return RateLimited(
            f"rate limit '{bucket}' exceeded; retry in {seconds} s",
            retry_after=seconds,
            bucket=bucket,
        )


def probe_budget(key: str) -> Check:
    """The look at ``key``'s failed-probe budget before a code lookup: a refusal is counted
    on its flag."""
    return Check(PROBE, key, consume=False, flag=FLAG_REFUSAL)


#: The URL schemes of a shared (Redis) store: plain, TLS, a Unix socket.
SHARED_SCHEMES: Final = ("redis", "rediss", "redis+unix")


def check_storage_url(url: str) -> None:
    """Raise ``ValueError`` (naming the scheme only: the URL may carry a password) unless
    ``url`` is ``memory://`` or a Redis URL."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if url != "memory://" and scheme not in SHARED_SCHEMES:
        named = f"the scheme {scheme!r}" if scheme else "a URL without a scheme"
        raise ValueError(
            f"TRACEMARK_RATE_LIMIT_STORAGE: {named} is neither memory:// nor "
            f"{', '.join(s + '://' for s in SHARED_SCHEMES)}"
        )


def build_limiter(
    limits: RateLimits, *, storage: str = "memory://", prefix: str = "tracemark", replicas: int = 1
) -> RateLimiter:
    """The limiter ``storage`` names: ``memory://`` this process's buckets; ``redis://``,
    ``rediss://`` or ``redis+unix://`` the shared one (``api.sharedlimits``, imported only
    then: a one-process server loads no Redis client)."""
    check_storage_url(storage)
    if storage == "memory://":
        return RateLimiter(limits)
    from api.sharedlimits import SharedRateLimiter

    return SharedRateLimiter(limits, storage, prefix=prefix, replicas=replicas)


__all__ = [
    "ANONYMOUS",
    "API_KEY",
    "AUDITOR",
    "CODE_LOOKUP",
    "CODE_LOOKUP_ALL",
    "CREATOR",
    "EVERYONE",
    "FINGERPRINT",
    "FLAG_FAILURE",
    "FLAG_REFUSAL",
    "HEALTH",
    "NO_FLAG",
    "PROBE",
    "SIGNED_WRITE",
    "Check",
    "Limit",
    "ProbeFlag",
    "RateLimitUnavailable",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "build_limiter",
    "check_storage_url",
    "probe_budget",
]
