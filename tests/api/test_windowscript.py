"""A request's limit checks in one Redis round trip (``api.windowscript``, issue 16): the
script over ``limits``' moving windows against ``limits`` itself (both read and take the same
windows), against a model of a moving window (Hypothesis), in order with the first refusal
stopping the rest, and a keyed code lookup's checks counted in Redis's own statistics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from api import ratelimit, windowscript
from api.ratelimit import Check, Limit, RateLimited, RateLimits
from api.sharedlimits import SharedRateLimiter, moving_window
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_sharedlimits import replica
from tests.redisserver import RedisServer, delete_prefixed, fresh_prefix, own_redis, shared_redis


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    url, prefix = shared_redis(), fresh_prefix()
    yield url, prefix
    delete_prefixed(url, prefix)


def test_limits_and_the_script_take_and_read_the_same_windows(
    redis_url: tuple[str, str],
) -> None:
    url, prefix = redis_url
    limits = RateLimits(api_key=Limit(rate=0.05, burst=5))  # 5 in any 100 s
    ours = SharedRateLimiter(limits, url, prefix=prefix)
    theirs = MovingWindowRateLimiter(RedisStorage(url, key_prefix=prefix))
    item = moving_window(limits.api_key)
    try:
        for _ in range(3):
            ours.check(ratelimit.API_KEY, "key:1")
        assert theirs.get_window_stats(item, ratelimit.API_KEY, "key:1").remaining == 2
        assert theirs.hit(item, ratelimit.API_KEY, "key:1", cost=2)
        assert not theirs.test(item, ratelimit.API_KEY, "key:1")
        with pytest.raises(RateLimited) as refused:
            ours.check(ratelimit.API_KEY, "key:1")
        # The wait is limits' own: its window's oldest hit comes back at ``reset``.
        reset = theirs.get_window_stats(item, ratelimit.API_KEY, "key:1").reset_time
        assert refused.value.retry_after == max(1, int(reset - time.time() + 0.999))
        # A look (peek) takes nothing, a refused check took nothing: still exactly 5 there.
        with pytest.raises(RateLimited):
            ours.peek(ratelimit.API_KEY, "key:1")
        assert theirs.get_window_stats(item, ratelimit.API_KEY, "key:1").remaining == 0
        client = redis.Redis.from_url(url)
        assert client.llen(f"{prefix}:{item.key_for(ratelimit.API_KEY, 'key:1')}") == 5
        client.close()
    finally:
        ours.close()


def test_checks_go_in_order_and_the_first_refusal_stops_the_rest(
    redis_url: tuple[str, str],
) -> None:
    url, prefix = redis_url
    limits = RateLimits(
        api_key=Limit(rate=0.01, burst=3), fingerprint=Limit(rate=0.01, burst=1), max_flags=10
    )
    limiter = SharedRateLimiter(limits, url, prefix=prefix)
    theirs = MovingWindowRateLimiter(RedisStorage(url, key_prefix=prefix))

    def left(bucket: str, key: str) -> int:
        item = moving_window(limits.named()[bucket])
        return theirs.get_window_stats(item, bucket, key).remaining

    try:
        request = [
            Check(ratelimit.API_KEY, "key:1"),
            ratelimit.probe_budget("key:1"),
            Check(ratelimit.FINGERPRINT, "ab"),
        ]
        limiter.check_all(request)
        assert (left(ratelimit.API_KEY, "key:1"), left(ratelimit.FINGERPRINT, "ab")) == (2, 0)
        assert left(ratelimit.PROBE, "key:1") == limits.probe.burst  # a look takes nothing
        with pytest.raises(RateLimited) as refused:
            limiter.check_all(request)
        assert refused.value.bucket == ratelimit.FINGERPRINT
        # What came before the refusal was taken, as one check after another would.
        assert left(ratelimit.API_KEY, "key:1") == 1
        # The first refusal stops the rest: the fingerprint after the key's limit is not asked.
        limiter.check(ratelimit.API_KEY, "key:1")
        with pytest.raises(RateLimited) as refused:
            limiter.check_all([*request[:2], Check(ratelimit.FINGERPRINT, "cd")])
        assert refused.value.bucket == ratelimit.API_KEY
        assert left(ratelimit.FINGERPRINT, "cd") == 1
        assert limiter.flags() == []  # no probe was refused
    finally:
        limiter.close()


def test_a_refused_probe_budget_is_flagged_once_and_counted_on_after(
    redis_url: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    url, prefix = redis_url
    limits = RateLimits(probe=Limit(rate=0.02, burst=2))  # 2 in any 100 s
    a, b = (SharedRateLimiter(limits, url, prefix=prefix) for _ in range(2))
    try:
        a.record_probe_failure("ip:1")
        a.ensure_probe_budget("ip:1")  # one left: passes, no flag
        assert a.flags() == []
        b.record_probe_failure("ip:1")  # the last one: passes, not flagged
        with pytest.raises(RateLimited):
            asyncio.run(a.aensure_probe_budget("ip:1"))  # spent: refused and flagged
        with pytest.raises(RateLimited):
            b.record_probe_failure("ip:1")  # counted on the flag
        (flag,) = a.flags()
        assert (flag.key, flag.failed_probes, flag.refused) == ("ip:1", 1, 2)
        assert sum("probing: ip:1" in r.getMessage() for r in caplog.records) == 1
    finally:
        a.close()
        b.close()


# -- against a model of a moving window ----------------------------------------------------------

AMOUNT, EXPIRY = 3, 10


def model(hits: list[float], now: float, cost: int, consume: bool) -> float | None:
    """A moving window of AMOUNT in EXPIRY seconds, by definition: the hits in the window
    plus cost must fit; the wait is until enough of them left it."""
    inside = sorted((t for t in hits if t >= now - EXPIRY), reverse=True)
    if cost > AMOUNT:
        return -1.0
    if len(inside) + cost > AMOUNT:
        return inside[AMOUNT - cost] + EXPIRY - now
    if consume:
        hits.extend([now] * cost)
    return None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=6.0),  # seconds since the previous step
            st.integers(min_value=1, max_value=4),  # cost
            st.booleans(),  # consume
        ),
        min_size=1,
        max_size=25,
    )
)
def test_the_script_is_a_moving_window(steps: list[tuple[float, int, bool]]) -> None:
    url, prefix = shared_redis(), fresh_prefix()
    client = redis.Redis.from_url(url)
    script = client.register_script(windowscript.SCRIPT)
    items = {"w": RateLimitItemPerSecond(AMOUNT, EXPIRY)}
    try:
        now, hits = 1_000_000.0, []
        for gap, cost, consume in steps:
            now += round(gap, 3)
            keys, args = windowscript.arguments(
                [Check("w", "k", cost, consume=consume)],
                windowscript.windows(items, prefix),
                windowscript.flag_keys(prefix),
                now=now,
                flag_now=now,
                max_flags=10,
            )
            refusal, _ = windowscript.outcome(script(keys=keys, args=args))
            expected = model(hits, now, cost, consume)
            if expected is None:
                assert refusal is None
            else:
                assert refusal is not None
                if expected < 0:
                    assert refusal.wait == float("inf")
                else:
                    assert refusal.wait == pytest.approx(max(expected, 1e-3), abs=1e-6)
    finally:
        delete_prefixed(url, prefix)
        client.close()


def test_a_hit_is_in_the_window_until_expiry_seconds_have_passed_inclusive() -> None:
    """Known answers at the window's edge (``limits``: an entry at ``now - expiry`` is in)."""
    url, prefix = shared_redis(), fresh_prefix()
    client = redis.Redis.from_url(url)
    script = client.register_script(windowscript.SCRIPT)
    items = {"w": RateLimitItemPerSecond(1, EXPIRY)}

    def at(now: float) -> windowscript.Refusal | None:
        keys, args = windowscript.arguments(
            [Check("w", "k")],
            windowscript.windows(items, prefix),
            windowscript.flag_keys(prefix),
            now=now,
            flag_now=now,
            max_flags=10,
        )
        return windowscript.outcome(script(keys=keys, args=args))[0]

    try:
        assert at(100.0) is None
        assert at(104.5) == windowscript.Refusal(0, 5.5)
        assert at(110.0) == windowscript.Refusal(0, 1e-3)  # exactly expiry later: still in
        assert at(110.25) is None
    finally:
        delete_prefixed(url, prefix)
        client.close()


# -- one round trip a request ---------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[RedisServer]:
    yield from own_redis()


def scripts_run(server: RedisServer) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        stats = client.info("commandstats")
        return sum(
            int(v["calls"])
            for k, v in stats.items()
            if k in ("cmdstat_evalsha", "cmdstat_eval")  # type: ignore[union-attr]
        )
    finally:
        client.close()


@pytest.mark.slow
def test_a_keyed_lookup_is_one_script_and_a_failed_probe_one_more(
    registry: Registry, code_good: CodeGood, make_key: KeyFactory, server: RedisServer
) -> None:
    """A platform's code lookup: the key's request charge, the probe budget and the code's
    limit in one round trip (there were three); by fingerprint the charge alone; a failed
    probe one more."""
    key = bearer(make_key("cardhub", "verify"))
    by_code = {"good_type": "code", "code": code_good.code, "creator": code_good.creator.address}
    by_fingerprint = {"good_type": "code", "fingerprint": code_good.hex}
    with TestClient(replica(registry, server.url, fresh_prefix(), replicas=1)) as client:
        assert client.post("/v1/verify", json=by_code, headers=key).status_code == 200
        for body in (by_code, by_fingerprint):
            before = scripts_run(server)
            answer = client.post("/v1/verify", json=body, headers=key)
            assert answer.status_code == 200 and answer.json()["verdict"] != "unknown"
            assert scripts_run(server) - before == 1
        before = scripts_run(server)
        unknown = {**by_code, "code": "NOPE-NOPE-NOPE-NOPE"}
        answer = client.post("/v1/verify", json=unknown, headers=key)
        assert answer.json()["verdict"] == "unknown"
        assert scripts_run(server) - before == 2


@pytest.mark.parametrize(
    ("scopes", "body"),
    [
        ("transfer", {"good_type": "code", "code": "AAAA-BBBB", "creator": "0x" + "11" * 20}),
        ("verify", {"good_type": "file", "code": "AAAA-BBBB", "creator": "0x" + "11" * 20}),
        ("verify", {"good_type": "code", "code": "AAAA-BBBB"}),
    ],
    ids=["no-verify-scope", "not-a-code-type", "no-creator"],
)
def test_a_code_lookup_that_fails_early_is_still_charged(
    registry: Registry,
    make_key: KeyFactory,
    redis_url: tuple[str, str],
    scopes: str,
    body: dict[str, str],
) -> None:
    """The charge a code lookup leaves to its handler is made when the handler refuses the
    request before its budgets: the key's limit (10) still turns the errors into 429s."""
    url, prefix = redis_url
    key = bearer(make_key("cardhub", scopes))
    with TestClient(replica(registry, url, prefix, replicas=1)) as client:
        answers = [client.post("/v1/verify", json=body, headers=key) for _ in range(12)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[10:] == [429, 429] and 429 not in statuses[:10], statuses
