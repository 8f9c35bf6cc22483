"""Rate limits (THREATS 38): token buckets with an injected clock: burst, refill, the
Retry-After value, independence of keys and limits, the memory bound, the probing flag, and
429 + Retry-After over HTTP."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors as api_errors
from api import ratelimit
from api.ratelimit import Limit, RateLimited, RateLimiter, RateLimits


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(clock: FakeClock, **limits: Limit | int) -> RateLimiter:
    return RateLimiter(RateLimits(**limits), clock=clock)  # type: ignore[arg-type]


def refusal(limiter: RateLimiter, bucket: str, key: str) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        limiter.check(bucket, key)
    return refused.value


def test_burst_then_refill() -> None:
    clock = FakeClock()
    limits = limiter(clock, api_key=Limit(rate=2, burst=4))
    for _ in range(4):
        limits.check("api_key", "key:1")
    refused = refusal(limits, "api_key", "key:1")
    assert refused.retry_after == 1 and refused.bucket == "api_key"
    assert "api_key" in refused.detail
    clock.advance(0.25)  # half a token
    refusal(limits, "api_key", "key:1")
    clock.advance(0.25)
    limits.check("api_key", "key:1")
    refusal(limits, "api_key", "key:1")
    # An idle while refills up to the burst, never beyond.
    clock.advance(3600)
    for _ in range(4):
        limits.check("api_key", "key:1")
    refusal(limits, "api_key", "key:1")


def test_retry_after_is_the_real_wait_rounded_up() -> None:
    clock = FakeClock()
    limits = limiter(clock, code_lookup=Limit.per_minute(10))  # a token every 6 s
    for _ in range(10):
        limits.check("code_lookup", "ip:1.2.3.4")
    assert refusal(limits, "code_lookup", "ip:1.2.3.4").retry_after == 6
    clock.advance(1.5)
    assert refusal(limits, "code_lookup", "ip:1.2.3.4").retry_after == 5  # 4.5 s, rounded up
    clock.advance(4.5)
    limits.check("code_lookup", "ip:1.2.3.4")
    # A cost above one token waits for all of it.
    bulk = limiter(clock, api_key=Limit(rate=1, burst=10))
    bulk.check("api_key", "k", cost=10)
    with pytest.raises(RateLimited) as refused:
        bulk.check("api_key", "k", cost=3)
    assert refused.value.retry_after == 3


def test_keys_and_limits_are_independent() -> None:
    clock = FakeClock()
    limits = limiter(clock, anonymous=Limit(1, 1), fingerprint=Limit(1, 1))
    limits.check("anonymous", "ip:a")
    limits.check("anonymous", "ip:b")
    limits.check("fingerprint", "ip:a")
    refusal(limits, "anonymous", "ip:a")
    with pytest.raises(ValueError):
        limits.check("no-such-limit", "x")


def test_peek_takes_nothing() -> None:
    clock = FakeClock()
    limits = limiter(clock, api_key=Limit(1, 2))
    for _ in range(5):
        limits.peek("api_key", "k")
    # A look at a key never seen makes no bucket (it would be a full one).
    assert len(limits) == 0
    limits.check("api_key", "k")
    limits.check("api_key", "k")
    with pytest.raises(RateLimited):
        limits.peek("api_key", "k")
    # The probe budget is looked at before every code lookup: no bucket until one fails.
    limits.ensure_probe_budget("key:1")
    assert len(limits) == 1


def test_a_clock_that_steps_back_refills_nothing() -> None:
    clock = FakeClock()
    limits = limiter(clock, api_key=Limit(1, 1))
    limits.check("api_key", "k")
    clock.advance(-100)
    refusal(limits, "api_key", "k")
    clock.advance(100.5)  # half a second after the first check: half a token
    refusal(limits, "api_key", "k")


def test_memory_is_bounded_and_idle_buckets_go() -> None:
    clock = FakeClock()
    limits = limiter(clock, anonymous=Limit(1, 5), max_buckets=100)
    for i in range(10_000):
        limits.check("anonymous", f"ip:{i}")
    assert len(limits) == 100
    # The evicted were the least recently used; the recent ones keep their state.
    for _ in range(4):
        limits.check("anonymous", "ip:9999")
    refusal(limits, "anonymous", "ip:9999")
    # Buckets full again are worth nothing: they are dropped as checks go by.
    clock.advance(10)
    for i in range(60):
        limits.check("anonymous", f"new:{i}")
    assert len(limits) < 100


def test_failed_probes_flag_the_key() -> None:
    clock = FakeClock()
    limits = limiter(clock, probe=Limit.per_minute(3))
    key = "key:7"
    for _ in range(3):
        limits.ensure_probe_budget(key)
        limits.record_probe_failure(key)
    assert limits.flags() == []  # at the limit, not over it
    with pytest.raises(RateLimited) as refused:
        limits.ensure_probe_budget(key)
    assert refused.value.bucket == "probe" and refused.value.retry_after == 20
    [flag] = limits.flags()
    assert (flag.key, flag.first_at, flag.failed_probes, flag.refused) == (key, clock(), 0, 1)
    clock.advance(5)
    with pytest.raises(RateLimited):
        limits.record_probe_failure(key)  # a racing lookup that failed too
    [flag] = limits.flags()
    assert (flag.failed_probes, flag.refused, flag.last_at) == (1, 2, clock())
    # Other keys are untouched; successful lookups spend nothing.
    for _ in range(10):
        limits.ensure_probe_budget("key:8")
    # Once refilled the key may look up again, and its failures are still counted.
    clock.advance(20)
    limits.ensure_probe_budget(key)
    limits.record_probe_failure(key)
    assert limits.flags()[0].failed_probes == 2


def test_flags_are_bounded() -> None:
    clock = FakeClock()
    limits = limiter(clock, probe=Limit(1, 1), max_flags=5)
    for i in range(20):
        limits.record_probe_failure(f"ip:{i}")
        with pytest.raises(RateLimited):
            limits.record_probe_failure(f"ip:{i}")
    assert [f.key for f in limits.flags()] == [f"ip:{i}" for i in range(15, 20)]


def test_thread_safe_exact_count() -> None:
    clock = FakeClock()
    limits = limiter(clock, api_key=Limit(rate=1e-9, burst=5_000))
    allowed = 0
    lock = threading.Lock()

    def hammer() -> None:
        nonlocal allowed
        mine = 0
        for _ in range(1_000):
            try:
                limits.check("api_key", "shared")
                mine += 1
            except RateLimited:
                pass
        with lock:
            allowed += mine

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed == 5_000


def test_defaults_and_validation() -> None:
    defaults = RateLimits()
    assert defaults.api_key == Limit(100, 200)
    assert defaults.anonymous == Limit(5, 10)
    assert defaults.code_lookup == Limit(10 / 60, 10)
    assert defaults.code_lookup_all == Limit(10, 600)
    assert defaults.fingerprint == Limit(1, 60)
    assert defaults.probe == Limit(20 / 60, 20)
    assert defaults.health == Limit(20, 40)
    assert defaults.auditor.rate > defaults.api_key.rate
    assert set(defaults.named()) == {
        ratelimit.API_KEY,
        ratelimit.AUDITOR,
        ratelimit.CREATOR,
        ratelimit.ANONYMOUS,
        ratelimit.SIGNED_WRITE,
        ratelimit.CODE_LOOKUP,
        ratelimit.CODE_LOOKUP_ALL,
        ratelimit.FINGERPRINT,
        ratelimit.PROBE,
        ratelimit.HEALTH,
    }
    for bad in [(0, 1), (1, 0), (-1, 5)]:
        with pytest.raises(ValueError):
            Limit(*bad)
    with pytest.raises(ValueError):
        RateLimits(max_buckets=0)


def test_429_with_retry_after_over_http() -> None:
    clock = FakeClock()
    limits = limiter(clock, code_lookup=Limit.per_minute(10))
    app = FastAPI()
    api_errors.install(app)

    @app.get("/lookup")
    def lookup() -> str:
        limits.check("code_lookup", "ip:testclient")
        return "ok"

    with TestClient(app) as client:
        assert [client.get("/lookup").status_code for _ in range(10)] == [200] * 10
        refused = client.get("/lookup")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "6"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/rate-limited")
        clock.advance(6)
        assert client.get("/lookup").status_code == 200
