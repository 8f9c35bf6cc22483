"""Leases for the singleton roles: one holder per role and database, a heartbeat, fencing.

The sequencer, the anchoring worker, the witnessing loop, the risk worker, the webhook
sender and the telemetry folder each run in exactly one process at a time (``tracemark
serve --role``, issue 16).
On PostgreSQL each holds a row of ``role_leases``:

- **acquire**: the row is taken when it is free or its ``expires_at_ms`` (the database's
  clock, so machines' clocks never matter) has passed; each taking adds one to ``token``.
- **heartbeat**: the holder's thread pushes ``expires_at_ms`` forward every third of
  ``lease_seconds``; a renewal whose token no longer matches means another took over.
- **fencing**: a holder's work transaction first reads its row ``FOR KEY SHARE`` and stops
  (``LeaseLost``) unless the token is still its own. A takeover reads the row ``FOR
  UPDATE``, which waits for that share lock: so no takeover happens while a fenced
  transaction is open, and after one, the old holder's next transaction is refused. The
  renewal is a plain UPDATE (``FOR NO KEY UPDATE``), which does not conflict with the share
  lock: a long transaction does not block its own heartbeat.
- **takeover bound**: a dead (or paused) holder's row expires ``lease_seconds`` after its
  last renewal; a standby retries every third of that, so it takes over within
  ``lease_seconds * 4 / 3``. A holder frozen inside a fenced transaction holds the share
  lock until PostgreSQL ends its session, ``lease_seconds`` after its last statement (the
  fence sets ``idle_in_transaction_session_timeout`` for the transaction): then within
  ``lease_seconds * 7 / 3``. NOTE: so a holder's work may not pause longer than that
  between two statements of one transaction (no role does: their gaps are milliseconds,
  a chain RPC at most its timeout).

NOTE: a session advisory lock (what the anchoring worker held before) is released when the
holder's connection closes, but a paused or partitioned holder keeps it for as long as its
TCP connection lives, and it fences nothing; and advisory locks are server-wide, so two
schemas on one server (parallel tests, two registries) would share it.

On SQLite (the embedded default: one ``serve`` process) the lease is held at once and the
fence does nothing: the database's single writer already serialises the work.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Final

from sqlalchemy import Connection, Engine, text

from registry.errors import LeaseLost

logger = logging.getLogger("tracemark.lease")

#: The roles that must run in one process at a time, as ``tracemark serve --role`` names them.
SINGLETON_ROLES: Final = (
    "sequencer",
    "anchoring",
    "witnessing",
    "risk",
    "webhooks",
    "telemetry",
)
#: Default lease length (seconds): a standby takes over at most ~4/3 of it after a holder dies.
DEFAULT_LEASE_SECONDS: Final = 15.0

#: The database's clock in milliseconds (``clock_timestamp``: the statement's time, not the
#: transaction's start).
_DB_NOW_MS: Final = "(extract(epoch from clock_timestamp()) * 1000)::bigint"


def holder_name() -> str:
    """Who holds a lease: host, process, and a random part (a pid may be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """The right to run one singleton role against a database (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        role: str,
        *,
        seconds: float = DEFAULT_LEASE_SECONDS,
        holder: str | None = None,
    ) -> None:
        if role not in SINGLETON_ROLES:
            raise ValueError(f"not a singleton role: {role!r}")
        if seconds <= 0:
            raise ValueError("a lease lasts a positive number of seconds")
        self.engine = engine
        self.role = role
        self.seconds = seconds
        self.holder = holder or holder_name()
        self._shared = engine.dialect.name == "postgresql"
        #: The fencing token of the current holding, None when not held.
        self.token: int | None = None
        #: Until when (time.monotonic) this process may assume it holds the lease: the start
        #: of its last successful renewal plus the lease's length, so never later than the
        #: database's expiry.
        self._valid_until = 0.0
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        """Whether this process may work now (SQLite: always)."""
        if not self._shared:
            return True
        return self.token is not None and time.monotonic() < self._valid_until

    @property
    def interval(self) -> float:
        """How often the holder renews, and a standby tries to take over (seconds)."""
        return self.seconds / 3

    def acquire(self) -> bool:
        """Take the lease if it is free or expired (or renew it if still ours); True if held."""
        if not self._shared:
            return True
        if self.token is not None and self.renew():
            return True
        started = time.monotonic()
        with self.engine.connect() as conn, conn.begin():
            self._bound_idle(conn)
            # First a plain read: while the lease is live the standby takes no lock, and does
            # not sit waiting behind each long fenced transaction of the holder.
            live = conn.execute(
                text(f"SELECT expires_at_ms >= {_DB_NOW_MS} FROM role_leases WHERE role = :role"),
                {"role": self.role},
            ).scalar()
            if live:
                return False
            conn.execute(
                text(
                    "INSERT INTO role_leases (role, holder, token, expires_at_ms, renewed_at_ms)"
                    " VALUES (:role, '', 0, 0, 0) ON CONFLICT (role) DO NOTHING"
                ),
                {"role": self.role},
            )
            # FOR UPDATE waits for a holder's fenced transaction to end (see the docstring).
            row = conn.execute(
                text(
                    f"SELECT token, expires_at_ms < {_DB_NOW_MS} AS free FROM role_leases"
                    " WHERE role = :role FOR UPDATE"
                ),
                {"role": self.role},
            ).one()
            if not row.free:
                return False
            token = int(row.token) + 1
            conn.execute(
                text(
                    "UPDATE role_leases SET holder = :holder, token = :token,"
                    f" expires_at_ms = {_DB_NOW_MS} + :ms, renewed_at_ms = {_DB_NOW_MS}"
                    " WHERE role = :role"
                ),
                {
                    "holder": self.holder,
                    "token": token,
                    "ms": int(self.seconds * 1000),
                    "role": self.role,
                },
            )
        with self._lock:
            self.token = token
            self._valid_until = started + self.seconds
        logger.info("%s: lease taken by %s (token %d)", self.role, self.holder, token)
        return True

    def renew(self) -> bool:
        """The heartbeat: push the expiry forward; False (and not held) if another took over."""
        if not self._shared:
            return True
        token = self.token
        if token is None:
            return False
        started = time.monotonic()
        with self.engine.connect() as conn, conn.begin():
            self._bound_idle(conn)
            renewed = conn.execute(
                text(
                    f"UPDATE role_leases SET expires_at_ms = {_DB_NOW_MS} + :ms,"
                    f" renewed_at_ms = {_DB_NOW_MS} WHERE role = :role AND token = :token"
                ),
                {"ms": int(self.seconds * 1000), "role": self.role, "token": token},
            ).rowcount
        with self._lock:
            if self.token != token:
                return False
            if renewed:
                self._valid_until = started + self.seconds
                return True
            self.token = None
        logger.warning("%s: lease lost by %s (token %d)", self.role, self.holder, token)
        return False

    def fence(self, conn: Connection) -> None:
        """Called first in a work transaction: raise ``LeaseLost`` unless the lease is still
        this holding's, and keep it so (a share lock on the row) until the transaction ends."""
        if not self._shared:
            return
        token = self.token
        if token is None or time.monotonic() >= self._valid_until:
            raise LeaseLost(f"{self.role}: this process does not hold the lease")
        current = conn.execute(
            text("SELECT token FROM role_leases WHERE role = :role FOR KEY SHARE"),
            {"role": self.role},
        ).scalar()
        if current != token:
            with self._lock:
                if self.token == token:
                    self.token = None
            raise LeaseLost(f"{self.role}: another process took the lease over (token {current})")
        self._bound_idle(conn)

    def _bound_idle(self, conn: Connection) -> None:
        """A process frozen inside a transaction on the lease's row (paused, swapped out, its
        machine cut off) would keep its lock, and so the role, for ever: PostgreSQL ends the
        session once it has waited this long for the next statement."""
        conn.execute(
            text(f"SET LOCAL idle_in_transaction_session_timeout = {int(self.seconds * 1000)}")
        )

    def release(self) -> None:
        """Give the lease up (a clean stop): a standby takes over at its next try."""
        token, self.token = self.token, None
        if not self._shared or token is None:
            return
        try:
            with self.engine.connect() as conn, conn.begin():
                conn.execute(
                    text(
                        "UPDATE role_leases SET expires_at_ms = 0"
                        " WHERE role = :role AND token = :token"
                    ),
                    {"role": self.role, "token": token},
                )
        except Exception:  # the database is gone: the lease expires on its own
            logger.warning("%s: could not release the lease; it expires on its own", self.role)

    def keep(self, stop: threading.Event) -> threading.Thread:
        """Start the heartbeat thread: renew while held, try to take over while not, every
        ``interval`` seconds, until ``stop``; then release."""
        thread = threading.Thread(
            target=self._keep, args=(stop,), name=f"lease-{self.role}", daemon=True
        )
        thread.start()
        return thread

    def _keep(self, stop: threading.Event) -> None:
        standing_by = False
        try:
            while not stop.is_set():
                try:
                    held = self.acquire()
                except Exception:  # a lost connection: not held past its validity, try again
                    logger.exception("%s: lease heartbeat failed", self.role)
                else:
                    if not held and not standing_by:
                        logger.info("%s: another process holds the lease; standing by", self.role)
                    standing_by = not held
                stop.wait(self.interval)
        finally:
            self.release()


__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "SINGLETON_ROLES",
    "Lease",
    "LeaseLost",
    "holder_name",
]
