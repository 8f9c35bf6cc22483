"""The per-request API-key read, and the cache that keeps key rows until a revocation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Engine

#: The per-request lookup: one probe of the UNIQUE index on key_hash.
_LOOKUP_SQL = (
    "SELECT id, platform_id, scopes, key_hash, revoked_at FROM api_keys WHERE key_hash = {p}"
)
#: The revocation generation (``api_key_generation``), which every revocation bumps.
_GENERATION_SQL = "SELECT generation FROM api_key_generation WHERE id = 1"
#: Idle driver connections the key lookup keeps for reuse.
_LOOKUP_IDLE_CONNECTIONS = 8
#: How stale the API's view of revocations may be, in seconds: each process re-reads the
#: generation when its last read is this old, and a revocation waits this long to return.
KEY_CACHE_SECONDS: Final = 0.25
#: Most key rows held in memory (a few hundred bytes each); the cache empties when full.
KEY_CACHE_MAX: Final = 65_536


class KeyLookup:
    """The per-request API-key read through the raw driver, in autocommit.

    NOTE: the SQLAlchemy path (pool checkout with its pre-ping, BEGIN, the query, ROLLBACK)
    cost ~200 us on SQLite and ~550 us on PostgreSQL per request here; this costs one
    statement (~30 us on SQLite). Connections are taken from a small free list and detached
    from the engine's pool, so they never starve it; how many exist is the peak number of
    lookups at the same instant, not the number of threads. Autocommit: every lookup sees
    every committed revocation, and no snapshot stays open between requests.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        placeholder = "?" if engine.dialect.name == "sqlite" else "%s"
        self._sql = _LOOKUP_SQL.format(p=placeholder)
        self._free: list[Any] = []
        self._lock = threading.Lock()

    def _acquire(self) -> Any:
        with self._lock:
            if self._free:
                return self._free.pop()
        conn = self.engine.raw_connection()
        if self.engine.dialect.name == "postgresql":
            conn.driver_connection.autocommit = True  # type: ignore[union-attr]
        conn.detach()
        return conn

    def _release(self, conn: Any) -> None:
        with self._lock:
            if len(self._free) < _LOOKUP_IDLE_CONNECTIONS:
                self._free.append(conn)
                return
        conn.close()

    def fetch(self, digest: bytes) -> tuple[Any, ...] | None:
        """The key's row (id, platform, scopes, key_hash, revoked_at), or None."""
        return self._one(self._sql, (digest,))

    def generation(self) -> int:
        """The revocation generation (0 where the table has no row yet)."""
        row = self._one(_GENERATION_SQL, ())
        return 0 if row is None else int(row[0])

    def _one(self, sql: str, parameters: tuple[Any, ...]) -> tuple[Any, ...] | None:
        error = self.engine.dialect.loaded_dbapi.Error
        for attempt in (1, 2):
            conn = self._acquire()
            try:
                # The driver's own connection: the pool's proxy adds a layer per call.
                cursor = conn.dbapi_connection.cursor()
                cursor.execute(sql, parameters)
                row = cursor.fetchone()
                cursor.close()
            except error:
                # A connection the server dropped: discard it and try once with a new one.
                conn.close()
                if attempt == 2:
                    raise
                continue
            self._release(conn)
            return None if row is None else tuple(row)
        return None  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for conn in free:
            conn.close()


class KeyCache:
    """API-key rows by hash, kept in memory while the revocation generation stays the same.

    NOTE: the issue's benchmark holds verify to half a bare endpoint's throughput, and a key
    lookup per request was a tenth of verify's cost. Revocations are rare, so rows stay
    until one happens. The generation is re-read on the first request that finds the last
    read ``KEY_CACHE_SECONDS`` old; a change empties the cache. Only found keys are kept
    (unknown ones would let anyone fill memory), revoked ones included, since a revocation
    is final. A row read while a revocation commits is kept only if the generation has not
    moved meanwhile, so it cannot outlive the revocation.
    """

    def __init__(
        self,
        lookup: KeyLookup,
        *,
        parse: Callable[[bytes, tuple[Any, ...]], Any] = lambda _digest, row: row,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        #: What is kept of a found row (by default the row itself): work done once per key.
        self._parse = parse
        self._clock = clock
        self._kept: dict[bytes, Any] = {}
        self._generation: int | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def fetch(self, digest: bytes) -> Any:
        """``parse(digest, row)`` for the key with this hash, or None if there is none."""
        now = self._clock()
        if now - self._read_at >= KEY_CACHE_SECONDS:
            self._refresh(now)
        kept = self._kept.get(digest)
        if kept is not None:
            return kept
        generation = self._generation
        row = self._lookup.fetch(digest)
        if row is None:
            return None
        kept = self._parse(digest, row)
        with self._lock:
            if self._generation == generation:
                if len(self._kept) >= KEY_CACHE_MAX:
                    self._kept.clear()
                self._kept[digest] = kept
        return kept

    def _refresh(self, started: float) -> None:
        generation = self._lookup.generation()
        with self._lock:
            if generation != self._generation:
                self._kept.clear()
                self._generation = generation
            # The time before the read: what it saw is at least that fresh.
            self._read_at = started

    def close(self) -> None:
        with self._lock:
            self._kept.clear()
            self._generation = None
            self._read_at = float("-inf")
        self._lookup.close()


__all__ = ["KEY_CACHE_MAX", "KEY_CACHE_SECONDS", "KeyCache", "KeyLookup"]
