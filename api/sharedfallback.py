"""What the shared rate limiter (``api.sharedlimits``) does while Redis cannot be reached: the
breaker that decides when to ask it again, this replica's local share of every limit, and the
buckets that fail closed.

Kept apart from ``api.sharedlimits`` (the windows in Redis, the script, the clients): that
module is how limits are counted when the store answers; this one is the decided behaviour
when it does not, whichever client (the synchronous one or the event loop's) found it down.
``FallbackLimiter`` is ``SharedRateLimiter``'s base: the inherited in-process buckets hold the
local share.

While Redis cannot be reached (decided, issue 16):

- a keyed caller (``api_key``, ``auditor``, ``creator``), a signed write, a code's
  ``fingerprint`` budget and the ``probe`` budget are counted in this process on its
  *local share*, ``1 / TRACEMARK_RATE_LIMIT_REPLICAS`` of each limit (rate and burst, at
  least 1), so N replicas together still hold about the whole limit and platforms keep
  verifying;
- the anonymous tier (``anonymous``) and public code lookups (``code_lookup``,
  ``code_lookup_all``) fail closed: 503 problem+json ``rate-limit-unavailable`` with
  Retry-After. A share per replica cannot hold a budget shared by every address (the
  public guessing budget, THREATS 38) when the balancer's spread is unknown;
- except the health probes (``/livez``, ``/readyz``), so a load balancer sees each replica
  *degraded* and keeps it, rather than taking every replica out at once because of Redis:
  a credential-less probe is charged to ``health``, which is never in Redis
  (``LOCAL_ONLY``: each replica counts its own checks, whole), and a probe with a refused
  credential to the local share (``local_when_down``);
- flags are kept in this process and merged into ``flags()``; one WARNING line when Redis
  goes, one when it is back, and ``/readyz`` says degraded meanwhile.

Redis is asked again ``RETRY_INTERVAL`` after a failure (by one caller; the others stay on
the local share meanwhile), so a dead Redis costs one refused connection a second, and a
hung one one ``SOCKET_TIMEOUT`` (``api.sharedlimits``) a second. When it answers, the shared
windows count again from what Redis holds (nothing, after a restart without persistence).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from api.ratelimit import (
    ANONYMOUS,
    CODE_LOOKUP,
    CODE_LOOKUP_ALL,
    HEALTH,
    Check,
    Limit,
    RateLimiter,
    RateLimits,
    RateLimitUnavailable,
)

logger = logging.getLogger("tracemark.api.ratelimit")

#: The buckets refused (503) while Redis is down: what one replica's share cannot hold.
FAIL_CLOSED: Final = frozenset({ANONYMOUS, CODE_LOOKUP, CODE_LOOKUP_ALL})
#: The buckets counted in each replica only, whole (not a share), Redis up or down: a load
#: balancer checks each replica on its own, so each replica's own count is the right one.
LOCAL_ONLY: Final = frozenset({HEALTH})
#: Seconds between attempts to reach Redis again once it failed.
RETRY_INTERVAL: Final = 1.0


def local_share(limits: RateLimits, replicas: int) -> RateLimits:
    """Each named limit divided by ``replicas`` (rate and burst; a burst of at least 1),
    except ``LOCAL_ONLY``'s, which each replica holds whole."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    shares = {
        name: Limit(rate=limit.rate / replicas, burst=max(1, limit.burst // replicas))
        for name, limit in limits.named().items()
        if name not in LOCAL_ONLY
    }
    return replace(limits, **shares)  # type: ignore[arg-type]


class FallbackLimiter(RateLimiter):
    """The in-process buckets as this replica's local share of ``limits``, used only while the
    shared store cannot be reached; the breaker that says when that is (``_usable``,
    ``_went_down``, ``_answered``); the fail-closed tier (``_unshared``)."""

    def __init__(
        self,
        limits: RateLimits,
        *,
        replicas: int,
        where: str,
        clock: Callable[[], float],
        retry_interval: float,
    ) -> None:
        super().__init__(local_share(limits, replicas), clock=clock)
        #: What every replica together enforces (the base class's buckets: the local share).
        self.limits = limits
        self.replicas = replicas
        #: The store's URL without its credentials, for logs and alerts.
        self.where = where
        self._retry_interval = retry_interval
        self._state = threading.Lock()
        self._down_since: float | None = None  # wall clock, for the alert
        self._outages = 0  # how many times Redis went down (``LoopClient.run``)
        self._retry_at = 0.0  # monotonic

    def _unshared(self, checks: Sequence[Check]) -> tuple[str, float] | None:
        """Without Redis: each check refused (``FAIL_CLOSED``: 503) or counted on the local
        share (``LOCAL_ONLY``'s whole), in order, as in one process."""
        for number, check in enumerate(checks):
            if check.bucket in FAIL_CLOSED and not check.local_when_down:
                raise RateLimitUnavailable(
                    f"rate limit '{check.bucket}' cannot be counted while the shared store is "
                    "unreachable; refused until it answers (an API key's calls go on)",
                    retry_after=max(1, math.ceil(self._retry_interval)),
                    bucket=check.bucket,
                )
            refused = RateLimiter._take_all(self, checks[number : number + 1])
            if refused is not None:
                return refused
        return None

    @property
    def shared(self) -> bool:
        """Whether Redis answered last time it was asked."""
        return self._down_since is None

    # -- the breaker ----------------------------------------------------------------------------

    def _usable(self) -> bool:
        """Whether to ask Redis now: yes while it answers; once down, one caller a
        ``RETRY_INTERVAL`` (the others keep to the local share meanwhile)."""
        if self._down_since is None:  # one attribute read: no lock on the hot path
            return True
        with self._state:
            now = time.monotonic()
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_interval
            return True

    def _went_down(self, exc: BaseException) -> None:
        with self._state:
            self._retry_at = time.monotonic() + self._retry_interval
            if self._down_since is not None:
                return
            self._down_since = time.time()
            self._outages += 1
        # The exception's type only: its text may carry the address, never credentials,
        # but there is nothing in it an operator needs beyond the kind of failure.
        logger.warning(
            "rate limits: Redis at %s unreachable (%s): keyed callers held to 1/%d of their "
            "limits in this process, the anonymous tier and public code lookups refused "
            "(503) until it answers",
            self.where,
            type(exc).__name__,
            self.replicas,
        )

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._state:
            since, self._down_since = self._down_since, None
        if since is not None:
            logger.warning(
                "rate limits: Redis at %s answers again after %.1f s: limits are shared again",
                self.where,
                time.time() - since,
            )


__all__ = ["FAIL_CLOSED", "LOCAL_ONLY", "RETRY_INTERVAL", "FallbackLimiter", "local_share"]
