"""Verification telemetry (who checked which good, when), appended behind the requests in batches.

A verify answer must not wait for a write (one upsert per request costs most of the
endpoint's throughput), and the counts it reports are telemetry, not acknowledged writes:
they may lag by about a second, and a crash may lose the last second of them. The API only
appends the events; the telemetry role folds them into the counts (``registry.telemetryfold``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from api.ratelimit import RateLimiter
from readmodels.riskworker import record_probe_flags
from registry.db import create_telemetry_engine, write_transaction
from registry.errors import TracemarkError
from registry.service import Registry
from registry.telemetry import VerificationRecord, append_verifications

logger = logging.getLogger("tracemark.api.telemetry")

#: Most events buffered; beyond this new ones are dropped (and counted) rather than growing.
MAX_BUFFERED = 100_000


class TelemetryBuffer:
    """Collects verification records and flushes them every ``interval`` seconds."""

    def __init__(
        self,
        flush: Callable[[Sequence[VerificationRecord]], None],
        *,
        interval: float = 0.5,
    ) -> None:
        self._flush = flush
        self.interval = interval
        self._pending: list[VerificationRecord] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def add(self, record: VerificationRecord) -> None:
        with self._lock:
            if len(self._pending) >= MAX_BUFFERED:
                self.dropped += 1
                return
            self._pending.append(record)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="tracemark-telemetry", daemon=True
                )
                self._thread.start()

    def flush(self) -> None:
        """Write everything buffered now (also what tests call to stop waiting).

        A flush already under way (the background thread's) is waited for: when this
        returns, whatever was added before the call is written. The flush callable is called
        with an empty batch too, for what it writes besides records (probe flags).
        """
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            try:
                self._flush(batch)
            except TracemarkError as exc:  # busy database: keep them for the next round
                logger.warning("verification telemetry not written yet: %s", exc.code)
                with self._lock:
                    self._pending[:0] = batch[: MAX_BUFFERED - len(self._pending)]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # telemetry must never take the server down
                logger.exception("verification telemetry flush failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        # Ready to start again (an app whose lifespan restarts, as test harnesses do).
        self._thread, self._stop = None, threading.Event()
        self.flush()


class TelemetryWriter:
    """The buffer's flush: the records (appended only: one multi-row INSERT per flush), and
    the rate limiter's probe flags that changed since the previous flush, in one transaction
    (the telemetry role and the risk worker, other processes, read them).

    It writes through an engine of its own (``registry.db.create_telemetry_engine``): its
    commits do not wait for the disk, which is what the module's "may lose the last second"
    allows, and the registry's acknowledged writes keep theirs.
    """

    def __init__(self, registry: Registry, limiter: RateLimiter) -> None:
        self.registry = registry
        self.limiter = limiter
        self._written = 0.0
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __call__(self, records: Sequence[VerificationRecord]) -> None:
        flags = self.limiter.flags(since=self._written)
        if not records and not flags:
            return
        with write_transaction(self._connected()) as conn:
            append_verifications(conn, records)
            record_probe_flags(conn, flags)
        self._written = max([self._written, *(f.last_at for f in flags)])

    def _connected(self) -> Engine:
        with self._lock:
            if self._engine is None:  # on first use: an app that never verifies opens nothing
                self._engine = create_telemetry_engine(self.registry.engine)
            return self._engine

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
