"""Rate limits: token buckets per API key, creator, IP, code fingerprint and probe.

Why (THREATS 38): a code is a short secret, so ``/verify`` by code is an oracle that a bot
can drain. The limits below make guessing slow, make the guesser visible, and keep one hot
card from being polled to death, while letting honest platforms and auditors work.

Named limits (``RateLimits``; each a token bucket of ``rate`` tokens a second up to ``burst``):

=================  =========================================  ==============================
bucket             keyed by                                   default
=================  =========================================  ==============================
``api_key``        a platform API key (``key:<id>``)          100/s, burst 200
``auditor``        an API key with the ``audit`` scope        1000/s, burst 2000
``creator``        a signed-in creator (SIWE)                 20/s, burst 40
``anonymous``      the client IP of an unauthenticated call   5/s, burst 10
``signed_write``   the client IP of a creator's signed write  20/s, burst 40
                   sent without a session token
``code_lookup``    the client IP of a public code lookup      10/min, burst 10
``code_lookup_all`` every public code lookup together (one    600/min, burst 600
                   key, ``all``; ``TRACEMARK_ANON_CODE_LOOKUPS_PER_MINUTE``)
``fingerprint``    a code's fingerprint, across every caller  60/min, burst 60
``probe``          lookups of codes that do not exist, per    20/min, burst 20
                   key or IP (see ``record_probe_failure``)
``health``         the client IP of a credential-less         20/s, burst 40
                   ``/livez`` or ``/readyz`` (a load
                   balancer's health checks), per replica
=================  =========================================  ==============================

- Auditors get a higher limit than platforms: they read the whole log (every entry, every
  proof) and must keep up with its growth, which a platform-sized budget would not allow.
- A creator's writes (registrations, revocations, key enrolment, bulk uploads) carry their
  own EIP-712 signature and need no session. Sent without one they are charged to
  ``signed_write`` per IP, not to ``anonymous``: the CLI makes a few requests per command
  and a bulk upload cannot be resent after a 429, while ``anonymous`` is sized for the
  public page. Forged signatures cost a recovery each (~0.1 ms), which 20/s bounds.
- A platform or IP that exhausts its ``probe`` budget is refused (429) until it refills and
  is *flagged* in memory (``flags()``) with counts, for the API to report and log; the
  signals work persists such flags later.
- A *public* code lookup is an anonymous one, or a creator session's lookup of a code that is
  not its own: it is charged to ``code_lookup`` by client address and to ``code_lookup_all``,
  and must carry a proof of work (``api.pow``). Rotating addresses escapes the first, not the
  other two; a fresh wallet escapes none (sessions from one address share its bucket).
- ``health``: a load balancer checks every replica from its own address with no
  credentials. Charged to ``anonymous`` (shared by the replicas), N replicas checked every
  ``I`` seconds cost ``N / I`` of that address's 5/s, and past it the replicas answered 429
  and were taken out of rotation, all at once. So health probes have a budget of their own,
  counted in each replica only (``api.sharedfallback.LOCAL_ONLY``): each replica is checked on
  its own, so its own count is the right one, and a check costs no Redis round trip. Still
  bounded (a flood of ``/readyz``, each a database query and a chain call, gets 429s).
- ``fingerprint`` is shared by everyone: a card polled far more than any honest resale
  needs is the signature of a bot draining it. NOTE: the flip side is that a hostile caller
  can exhaust one card's budget for a minute; the budget is per card, so that only delays
  checks of that card.

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
from dataclasses import dataclass, fields
from typing import Final, TypeVar

from readmodels.market import ProbeFlag
from registry.errors import TracemarkError

T = TypeVar("T")

logger = logging.getLogger("tracemark.api.ratelimit")

API_KEY = "api_key"
AUDITOR = "auditor"
CREATOR = "creator"
SIGNED_WRITE = "signed_write"
ANONYMOUS = "anonymous"
CODE_LOOKUP = "code_lookup"
CODE_LOOKUP_ALL = "code_lookup_all"
#: The one key of ``code_lookup_all``.
EVERYONE = "all"
FINGERPRINT = "fingerprint"
PROBE = "probe"
HEALTH = "health"


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


@dataclass(frozen=True)
class Limit:
    """A token bucket: ``rate`` tokens a second, holding at most ``burst``."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0 or self.burst < 1:
            raise ValueError("a limit needs a positive rate and a burst of at least 1")

    @classmethod
    def per_second(cls, count: float, burst: int | None = None) -> Limit:
        return cls(rate=float(count), burst=burst if burst is not None else max(1, int(count)))

    @classmethod
    def per_minute(cls, count: float, burst: int | None = None) -> Limit:
        return cls(rate=count / 60.0, burst=burst if burst is not None else max(1, int(count)))


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


#: A platform key: far above an honest integration's steady rate, with room for bursts.
DEFAULT_API_KEY: Final = Limit.per_second(100, burst=200)
#: An auditor's key: ten times a platform's, to read the log as fast as it grows.
DEFAULT_AUDITOR: Final = Limit.per_second(1000, burst=2000)
#: A signed-in creator reading their goods and statements.
DEFAULT_CREATOR: Final = Limit.per_second(20, burst=40)
#: One IP without credentials (public reads; refused credentials are charged here too).
DEFAULT_ANONYMOUS: Final = Limit.per_second(5, burst=10)
#: One IP sending signed creator writes without a session token.
DEFAULT_SIGNED_WRITE: Final = Limit.per_second(20, burst=40)
#: One IP looking codes up without a key: a code is a short secret (THREATS 11, 38).
DEFAULT_CODE_LOOKUP: Final = Limit.per_minute(10)
#: Every public code lookup together: what address rotation cannot multiply.
DEFAULT_CODE_LOOKUP_ALL: Final = Limit.per_minute(600)
#: One code's fingerprint, whoever asks: a card polled harder is being drained.
DEFAULT_FINGERPRINT: Final = Limit.per_minute(60)
#: Lookups of codes that do not exist, per key or IP: a guesser's trace.
DEFAULT_PROBE: Final = Limit.per_minute(20)
#: One address's health checks of one replica: a balancer checking every 100 ms uses half.
DEFAULT_HEALTH: Final = Limit.per_second(20, burst=40)


@dataclass(frozen=True)
class RateLimits:
    """Every named limit, with the defaults documented in the module docstring."""

    api_key: Limit = DEFAULT_API_KEY
    auditor: Limit = DEFAULT_AUDITOR
    creator: Limit = DEFAULT_CREATOR
    anonymous: Limit = DEFAULT_ANONYMOUS
    signed_write: Limit = DEFAULT_SIGNED_WRITE
    code_lookup: Limit = DEFAULT_CODE_LOOKUP
    code_lookup_all: Limit = DEFAULT_CODE_LOOKUP_ALL
    fingerprint: Limit = DEFAULT_FINGERPRINT
    probe: Limit = DEFAULT_PROBE
    health: Limit = DEFAULT_HEALTH
    #: Most buckets held at once, all names together (~200 bytes each).
    max_buckets: int = 100_000
    #: Most probing flags held at once.
    max_flags: int = 10_000

    def __post_init__(self) -> None:
        if self.max_buckets < 1 or self.max_flags < 1:
            raise ValueError("max_buckets and max_flags must be at least 1")

    def named(self) -> dict[str, Limit]:
        """The bucket limits by name (every field that is a ``Limit``)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if isinstance(value, Limit)}


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
