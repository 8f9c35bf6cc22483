"""One anchoring worker at a time per database (THREATS 28).

On PostgreSQL the lease is a session-level advisory lock held on a connection of its own:
the worker that holds it anchors, the others stand by, and when the holder dies its
connection closes and the lock passes to the next. On SQLite (one machine, one ``serve``)
the database's single-writer rule and the stored states already serialise the work.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

#: The advisory lock key: "tracemark anchoring", as a 63-bit number.
ANCHOR_LOCK_KEY = 0x74_72_61_63_65_61_6E


class AnchorLease:
    """The right to anchor: a PostgreSQL advisory lock on a connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._engine.dialect.name != "postgresql"

    def acquire(self) -> bool:
        """Take the lease if it is free; True if this worker may anchor."""
        if self.held:
            return True
        conn = self._engine.connect()
        got = bool(
            conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": ANCHOR_LOCK_KEY}
            ).scalar()
        )
        conn.commit()  # the lock is the session's, not the transaction's
        if got:
            self._conn = conn
        else:
            conn.close()
        return got

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ANCHOR_LOCK_KEY})
                conn.commit()
            finally:
                conn.close()
