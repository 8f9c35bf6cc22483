"""A rate-limit check in Redis (``api.sharedlimits``) against the one-process token bucket
(``api.ratelimit``) and against a bare Redis round trip, in the same run.

Run: ``.venv/bin/python -m bench.ratelimit_bench [--redis URL] [--calls N] [--rounds R]``.
Prints a table and writes ``bench/results/ratelimit.json``. Each round, interleaved: ``calls``
checks of the ``api_key`` limit over 100 keys (as ``bench.verify_bench``'s platforms) on
each limiter, and as many ``PING``s on a redis-py client (the floor of any shared check: one
loopback round trip). Also a keyed code lookup's three checks (the key's limit, its probe
budget, the code's fingerprint), one by one and in one script (``check_all``: what
``api.routes.verify`` makes now), and a refused check. Keys go under a fresh prefix, deleted
afterwards.

Then the event loop's view (issue 16: the checks used to block it): ``CONCURRENCY`` callers on
one asyncio loop make the same checks, either called on the loop (as before: each round trip
holds the loop) or through ``RateLimiter.run`` (the shared limiter's thread pool; a keyed
code lookup's three checks in one hop, as ``api.routes.verify`` does); a ticker task
meanwhile sleeps 1 ms at a time, and each of its turns' lateness is how long the loop was
held (the median and the 99th percentile). Also the callers' throughput (checks a second).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import Callable

import redis

from api import ratelimit
from api.ratelimit import Check, RateLimited, RateLimiter, RateLimits
from api.sharedlimits import SharedRateLimiter
from bench.common import save

KEYS = [f"key:{n}" for n in range(100)]
#: Callers at once on one event loop (requests in flight in one replica).
CONCURRENCY = 8
#: The ticker's sleep: its lateness past this is the loop's stall.
TICK = 0.001


def on_loop(
    limiter: RateLimiter, work: Callable[[int], object], calls: int, *, hop: bool
) -> tuple[float, float, float]:
    """``calls`` of ``work`` by ``CONCURRENCY`` callers on one asyncio loop, each through
    ``limiter.run`` (``hop``) or called on the loop: seconds a call, and the ticker's median
    and 99th-percentile lateness (seconds the loop was held)."""

    async def scenario() -> tuple[float, list[float]]:
        late: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                asked = time.perf_counter()
                await asyncio.sleep(TICK)
                late.append(time.perf_counter() - asked - TICK)

        async def caller(first: int) -> None:
            for n in range(first, calls, CONCURRENCY):
                if hop:
                    await limiter.run(lambda n=n: work(n))  # type: ignore[misc]
                else:
                    work(n)
                    await asyncio.sleep(0)  # a request's other awaits

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(TICK * 3)
        started = time.perf_counter()
        await asyncio.gather(*(caller(first) for first in range(CONCURRENCY)))
        wall = time.perf_counter() - started
        done.set()
        await ticking
        return wall / calls, late

    wall, late = asyncio.run(scenario())
    late.sort()
    return wall, statistics.median(late), late[int(len(late) * 0.99)]


def per_call(run: Callable[[int], object], calls: int) -> tuple[float, float]:
    """Seconds a call: wall time (what a synchronous check holds the event loop for) and
    this process's CPU time."""
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(calls):
        run(n)
    return (time.perf_counter() - started) / calls, (time.process_time() - cpu) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--loop-rounds", type=int, default=5)
    args = parser.parse_args()

    prefix = f"bench-{secrets.token_hex(4)}"
    limits = RateLimits()
    memory = RateLimiter(limits)
    shared = SharedRateLimiter(limits, args.redis, prefix=prefix)
    client = redis.Redis.from_url(args.redis)
    fingerprints = [secrets.token_hex(32) for _ in range(args.calls)]

    def lookup(limiter: RateLimiter) -> Callable[[int], None]:
        def run(n: int) -> None:
            key = KEYS[n % len(KEYS)]
            limiter.check(ratelimit.API_KEY, key)
            limiter.ensure_probe_budget(key)
            limiter.check(ratelimit.FINGERPRINT, fingerprints[n])

        return run

    def one_script(limiter: RateLimiter) -> Callable[[int], None]:
        # The same three checks as ``lookup``, as ``api.routes.verify`` makes them now: one
        # ``check_all``, one round trip (``api.windowscript``).
        def run(n: int) -> None:
            key = KEYS[n % len(KEYS)]
            limiter.check_all(
                [
                    Check(ratelimit.API_KEY, key),
                    ratelimit.probe_budget(key),
                    Check(ratelimit.FINGERPRINT, fingerprints[n]),
                ]
            )

        return run

    def refused(limiter: RateLimiter) -> Callable[[int], None]:
        def run(_: int) -> None:
            with contextlib.suppress(RateLimited):
                limiter.check(ratelimit.CODE_LOOKUP, "ip:192.0.2.1")

        return run

    runs: dict[str, Callable[[int], object]] = {
        "memory_check": lambda n: memory.check(ratelimit.API_KEY, KEYS[n % len(KEYS)]),
        "redis_check": lambda n: shared.check(ratelimit.API_KEY, KEYS[n % len(KEYS)]),
        "redis_ping": lambda _: client.ping(),
        "memory_lookup": lookup(memory),
        "redis_lookup": lookup(shared),
        "redis_lookup_one_script": one_script(shared),
        "memory_refused": refused(memory),
        "redis_refused": refused(shared),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    loop_runs: dict[str, tuple[RateLimiter, Callable[[int], object], bool]] = {
        "memory_check_run": (memory, runs["memory_check"], True),
        "redis_check_on_loop": (shared, runs["redis_check"], False),
        "redis_check_run": (shared, runs["redis_check"], True),
        "redis_lookup_on_loop": (shared, runs["redis_lookup"], False),
        "redis_lookup_run": (shared, runs["redis_lookup"], True),
    }
    loop: dict[str, dict[str, list[float]]] = {
        name: {"us_per_call": [], "stall_p50_us": [], "stall_p99_us": []} for name in loop_runs
    }
    try:
        for run in runs.values():  # warm: connections, scripts loaded, buckets made
            per_call(run, 50)
        # A round takes each key 2 x calls/100 times: well inside its 200 in any 2 s, so
        # every check but the refused ones is accepted, as an honest platform's are.
        for _ in range(args.rounds):
            for name, run in runs.items():
                wall, used = per_call(run, args.calls)
                samples[name].append(wall)
                cpu[name].append(used)
        for limiter, work, hop in loop_runs.values():
            on_loop(limiter, work, 200, hop=hop)  # warm: the thread pool, its connections
        for _ in range(args.loop_rounds):
            for name, (limiter, work, hop) in loop_runs.items():
                wall, p50, p99 = on_loop(limiter, work, args.calls, hop=hop)
                loop[name]["us_per_call"].append(wall * 1e6)
                loop[name]["stall_p50_us"].append(p50 * 1e6)
                loop[name]["stall_p99_us"].append(p99 * 1e6)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        shared.close()
        client.close()
    loop_medians = {
        name: {what: round(statistics.median(v), 1) for what, v in values.items()}
        for name, values in loop.items()
    }

    us = {name: statistics.median(values) * 1e6 for name, values in samples.items()}
    cpu_us = {name: statistics.median(values) * 1e6 for name, values in cpu.items()}
    result = {
        "calls": args.calls,
        "rounds": args.rounds,
        "median_us": {name: round(value, 2) for name, value in us.items()},
        "median_cpu_us": {name: round(value, 2) for name, value in cpu_us.items()},
        "redis_over_memory_check": round(us["redis_check"] / us["memory_check"], 1),
        "redis_check_over_ping": round(us["redis_check"] / us["redis_ping"], 2),
        "redis_over_memory_lookup": round(us["redis_lookup"] / us["memory_lookup"], 1),
        "redis_lookup_over_three_pings": round(us["redis_lookup"] / (3 * us["redis_ping"]), 2),
        "redis_lookup_one_script_over_three_checks": round(
            us["redis_lookup_one_script"] / us["redis_lookup"], 2
        ),
        "event_loop": {"concurrency": CONCURRENCY, "rounds": args.loop_rounds, **loop_medians},
        "stall_p99_on_loop_over_run_check": round(
            loop_medians["redis_check_on_loop"]["stall_p99_us"]
            / loop_medians["redis_check_run"]["stall_p99_us"],
            1,
        ),
        "stall_p99_on_loop_over_run_lookup": round(
            loop_medians["redis_lookup_on_loop"]["stall_p99_us"]
            / loop_medians["redis_lookup_run"]["stall_p99_us"],
            1,
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"{'what':<24}{'median us/call':>16}{'client CPU us':>15}")
    for name, value in us.items():
        print(f"{name:<24}{value:>16.1f}{cpu_us[name]:>15.1f}")
    for name, value in result.items():
        if name.startswith(("redis_", "stall_")) and not isinstance(value, dict):
            print(f"{name}: {value}x")
    print(
        f"\n{CONCURRENCY} callers, one event loop{'':<12}"
        f"{'us/call':>10}{'stall p50':>11}{'p99 us':>9}"
    )
    for name, values in loop_medians.items():
        print(
            f"{name:<36}{values['us_per_call']:>10.1f}{values['stall_p50_us']:>11.1f}"
            f"{values['stall_p99_us']:>9.1f}"
        )
    print(f"load average: {result['load_average']}")
    path = save("ratelimit", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
