"""Token blocks (``api.tokenblocks``, issue 16's cluster CPU): a replica takes a busy key's hits
in blocks and spends them locally. Sized from the key's rate and capped; a block's hits are
stamped with its lease's end, so no window admits more than its amount; leftovers are never
spent after the lease; the exact budgets are never blocked; with Redis stopped, a block's
leftovers then the local share. Real Redis: the shared server under a fresh prefix, or a
private ``redis-server`` where round trips are counted or the server is stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from limits import RateLimitItemPerSecond

from api import ratelimit, windowscript
from api.ratelimit import Check, Limit, RateLimited, RateLimits
from api.sharedlimits import SharedRateLimiter, moving_window
from api.tokenblocks import TokenBlocks
from tests.redisserver import RedisServer, delete_prefixed, fresh_prefix, own_redis, shared_redis

#: 100 hits in any 2 s: a block of at most 100 // (4 * 2) = 12 for two replicas, a 0.5 s lease.
BUSY = Limit(rate=50, burst=100)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    url, prefix = shared_redis(), fresh_prefix()
    yield url, prefix
    delete_prefixed(url, prefix)


@pytest.fixture
def server() -> Iterator[RedisServer]:
    yield from own_redis()


def evalshas(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


def warmed(limiter: SharedRateLimiter, clock: Clock, key: str, per_second: float) -> None:
    """``key``'s recent rate in ``limiter`` made ``per_second`` (its blocks then follow it),
    without a Redis call."""
    for _ in range(int(per_second * 4)):
        clock.now += 1 / per_second
        limiter.blocks.spend(ratelimit.API_KEY, key)


# -- sizing, without Redis ---------------------------------------------------------------------


def test_a_quiet_key_gets_single_hits_and_a_busy_one_blocks_up_to_the_cap() -> None:
    clock = Clock()
    items = {ratelimit.API_KEY: moving_window(BUSY)}
    blocks = TokenBlocks(items, replicas=2, clock=clock, wall=lambda: 5000.0)
    # One request a second: a lease (0.5 s) sees less than two, so no block.
    for _ in range(10):
        clock.now += 1.0
        assert not blocks.spend(ratelimit.API_KEY, "key:quiet")
        assert blocks.wanted(ratelimit.API_KEY, "key:quiet") is None
    # 10 a second: 5 a lease.
    for _ in range(200):
        clock.now += 0.1
        blocks.spend(ratelimit.API_KEY, "key:ten")
    block = blocks.wanted(ratelimit.API_KEY, "key:ten")
    assert block is not None and block.size == 5
    # The stamp is the lease's end on the wall clock; the spare keeps the window half free.
    assert (block.stamp, block.until, block.spare) == (5000.5, clock.now + 0.5, 50)
    # 1,000 a second: capped at a quarter of the window over both replicas.
    for _ in range(2000):
        clock.now += 0.001
        blocks.spend(ratelimit.API_KEY, "key:busy")
    block = blocks.wanted(ratelimit.API_KEY, "key:busy")
    assert block is not None and block.size == 100 // (4 * 2)


def test_a_blocks_leftovers_are_spent_only_within_its_lease() -> None:
    clock = Clock()
    blocks = TokenBlocks({ratelimit.API_KEY: moving_window(BUSY)}, replicas=2, clock=clock)
    for _ in range(100):
        clock.now += 0.01
        blocks.spend(ratelimit.API_KEY, "key:1")
    block = blocks.wanted(ratelimit.API_KEY, "key:1")
    assert block is not None
    blocks.keep(ratelimit.API_KEY, "key:1", 3, block)
    assert blocks.held(ratelimit.API_KEY, "key:1") == 3
    clock.now += 0.2
    assert blocks.spend(ratelimit.API_KEY, "key:1")
    assert blocks.held(ratelimit.API_KEY, "key:1") == 2
    clock.now = block.until  # the lease is over: the two left are never spent
    assert blocks.held(ratelimit.API_KEY, "key:1") == 0
    assert not blocks.spend(ratelimit.API_KEY, "key:1")
    clock.now -= 0.1  # (nor after a clock read that goes back: they were dropped)
    assert not blocks.spend(ratelimit.API_KEY, "key:1")


# -- the script's blocks -----------------------------------------------------------------------


def test_a_blocks_hits_stay_in_the_window_until_expiry_after_its_lease(
    redis_url: tuple[str, str],
) -> None:
    """Known answers: 10 in any 10 s; a block of 4 at t=100 with a lease to 102."""
    url, prefix = redis_url
    client = redis.Redis.from_url(url)
    script = client.register_script(windowscript.SCRIPT)
    table = windowscript.windows({"w": RateLimitItemPerSecond(10, 10)}, prefix)
    flags = windowscript.flag_keys(prefix)

    def at(now: float, block: windowscript.Block | None = None) -> tuple[bool, int]:
        keys, args = windowscript.arguments(
            [Check("w", "k")], table, flags, now=now, flag_now=now, max_flags=10, block=block
        )
        answer = script(keys=keys, args=args)
        refusal, _ = windowscript.outcome(answer)
        return refusal is None, windowscript.granted(answer)

    try:
        assert at(100.0, windowscript.Block(size=4, spare=0, stamp=102.0)) == (True, 4)
        # Later single hits are stamped no earlier than the list's newest: it stays ordered.
        for _ in range(6):
            assert at(100.5) == (True, 1)
        assert at(100.5) == (False, 0)
        window = f"{prefix}:LIMITER/w/k/10/10/second"
        assert [float(v) for v in client.lrange(window, 0, -1)] == [102.0] * 10
        # The key lives until its newest hit leaves the window.
        assert client.ttl(window) >= 11
        # 11 s after the block was taken its hits are still in (they admitted requests up to
        # 102): a stamp at the take would have let this one in, an 11th in 10 s.
        assert at(111.0) == (False, 0)
        assert at(112.5) == (True, 1)
        # A block is taken whole only while the window keeps ``spare`` free after it: with
        # 1 in the window, 4 more leave 5 free, not 6 (one taken), then 2 + 4 leave 4.
        assert at(112.5, windowscript.Block(size=4, spare=6, stamp=113.0)) == (True, 1)
        assert at(112.5, windowscript.Block(size=4, spare=4, stamp=113.0)) == (True, 4)
    finally:
        client.close()


# -- two limiters, one Redis -------------------------------------------------------------------


@pytest.mark.slow
def test_two_replicas_taking_blocks_admit_at_most_the_window_in_any_window(
    server: RedisServer,
) -> None:
    """Two limiters (replicas) hammering one key as fast as they can for 5 s: no span of the
    window's length has more admissions than its amount, fewer round trips than requests,
    and the key still gets most of its rate."""
    limits = RateLimits(api_key=BUSY)
    replicas = [SharedRateLimiter(limits, server.url, prefix="t", replicas=2) for _ in range(2)]
    before = evalshas(server.url)
    admitted: list[tuple[float, float]] = []
    asked = 0
    started = time.monotonic()
    while time.monotonic() - started < 5.0:
        for limiter in replicas:
            sent = time.monotonic()
            asked += 1
            try:
                limiter.check(ratelimit.API_KEY, "key:busy")
            except RateLimited:
                continue
            admitted.append((sent, time.monotonic()))
        time.sleep(0.002)  # ~200 requests a second each: four times the limit together
    span = time.monotonic() - started
    trips = evalshas(server.url) - before
    for limiter in replicas:
        limiter.close()
    window = BUSY.burst / BUSY.rate
    most = 0
    for i, (first_sent, _) in enumerate(admitted):
        inside = sum(1 for _, done in admitted[i:] if done < first_sent + window)
        most = max(most, inside)
    numbers = {"asked": asked, "admitted": len(admitted), "trips": trips, "span": span}
    assert most <= BUSY.burst, (most, numbers)
    assert len(admitted) <= BUSY.rate * span + BUSY.burst, numbers
    assert trips < asked, numbers
    # Under-admission is bounded: the windows of 5 s give back at least two full windows.
    assert len(admitted) >= 2 * BUSY.burst, numbers


def test_a_busy_key_is_one_round_trip_a_block(server: RedisServer) -> None:
    clock = Clock()
    limits = RateLimits(api_key=BUSY)
    limiter = SharedRateLimiter(limits, server.url, prefix="t", replicas=2, monotonic=clock)
    try:
        warmed(limiter, clock, "key:1", per_second=40)  # 20 a lease: a block of the cap, 12
        limiter.check(ratelimit.API_KEY, "key:other")  # (the script loaded: one EVALSHA later)
        before = evalshas(server.url)
        for _ in range(12):
            limiter.check(ratelimit.API_KEY, "key:1")
        assert evalshas(server.url) - before == 1
        # The 13th asks again; past the lease, the one left is not spent.
        limiter.check(ratelimit.API_KEY, "key:1")
        assert evalshas(server.url) - before == 2
        clock.now += 1.0
        assert limiter.blocks.held(ratelimit.API_KEY, "key:1") == 0
        limiter.check(ratelimit.API_KEY, "key:1")
        assert evalshas(server.url) - before == 3
        # A code's budget is exact whatever the rate: one hit, one round trip, each time.
        for n in range(5):
            limiter.check(ratelimit.FINGERPRINT, "ab" * 32)
            assert evalshas(server.url) - before == 4 + n
    finally:
        limiter.close()
    # Without blocks, the same busy key is one round trip a request.
    exact = SharedRateLimiter(
        limits, server.url, prefix="u", replicas=2, monotonic=clock, blocks=False
    )
    try:
        exact.check(ratelimit.API_KEY, "key:other")
        before = evalshas(server.url)
        for _ in range(60):  # 40 a second on the lease's clock, as above
            clock.now += 1 / 40
            exact.check(ratelimit.API_KEY, "key:1")
        assert evalshas(server.url) - before == 60
    finally:
        exact.close()


@pytest.mark.slow
def test_with_redis_stopped_a_blocks_leftovers_then_the_local_share(
    server: RedisServer,
) -> None:
    clock = Clock()
    limits = RateLimits(api_key=Limit(rate=50, burst=100))
    limiter = SharedRateLimiter(limits, server.url, prefix="t", replicas=2, monotonic=clock)
    try:
        warmed(limiter, clock, "key:1", per_second=40)
        limiter.check(ratelimit.API_KEY, "key:1")
        left = limiter.blocks.held(ratelimit.API_KEY, "key:1")
        assert left == 11
        server.stop()
        admitted = 0
        for _ in range(200):
            try:
                limiter.check(ratelimit.API_KEY, "key:1")
            except RateLimited:
                break
            admitted += 1
        # The block's 11 (recorded in Redis before it went), then the local share's burst.
        assert admitted == left + limits.api_key.burst // 2
        assert not limiter.shared
        # The anonymous tier fails closed, blocks or not.
        with pytest.raises(ratelimit.RateLimitUnavailable):
            limiter.check(ratelimit.ANONYMOUS, "ip:192.0.2.1")
    finally:
        limiter.close()
