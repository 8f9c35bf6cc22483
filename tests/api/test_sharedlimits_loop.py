"""A shared limiter's checks wait for Redis off the event loop (issue 16): a hung Redis holds
the requests that check there, never the others of the replica. A private ``redis-server``
paused with SIGSTOP answers nothing, so a check waits its whole socket timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from api import ratelimit, sharedfallback, sharedlimits
from api.ratelimit import Limit, RateLimiter, RateLimits
from api.sharedlimits import SharedRateLimiter
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_sharedlimits import replica
from tests.redisserver import RedisServer, fresh_prefix, own_redis

#: A hung Redis holds a check this long (the limiter's socket timeout, raised for the test so
#: that a held event loop cannot pass for a slow machine).
HUNG = 2.0
#: A request that checks nothing in Redis answers well within this, loop free.
FREE = 1.0


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    monkeypatch.setattr(sharedlimits, "SOCKET_TIMEOUT", HUNG)
    yield from own_redis()


def held_while(slow: Callable[[], httpx.Response], quick: Callable[[], httpx.Response]) -> float:
    """Seconds ``quick`` takes while ``slow`` (another thread) waits for the hung Redis."""
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(slow().status_code))
    started = time.monotonic()
    thread.start()
    time.sleep(0.3)  # ``slow`` is in its check by now (its socket timeout is HUNG)
    before = time.monotonic()
    assert quick().status_code == 200
    took = time.monotonic() - before
    thread.join(30)
    assert answers == [200]  # counted on the local share once Redis timed out
    assert time.monotonic() - started >= HUNG * 0.9  # it did wait for the hung Redis
    return took


@pytest.mark.slow
@pytest.mark.parametrize("route", ["verify", "livez"])
def test_a_hung_redis_holds_only_the_requests_that_ask_it(
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    server: RedisServer,
    route: str,
) -> None:
    """A platform's request (``POST /v1/verify``, answered in front of the stack; ``/livez``,
    a FastAPI dependency) checks its key's limit in the hung Redis; meanwhile an anonymous
    ``/livez`` (the replica's own ``health`` budget, not in Redis) is answered at once."""
    key = bearer(make_key("cardhub", "verify"))
    took: list[float] = []
    with TestClient(replica(registry, server.url, fresh_prefix(), replicas=1)) as client:
        assert client.get("/livez", headers=key).status_code == 200  # connected, script loaded
        if route == "verify":
            body = {"good_type": "code", "fingerprint": code_good.hex}
            slow = lambda: client.post("/v1/verify", json=body, headers=key)  # noqa: E731
        else:
            slow = lambda: client.get("/livez", headers=key)  # noqa: E731
        # Up to three tries: a loop held by the Redis check holds the anonymous request in
        # every one (HUNG each time), while a loaded CI machine (the other worker's database
        # work, a stalled thread) once held one for 2.5 s with the check off the loop.
        while len(took) < 3 and (not took or took[-1] >= FREE):
            server.pause()
            try:
                took.append(held_while(slow, lambda: client.get("/livez")))
            finally:
                server.resume()
            time.sleep(sharedfallback.RETRY_INTERVAL + 0.1)  # the breaker asks Redis again
            client.get("/livez", headers=key)  # it answers: the limiter is out of its down state
    assert took[-1] < FREE, f"an anonymous /livez waited {took} s for another's Redis check"


@pytest.mark.slow
def test_the_limiters_run_keeps_the_loop_free(server: RedisServer) -> None:
    """``SharedRateLimiter.run``: while a check waits for the hung Redis, the event loop
    ticks on; the in-process limiter's ``run`` is the plain call."""
    limits = RateLimits(api_key=Limit(rate=10, burst=10))
    shared = SharedRateLimiter(limits, server.url, prefix=fresh_prefix())
    shared.check(ratelimit.API_KEY, "key:1")  # connected while Redis answers

    async def scenario() -> float:
        gaps = [0.0]
        done = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)  # the ticker is ticking
        await shared.run(lambda: shared.check(ratelimit.API_KEY, "key:1"))
        done.set()
        await ticker
        return max(gaps)

    server.pause()
    try:
        started = time.monotonic()
        longest = asyncio.run(scenario())
        assert time.monotonic() - started >= HUNG * 0.9
    finally:
        server.resume()
        shared.close()
    assert longest < FREE, f"the loop stood still {longest:.2f} s"
    memory = RateLimiter(limits)
    assert asyncio.run(memory.run(lambda: threading.get_ident())) == threading.get_ident()
