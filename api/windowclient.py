"""The event loop's connections to Redis for the window script (``api.windowscript``): one
``EVALSHA`` a request's limit checks, packed here and sent on connections of its own."""

from __future__ import annotations

import asyncio
from typing import Final, cast

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from api import windowscript

#: Seconds a Redis command (or a connection) may take before Redis counts as down (the
#: limiter's ``SOCKET_TIMEOUT``, given here by its caller).
DEFAULT_TIMEOUT: Final = 0.25


class LoopClient:
    """One event loop's asyncio Redis connections and the window script on them: the same
    settings as the synchronous client (timeouts, no retries).

    NOTE: the script goes out on connections of this client's own, packed here, not through
    ``redis-py``'s ``execute_command``: its pool's bookkeeping (a lock, observability
    counters, a poll of the socket before every command) and its per-argument encoding cost a
    replica more CPU than the round trip itself (issue 16's cluster profile,
    docs/ARCHITECTURE.md). The connections are ``redis-py``'s own (its handshake, parser,
    timeouts and errors); one goes back to ``_idle`` only after its whole answer was read, and
    any failure disconnects and drops it, so no answer is ever read by the wrong request; one
    idle since before an outage is closed, not used, so none is found dead after it."""

    #: Idle connections kept (more are closed): a replica's concurrent limit checks.
    MAX_IDLE: Final = 64

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        # (No socket timeout on the connections: ``run`` bounds each exchange as a whole.)
        self.redis = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=None,
            socket_connect_timeout=timeout,
            retry=AsyncRetry(NoBackoff(), 0),
        )
        self._sha = self.redis.register_script(windowscript.SCRIPT).sha
        self._load = packed("SCRIPT", "LOAD", windowscript.SCRIPT)
        # (connection, the caller's outage count when it was made or last answered)
        self._idle: list[tuple[redis.asyncio.Connection, int]] = []

    async def run(self, keys: list[str], args: list[str | int], outages: int = 0) -> object:
        """The window script's answer for ``keys`` and ``args``: one ``EVALSHA`` (loaded
        first when Redis does not have it, as ``redis-py``'s scripts do). ``outages``: how
        many times the caller has seen Redis go down; an idle connection made before the
        latest is closed rather than used (it would fail its request: another outage)."""
        command = packed("EVALSHA", self._sha, len(keys), *keys, *args)
        connection = await self._take(outages)
        try:
            # NOTE: one deadline for the whole exchange rather than the connection's own
            # timeout on each step: ``redis-py`` bounds a write with ``asyncio.wait_for``,
            # which makes a task a call.
            async with asyncio.timeout(self.timeout):
                await connection.send_packed_command(command, check_health=False)
                try:
                    answer = await connection.read_response()
                except redis.exceptions.NoScriptError:
                    # Loaded on this very connection (it just answered), then asked again.
                    await connection.send_packed_command(self._load, check_health=False)
                    await connection.read_response()
                    await connection.send_packed_command(command, check_health=False)
                    answer = await connection.read_response()
        except TimeoutError as exc:
            await connection.disconnect()
            raise redis.exceptions.TimeoutError("Redis did not answer in time") from exc
        except BaseException:
            await connection.disconnect()
            raise
        if len(self._idle) < self.MAX_IDLE:
            self._idle.append((connection, outages))
        else:
            await connection.disconnect()
        return answer

    async def _take(self, outages: int) -> redis.asyncio.Connection:
        idle = self._idle
        while idle:
            connection, made = idle.pop()
            if made >= outages:
                return connection
            await connection.disconnect()
        pool = self.redis.connection_pool
        return cast(redis.asyncio.Connection, pool.make_connection())  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.disconnect()
        await self.redis.aclose()


def packed(*args: str | int) -> bytes:
    """A Redis command in RESP (each argument a bulk string: text as UTF-8, a number as its
    decimal text)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


__all__ = ["LoopClient", "packed"]
