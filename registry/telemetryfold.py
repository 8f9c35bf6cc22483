"""The telemetry role: folds appended verification events into the per-good counts.

The API only appends events (``registry.telemetry.append_verifications``); this loop folds
what is past the mark every ``interval`` seconds, one transaction per window of events,
fenced by the ``telemetry`` lease on PostgreSQL (``registry.lease``). A verify answer's
counts are so at most the API's flush interval plus this interval (plus a fold's own time)
behind: about a second with the defaults (0.5 s each).
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from registry.db import create_telemetry_engine, write_transaction
from registry.errors import LeaseLost, StorageBusy
from registry.lease import Lease
from registry.telemetry import FOLD_BATCH, fold_verifications

logger = logging.getLogger("tracemark.telemetry")

#: Default seconds between folds (``TRACEMARK_TELEMETRY_FOLD_INTERVAL``).
DEFAULT_FOLD_INTERVAL = 0.5
#: Longest wait after a failed fold (a busy or unreachable database).
MAX_BACKOFF_SECONDS = 10.0


class TelemetryFolder:
    """The fold loop of one process; with a ``lease``, it folds only while holding it."""

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = DEFAULT_FOLD_INTERVAL,
        lease: Lease | None = None,
        limit: int = FOLD_BATCH,
    ) -> None:
        self.registry_engine = engine
        self.interval = interval
        self.lease = lease
        self.limit = limit
        #: Folds completed (each a committed transaction, events or not): tests wait on it.
        self.cycles = 0
        self._engine: Engine | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cycled = threading.Condition()

    def fold(self) -> int:
        """Fold everything past the mark now (windows of ``limit``, a transaction each);
        returns how many events were folded. Raises ``LeaseLost`` when not the holder."""
        total = 0
        while True:
            with write_transaction(self._connected()) as conn:
                if self.lease is not None:
                    self.lease.fence(conn)
                folded = fold_verifications(conn, limit=self.limit)
            total += folded
            if folded < self.limit:  # NOTE: a window of ids: short means caught up, or a gap
                break
        with self._cycled:
            self.cycles += 1
            self._cycled.notify_all()
        return total

    def wait_cycles(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` more folds than now have completed (tests)."""
        with self._cycled:
            target = self.cycles + count
            return self._cycled.wait_for(lambda: self.cycles >= target, timeout)

    def _connected(self) -> Engine:
        # The telemetry engine (commits that do not wait for the disk): the counts and their
        # mark commit together or not at all, and after the events they count (one WAL).
        if self._engine is None:
            self._engine = create_telemetry_engine(self.registry_engine)
        return self._engine

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="telemetry-fold", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            if self.lease is not None and not self.lease.held:
                self._stop.wait(min(self.interval, self.lease.interval))  # standing by
                continue
            try:
                self.fold()
            except LeaseLost as exc:
                logger.warning("telemetry folding stopped: %s", exc.detail)
                continue
            except StorageBusy:
                logger.warning("database busy; folding again in %.1fs", backoff)
            except Exception:  # telemetry must never take the process down
                logger.exception("telemetry fold failed; again in %.1fs", backoff)
            else:
                backoff = self.interval
                self._stop.wait(self.interval)
                continue
            self._stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def close(self) -> None:
        """Stop the loop (after its fold under way) and let the connections go; it can start
        again (an app whose lifespan restarts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread, self._stop = None, threading.Event()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()


__all__ = ["DEFAULT_FOLD_INTERVAL", "TelemetryFolder"]
