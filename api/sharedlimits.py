"""Rate limits shared by every API replica: ``api.ratelimit``'s named limits as moving windows
in Redis (the ``limits`` package) and the probing flags beside them (a local share while Redis
is down: ``api.sharedfallback``).

Why (issue 16): with one process's buckets, N replicas behind a load balancer let every
caller through N times its limit, and a restart forgets them. Here every replica counts in
one Redis, named by one URL (``TRACEMARK_RATE_LIMIT_STORAGE``), under a key prefix
(``TRACEMARK_RATE_LIMIT_PREFIX``) so that registries (and tests) sharing a server do not
count into each other.

A token bucket as a moving window (``moving_window``): ``rate`` a second with ``burst``
becomes ``burst`` hits in any ``burst / rate`` seconds (200 in any 2 s for a platform key,
10 in any 60 s for a public code lookup). Both admit at most ``rate * T + burst`` in any
span of ``T`` seconds and the same long-run rate; they differ in how the budget comes back:
a bucket refills one token every ``1 / rate`` seconds, a window gives each hit back
``burst / rate`` seconds after it was taken. So after a full burst a bucket lets a request
through every ``1 / rate`` s while a window lets none through until the burst's first hit
ages out, then as many as aged out. Of ``limits``' strategies the moving window is the only
exact one (the fixed window admits twice its amount across a boundary; the sliding-window
counter approximates the previous window's hits). Its format in Redis is ``limits``' own,
taken and read by a script of ours that makes a request's checks at once
(``api.windowscript``). It keeps a timestamp per hit (a list of at most ``burst`` entries a
key, expiring with the window), and the timestamps are the replicas' clocks, so they must
agree (NTP) to well under a window.

While Redis cannot be reached, keyed callers are counted on this replica's local share, the
anonymous tier and public code lookups are refused (503), and Redis is asked again a second
later: ``api.sharedfallback`` (``SharedRateLimiter``'s base) says what and why.

A request's checks go to Redis together, in one round trip (``check_all``, one script of
ours over ``limits``' window format: ``api.windowscript``). Async callers
(``api.auth.awaited_caller``, ``api.routes.verify``) await them on the event loop's own
connections (``acheck_all``, ``api.windowclient``), so a slow or hung Redis holds only the
requests that await it, and no request pays a hop to the thread pool (issue 16: that hop was
a third of a replica's GIL time); the pages' synchronous ``caller`` (in FastAPI's thread
pool) uses a synchronous client. Both build the same script call and read its answer the
same way; the breaker and the fallbacks are one code path.

A busy keyed caller's request charge (``BLOCKABLE``) is taken in blocks of hits that this
replica spends locally within a short lease (``api.tokenblocks``: never over-admits, a
bounded under-admission); every other budget is one hit a check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final, TypeVar, cast
from urllib.parse import urlsplit

import anyio.to_thread
import redis
from limits import RateLimitItem, RateLimitItemPerSecond
from redis.backoff import NoBackoff
from redis.retry import Retry

from api import windowscript
from api.ratelimit import (
    API_KEY,
    AUDITOR,
    CREATOR,
    NO_FLAG,
    SHARED_SCHEMES,
    Check,
    Limit,
    ProbeFlag,
    RateLimits,
)
from api.sharedfallback import LOCAL_ONLY, RETRY_INTERVAL, FallbackLimiter
from api.tokenblocks import TokenBlocks
from api.windowclient import LoopClient
from registry.errors import ConfigurationError

logger = logging.getLogger("tracemark.api.ratelimit")
T = TypeVar("T")

#: Seconds a Redis command (or a connection) may take before Redis counts as down: a loopback
#: answer takes well under a millisecond, and a hung server must not hold the event loop.
SOCKET_TIMEOUT: Final = 0.25
#: The longest window a limit becomes (a day): Redis keys expire with their window.
MAX_WINDOW_SECONDS: Final = 86_400
#: The buckets a replica may take in blocks (``api.tokenblocks``): a keyed caller's request
#: charge, which a busy integration pays at every request. Never the anonymous tier, public
#: code lookups, a code's budget or the probe budget: those stay exact, one hit a check.
BLOCKABLE: Final = frozenset({API_KEY, AUDITOR, CREATOR})


def moving_window(limit: Limit) -> RateLimitItem:
    """``limit`` as ``limits``' item: ``burst`` hits in any ``burst / rate`` seconds (whole
    seconds, 1 to ``MAX_WINDOW_SECONDS``; the amount follows the rounded window)."""
    seconds = min(MAX_WINDOW_SECONDS, max(1, round(limit.burst / limit.rate)))
    return RateLimitItemPerSecond(max(1, round(limit.rate * seconds)), seconds)


def redacted(url: str) -> str:
    """The URL without its credentials, for logs and alerts."""
    parts = urlsplit(url)
    where = parts.hostname or ""
    if parts.port is not None:
        where += f":{parts.port}"
    return f"{parts.scheme}://{where}{parts.path}"


class SharedRateLimiter(FallbackLimiter):
    """The named limits counted in Redis for every replica; the inherited in-process buckets
    hold this replica's local share, used only while Redis cannot be reached
    (``api.sharedfallback``)."""

    def __init__(
        self,
        limits: RateLimits,
        url: str,
        *,
        prefix: str = "tracemark",
        replicas: int = 1,
        clock: Callable[[], float] = time.time,
        retry_interval: float = RETRY_INTERVAL,
        blocks: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if url.split("://", 1)[0] not in SHARED_SCHEMES:
            raise ConfigurationError(
                "TRACEMARK_RATE_LIMIT_STORAGE: a shared limiter needs a Redis URL "
                f"({', '.join(s + '://' for s in SHARED_SCHEMES)})"
            )
        super().__init__(
            limits,
            replicas=replicas,
            where=redacted(url),
            clock=clock,
            retry_interval=retry_interval,
        )
        self._items = {name: moving_window(limit) for name, limit in limits.named().items()}
        # NOTE: no retries inside the client (redis-py's default retries with a back-off of
        # up to seconds): a failure goes straight to the local share, and RETRY_INTERVAL
        # decides when Redis is asked again.
        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._redis.register_script(windowscript.SCRIPT)
        self._flag_keys = windowscript.flag_keys(prefix)
        self._windows = windowscript.windows(self._items, prefix)
        self._url = url
        self._prefix = prefix
        # The event loop's own client (``_on_loop``): an asyncio connection belongs to the
        # loop that opened it (it connects only when used).
        self._loop: object | None = None
        self._aio = LoopClient(url, SOCKET_TIMEOUT)
        # ``blocks`` False: every request charge one hit (exact per-request windows).
        self.blocks = TokenBlocks(
            {name: self._items[name] for name in BLOCKABLE if blocks},
            replicas=replicas,
            clock=monotonic,
        )

    async def run(self, work: Callable[[], T]) -> T:
        """``work`` in the thread pool: its round trips to Redis (a ``SOCKET_TIMEOUT`` each
        while Redis hangs) hold a worker thread, never the event loop."""
        return await anyio.to_thread.run_sync(work)

    # -- the windows: one script a request ------------------------------------------------------

    def _take_all(self, checks: Sequence[Check]) -> tuple[str, float] | None:
        checks, block = self._from_block(checks)
        if not checks:
            return None
        call = self._call(checks, block)
        if call is not None and self._usable():
            try:
                answer = self._script(keys=call[0], args=call[1])
            except redis.RedisError as exc:
                self._went_down(exc)
            else:
                return self._answered_with(checks, answer, block)
        return self._unshared(checks)

    async def _atake_all(self, checks: Sequence[Check]) -> tuple[str, float] | None:
        """``_take_all`` awaiting Redis on the event loop (the same script, answer, breaker
        and fallbacks): no thread hop, and a hung Redis holds only the requests that await
        it."""
        checks, block = self._from_block(checks)
        if not checks:
            return None
        call = self._call(checks, block)
        if call is not None and self._usable():
            try:
                answer = await self._on_loop().run(call[0], call[1], self._outages)
            except redis.RedisError as exc:
                self._went_down(exc)
            else:
                return self._answered_with(checks, answer, block)
        return self._unshared(checks)

    def _from_block(
        self, checks: Sequence[Check]
    ) -> tuple[Sequence[Check], windowscript.Block | None]:
        """A request's charge paid from this replica's block of its key (then the checks left
        for Redis), or the block to ask for with it (None: one hit, as any check)."""
        first = checks[0] if checks else None
        if (
            first is None
            or first.bucket not in self.blocks.items
            or first.cost != 1
            or not first.consume
            or first.flag != NO_FLAG
        ):
            return checks, None
        if self.blocks.spend(first.bucket, first.key):
            return checks[1:], None
        return checks, self.blocks.wanted(first.bucket, first.key)

    def _call(
        self, checks: Sequence[Check], block: windowscript.Block | None = None
    ) -> tuple[list[str], list[str | int]] | None:
        """The script's keys and arguments; None when a check is ``LOCAL_ONLY`` (a health
        probe's, alone in its request: counted in this process, never in Redis)."""
        for check in checks:
            if check.bucket in LOCAL_ONLY:
                return None
            if check.bucket not in self._items:
                raise ValueError(f"no rate limit named {check.bucket!r}")
        return windowscript.arguments(
            checks,
            self._windows,
            self._flag_keys,
            now=time.time(),
            flag_now=self._clock(),
            max_flags=self.limits.max_flags,
            block=block,
        )

    def _answered_with(
        self,
        checks: Sequence[Check],
        answer: object,
        block: windowscript.Block | None = None,
    ) -> tuple[str, float] | None:
        self._answered()
        if block is not None:
            # The request spends one of the hits taken; the rest are this replica's until the
            # block's lease ends.
            taken = windowscript.granted(cast(list[object], answer))
            self.blocks.keep(checks[0].bucket, checks[0].key, taken - 1, block)
        refusal, made = windowscript.outcome(cast(list[object], answer))
        if made:
            # Once per flag across the replicas (the script says which one made it).
            assert refusal is not None  # a flag is made only by a refusal
            key = checks[refusal.index].key
            logger.warning("probing: %s exhausted its failed-code-lookup budget", key)
        if refusal is None:
            return None
        return checks[refusal.index].bucket, refusal.wait

    def _on_loop(self) -> LoopClient:
        """This event loop's Redis client and script (one loop a server process; a test's
        client may run several loops one after another, each gets its own)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._aio = LoopClient(self._url, SOCKET_TIMEOUT)
            self._loop = loop
        return self._aio

    # -- the flags ------------------------------------------------------------------------------

    def flags(self, since: float | None = None) -> list[ProbeFlag]:
        """The shared flags and those this process kept while Redis was down, merged by key,
        oldest flag first."""
        local = super().flags(since)
        if not self._usable():
            return local
        try:
            shared = self._shared_flags(since)
        except redis.RedisError as exc:
            self._went_down(exc)
            return local
        self._answered()
        return merged(shared, local)

    def _shared_flags(self, since: float | None) -> list[ProbeFlag]:
        table, _, by_last = self._flag_keys
        # (redis-py types each answer as "a value or an awaitable": this client is sync.)
        if since is None:
            found = cast(dict[bytes, bytes], self._redis.hgetall(table))
            rows = list(found.items())
        else:
            keys = cast(list[bytes], self._redis.zrangebyscore(by_last, f"({since!r}", "+inf"))
            values = cast(list[bytes | None], self._redis.hmget(table, keys) if keys else [])
            rows = [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]
        flags = []
        for raw_key, raw_value in rows:
            first, last, failed, refused = raw_value.decode().split(" ")
            flags.append(
                ProbeFlag(raw_key.decode(), float(first), float(last), int(failed), int(refused))
            )
        return flags

    # -- health ---------------------------------------------------------------------------------

    def alerts(self) -> list[str]:
        """Asks Redis (when a retry is due): while it is down, the one alert saying so."""
        if self._usable():
            try:
                self._redis.ping()
            except redis.RedisError as exc:
                self._went_down(exc)
            else:
                self._answered()
        since = self._down_since
        if since is None:
            return []
        return [
            f"rate limits: {self.where} unreachable for {max(0.0, time.time() - since):.0f} s: "
            f"keyed callers held to 1/{self.replicas} of their limits in each replica, "
            "the anonymous tier and public code lookups refused (503)"
        ]

    def close(self) -> None:
        self._redis.close()

    async def aclose(self) -> None:
        """The loop's client disconnected (it reconnects on use, in this loop or the next)."""
        if self._loop is asyncio.get_running_loop():
            await self._aio.aclose()
            self._loop = None


def merged(*groups: Iterable[ProbeFlag]) -> list[ProbeFlag]:
    """Flags of the same key added together (earliest first, latest last), oldest first."""
    by_key: dict[str, ProbeFlag] = {}
    for group in groups:
        for flag in group:
            seen = by_key.get(flag.key)
            if seen is not None:
                flag = ProbeFlag(
                    flag.key,
                    min(seen.first_at, flag.first_at),
                    max(seen.last_at, flag.last_at),
                    seen.failed_probes + flag.failed_probes,
                    seen.refused + flag.refused,
                )
            by_key[flag.key] = flag
    return sorted(by_key.values(), key=lambda f: (f.first_at, f.key))


__all__ = [
    "SharedRateLimiter",
    "merged",
    "moving_window",
    "redacted",
]
