"""Health checks have a budget of their own (issue 16): a load balancer's credential-less
``/livez`` and ``/readyz`` are charged to ``health``, counted in each replica only, never to
the ``anonymous`` budget its address shares across replicas (which the checks of two
replicas every 300 ms used to exhaust, and HAProxy then took both out). The real app, on
one process's buckets and on the shared Redis (a fresh prefix, its keys deleted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import Limit, RateLimits
from api.settings import load_api_settings
from api.sharedfallback import LOCAL_ONLY, local_share
from registry.service import Registry
from tests.api.conftest import SIWE_DOMAIN
from tests.redisserver import delete_prefixed, fresh_prefix, shared_redis

#: Budgets that do not refill while a test runs: what is counted is exactly what was sent.
ANONYMOUS = Limit(rate=0.001, burst=3)
HEALTH = Limit(rate=0.001, burst=50)
LIMITS = RateLimits(anonymous=ANONYMOUS, health=HEALTH)
#: A public read that anyone may make: charged to the anonymous budget.
PUBLIC = "/v1/log/head"


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    url, prefix = shared_redis(), fresh_prefix()
    yield url, prefix
    delete_prefixed(url, prefix)


def app_of(registry: Registry, storage: str = "memory://", prefix: str = "t") -> FastAPI:
    settings = load_api_settings(
        rate_limit_storage=storage, rate_limit_prefix=prefix, rate_limit_replicas=2
    )
    return create_app(
        registry,
        limits=LIMITS,
        siwe_domain=SIWE_DOMAIN,
        telemetry_interval=0.05,
        api_settings=settings,
    )


def probes(client: TestClient, count: int) -> list[int]:
    """``count`` health checks, alternately ``/livez`` and ``/readyz``: their statuses."""
    return [client.get(("/livez", "/readyz")[i % 2]).status_code for i in range(count)]


def public_reads(client: TestClient, count: int) -> list[int]:
    return [client.get(PUBLIC).status_code for _ in range(count)]


def test_health_checks_spend_their_own_budget_not_the_anonymous_one(registry: Registry) -> None:
    with TestClient(app_of(registry)) as client:
        # Ten times the anonymous burst of checks: all answered.
        assert probes(client, 10 * ANONYMOUS.burst) == [200] * (10 * ANONYMOUS.burst)
        # The address's anonymous budget is whole: its full burst, then 429.
        statuses = public_reads(client, ANONYMOUS.burst + 1)
        assert 429 not in statuses[:-1] and statuses[-1] == 429, statuses
        # And the anonymous budget spent does not refuse a health check.
        assert probes(client, 2) == [200, 200]
        # The health budget is bounded too: past its burst, 429 naming it.
        spent = 10 * ANONYMOUS.burst + 2
        assert probes(client, HEALTH.burst - spent) == [200] * (HEALTH.burst - spent)
        refused = client.get("/readyz")
        assert refused.status_code == 429
        assert "'health'" in refused.json()["detail"]


def test_a_platform_key_on_a_health_route_is_charged_as_before(registry: Registry) -> None:
    """Only credential-less probes move to ``health``: a bad credential is charged to the
    address's anonymous budget (a flood of bad keys still turns into 429s)."""
    with TestClient(app_of(registry)) as client:
        bad = {"Authorization": "Bearer tm_live_nope"}
        statuses = [client.get("/livez", headers=bad).status_code for _ in range(4)]
        assert statuses == [401] * ANONYMOUS.burst + [429], statuses


def test_with_shared_limits_each_replica_counts_its_own_checks_whole_and_nothing_in_redis(
    registry: Registry, redis_url: tuple[str, str]
) -> None:
    url, prefix = redis_url
    a, b = app_of(registry, url, prefix), app_of(registry, url, prefix)
    assert local_share(LIMITS, 2).health == HEALTH
    assert frozenset({"health"}) == LOCAL_ONLY
    with TestClient(a) as on_a, TestClient(b) as on_b:
        # 30 each: more than a share of 25, and 60 together, more than one budget of 50.
        assert probes(on_a, 30) == [200] * 30
        assert probes(on_b, 30) == [200] * 30
        client = redis.Redis.from_url(url)
        try:
            keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*")]
        finally:
            client.close()
        assert not [k for k in keys if "health" in k or "anonymous" in k], keys
        # The address's anonymous budget, shared by both, is whole.
        statuses = public_reads(on_a, 2) + public_reads(on_b, 2)
        assert 429 not in statuses[:-1] and statuses[-1] == 429, statuses
        assert probes(on_a, 2) + probes(on_b, 2) == [200] * 4
