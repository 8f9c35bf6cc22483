"""Reads from a PostgreSQL streaming replica, while it is fresh enough (issue 16).

A replica is *fresh* while it has replayed everything the primary had written ``max_lag``
seconds ago. A watcher thread samples the primary's WAL write position
(``pg_current_wal_lsn()``) and then the replica's replay position
(``pg_last_wal_replay_lsn()``) every ``check_every`` seconds; the replica covers a sample once
its replay position reaches the sample's, and it may serve reads until the newest sample it
covers is ``max_lag`` old. A position, not ``pg_last_xact_replay_timestamp()``: that one stops
moving while the primary is idle, so an idle pair would look ever staler. Each sample's time
is taken before the primary is asked, so the bound errs on the stale side.

Past the bound, with the replica down, not in recovery (promoted: its own timeline, not this
primary's), or a read on it failing, reads go to the primary. Writes, and reads that must see
a write just made, never come here: they use the primary's registry as before.

Staleness may only delay good news, never invent bad news: an answer the replica gives that
the primary might contradict (not found, no such head, a size beyond its log, absent) is asked
of the primary again (``read``'s ``confirm`` and its negative errors).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from registry.db import create_db_engine
from registry.errors import ConfigurationError, Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from registry.service import Registry

T = TypeVar("T")
logger = logging.getLogger("tracemark.replica")

#: Errors a stale replica may raise where the primary would answer: asked of the primary again.
NEGATIVE = (NotFound, Conflict, InvalidInput)
#: Seconds to wait for a connection to the replica (the watcher's; reads past the bound go to
#: the primary meanwhile, since freshness expires on its own).
CONNECT_TIMEOUT = 2
#: Samples of the primary's position kept: enough for ``max_lag / check_every`` of them.
MAX_SAMPLES = 4096

FRESH = "fresh"
LAGGING = "lagging"
DOWN = "down"
NOT_A_REPLICA = "not in recovery"
UNCHECKED = "not checked yet"


def parse_lsn(value: str) -> int:
    """A ``pg_lsn`` as text (``16/B374D848``) as one integer, to compare and subtract."""
    high, low = value.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class ReplicaStatus:
    """What ``/readyz`` reports of the replica: its state and how far behind it is known to be
    (seconds since the newest primary position it has replayed was sampled; None: unknown)."""

    state: str
    lag_seconds: float | None
    max_lag: float

    def as_dict(self) -> dict[str, object]:
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        return {"state": self.state, "lag_seconds": lag, "max_lag": self.max_lag}


def replica_engine(url: str) -> Engine:
    """An engine on the replica; PostgreSQL only, with a bounded connection wait."""
    if not url.startswith("postgresql"):
        raise ConfigurationError("TRACEMARK_DATABASE_REPLICA_URL must be a PostgreSQL URL")
    separator = "&" if "?" in url else "?"
    if "connect_timeout=" not in url:
        url = f"{url}{separator}connect_timeout={CONNECT_TIMEOUT}"
    return create_db_engine(url)


class ReplicaReads:
    """The replica's freshness, and the registry reads go to: the replica's while fresh."""

    def __init__(
        self,
        registry: Registry,
        replica: Engine,
        *,
        max_lag: float,
        check_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if registry.engine.dialect.name != "postgresql" or replica.dialect.name != "postgresql":
            raise ConfigurationError("reads from a replica need PostgreSQL for both databases")
        self.primary = registry
        #: The same registry reading the replica's database (its caches shared: tiles and the
        #: state map's snapshots are of log prefixes, the same on both).
        self.replica = copy.copy(registry)
        self.replica.engine = replica
        self.max_lag = max_lag
        self.check_every = check_every if check_every is not None else min(0.5, max_lag / 4)
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque(maxlen=MAX_SAMPLES)
        #: When the newest primary position the replica has replayed was sampled.
        self._covered_at: float | None = None
        self._state = UNCHECKED
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- freshness -------------------------------------------------------------------------

    def check(self) -> ReplicaStatus:
        """Sample the primary, then the replica, once (the watcher calls this)."""
        with self._checking:  # one check at a time: the samples are in order
            return self._check()

    def _check(self) -> ReplicaStatus:
        sampled_at = self._clock()
        try:
            with self.primary.engine.connect() as conn:
                position = parse_lsn(
                    str(conn.execute(text("SELECT pg_current_wal_lsn()")).scalar())
                )
        except DBAPIError:
            # Without the primary's position there is no bound: nothing is known fresh.
            return self._set(UNCHECKED, covered=None)
        self._samples.append((sampled_at, position))
        try:
            with self.replica.engine.connect() as conn:
                row = conn.execute(
                    text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
                ).one()
        except DBAPIError:
            return self._set(DOWN, covered=None)
        if not row[0] or row[1] is None:
            return self._set(NOT_A_REPLICA, covered=None)
        replayed = parse_lsn(row[1])
        covered = None
        while self._samples and self._samples[0][1] <= replayed:
            covered = self._samples.popleft()[0]
        with self._lock:
            if covered is not None:
                self._covered_at = max(covered, self._covered_at or covered)
            state = FRESH if self._fresh_at(self._clock()) else LAGGING
            if self._covered_at is None and self._state == UNCHECKED:
                state = UNCHECKED  # not caught up with a first sample yet: no news
        return self._set(state, covered=self._covered_at)

    def _set(self, state: str, *, covered: float | None) -> ReplicaStatus:
        with self._lock:
            if state != self._state and state in (LAGGING, DOWN, NOT_A_REPLICA):
                logger.warning("database replica: %s; reads go to the primary", state)
            elif state != self._state and state == FRESH:
                logger.info("database replica: fresh; reads go to it")
            self._state = state
            self._covered_at = covered
            if covered is None:
                self._samples.clear()
        return self.status()

    def _fresh_at(self, now: float) -> bool:
        return self._covered_at is not None and now - self._covered_at < self.max_lag

    def fresh(self) -> bool:
        """May a read go to the replica now? (No query: the watcher's last sample decides, and
        freshness runs out by itself when the watcher stops getting answers.)"""
        self._ensure_watching()
        return self._fresh_at(self._clock())

    def mark_down(self) -> None:
        """A read on the replica failed: reads go to the primary until the next check."""
        self._set(DOWN, covered=None)

    def status(self) -> ReplicaStatus:
        self._ensure_watching()
        now = self._clock()
        covered = self._covered_at
        state = self._state
        if state in (FRESH, LAGGING):
            state = FRESH if self._fresh_at(now) else LAGGING
        return ReplicaStatus(state, None if covered is None else now - covered, self.max_lag)

    def _ensure_watching(self) -> None:
        if self._watcher is not None or self._stop.is_set():
            return
        with self._lock:
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="replica-watch", daemon=True
                )
                self._watcher.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # never let the watcher die: reads fall back on their own
                logger.exception("database replica check failed")
                self._set(DOWN, covered=None)
            self._stop.wait(self.check_every)

    def close(self) -> None:
        """Stop the watcher and close the replica's connections; a later read starts them
        again (an app restarted in the same process)."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=CONNECT_TIMEOUT + 5)
        with self._lock:
            self._watcher = None
            self._stop = threading.Event()
        self._set(UNCHECKED, covered=None)
        self.replica.engine.dispose()

    # -- routing ---------------------------------------------------------------------------

    def read(
        self,
        use: Callable[[Registry], T],
        *,
        confirm: Callable[[T], bool] | None = None,
    ) -> T:
        """``use`` on the replica's registry while it is fresh, else on the primary's.

        A negative answer from the replica (``NEGATIVE`` raised, or ``confirm`` saying the
        answer needs the primary's word) and any database error on it are asked of the
        primary again: what a replica does not know yet may exist.
        """
        if self.fresh():
            # A key handed over since (``Registry._signing_account``) is the primary's to see.
            self.replica.account = self.primary.account
            try:
                answer = use(self.replica)
            except NEGATIVE:
                pass
            except DBAPIError:
                self.mark_down()
            else:
                if confirm is None or confirm(answer):
                    return answer
        return use(self.primary)


__all__ = ["ReplicaReads", "ReplicaStatus", "parse_lsn", "replica_engine"]
