"""``POST /v1/verify`` (by fingerprint, by code) against a bare endpoint on the same server.

Run: ``.venv/bin/python -m bench.verify_bench [--goods N] [--quick] [--pin both|on|off]
[--profile]``. Writes ``bench/results/verify_bench.json``.

- Data (built once, cached in ``<tmp>/tracemark-verify-bench/goods-<N>``, ``--cache-dir``):
  a SQLite registry where one creator enrolled a code key and bulk-registered N codes of one
  product (10^6 by default, ``bench.ingest_bench``'s codes), a sample of (code, fingerprint)
  pairs (20,000) and 100 platform API keys with the ``verify`` scope, over 4 platforms.
  Telemetry tables are emptied at each start, so every run starts from the same database.
- Server: one uvicorn process (uvloop + httptools, 1 worker, as ``tracemark serve``) serving
  ``api.app.create_app(registry)`` with default auth and rate limits, plus ``POST /bare``
  returning a constant, added to the same app (same server, same middleware).
- Client: 32 keep-alive HTTP/1.1 connections (no pipelining), raw ``asyncio.Protocol``s on
  uvloop in this process (its ceiling is measured against a raw constant-answer server).
  Each request carries a Bearer key (round robin over the 100) and a sampled good (the
  sample, shuffled, cycled): no key passes 100/s and no good its 60/min. Every answer must be
  200 with verdict ``authentic`` or ``pending_anchor``; anything else is counted as an error.
- Phases, interleaved to cancel drift: bare, by fingerprint, by code; each a warm-up that is
  thrown away, then a fixed number of requests or a time cap. Rounds (3) repeat them, once
  with the client and the server pinned to different cores and once unpinned (the client
  runs on the same 2-core machine and steals CPU). Medians of throughput, p50, p99; ratios
  verify / bare. ``--profile`` adds a cProfile run of the server (every thread) per path.

The parts: ``bench.verifycache`` (the registry), ``bench.verifyserver`` (the server child and
the handle on it), ``bench.verifyload`` (the client), ``bench.verifyreport`` (the numbers);
this module plans the rounds and is the command line (and the server child's entry point).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import save
from bench.verifycache import PLATFORMS, default_cache, load_or_build, reset_telemetry
from bench.verifyload import (
    build_requests,
    check_bare,
    check_verify,
    drive,
    interrupt,
    run_in,
    wait_for_quiet,
)
from bench.verifyreport import PHASES, TARGET_P99_MS, TARGET_RATIO, medians, summarise, table
from bench.verifyserver import Server, raw_serve, running, serve

SERVER_CPU, CLIENT_CPU = 1, 0
#: Before each phase, wait (up to ``--quiet-wait`` s) until other processes use less than this.
QUIET_CORES = 0.25


@dataclass
class Plan:
    connections: int
    warmup: float
    limit: int
    seconds: float
    rounds: int
    first_warmup: float
    ceiling_seconds: float
    quiet_wait: float


def pin_self(cpus: set[int] | None) -> None:
    every = set(range(os.cpu_count() or 1))
    for task in os.listdir("/proc/self/task"):
        os.sched_setaffinity(int(task), cpus if cpus is not None else every)


def run_configs(
    meta: dict[str, Any],
    cache: Path,
    plan: Plan,
    configs: list[str],
    loop: asyncio.AbstractEventLoop,
) -> tuple[dict[str, Any], dict[str, Any]]:
    every = set(range(os.cpu_count() or 1))

    def place(server: Server, config: str) -> None:
        pinned = config == "pinned"
        server.pin({SERVER_CPU} if pinned else every)
        pin_self({CLIENT_CPU} if pinned else None)

    def measure(
        server: Server,
        requests: list[bytes],
        check: Callable[[int, bytes], str | None],
        *,
        warmup: float,
        limit: int,
        seconds: float,
    ) -> dict[str, Any]:
        foreign = wait_for_quiet(
            lambda: time.process_time() + server.cpu_seconds(), QUIET_CORES, plan.quiet_wait
        )
        raw = run_in(
            loop,
            drive(
                server.port,
                requests,
                check,
                connections=plan.connections,
                warmup=warmup,
                limit=limit,
                seconds=seconds,
                server_cpu=server.cpu_seconds,
            ),
        )
        return {**summarise(raw), "foreign_cpu_before": foreign}

    ceilings: dict[str, Any] = {}
    with running(["--raw-serve"]) as raw:
        requests = build_requests(meta, "bare", raw.port)
        for config in configs:
            place(raw, config)
            ceilings[config] = ceiling = measure(
                raw,
                requests,
                check_bare,
                warmup=min(1.0, plan.warmup),
                limit=10**9,
                seconds=plan.ceiling_seconds,
            )
            print(
                f"client ceiling ({config}): {ceiling['rps']:,.0f} req/s against a raw uvloop "
                f"server; client {ceiling['client_cpu_us_per_req']:.0f} us CPU/req "
                f"({ceiling['client_cpu_util']:.0%} of a core), server "
                f"{ceiling['server_cpu_util']:.0%}",
                flush=True,
            )
    pin_self(None)
    rounds: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    with running(["--serve", str(cache)]) as server:
        pools = {
            "bare": build_requests(meta, "bare", server.port),
            "verify_fingerprint": build_requests(meta, "fingerprint", server.port),
            "verify_code": build_requests(meta, "code", server.port),
        }
        checks = {"bare": check_bare}
        # First look-ups warm the server and the page cache; thrown away.
        for phase in ("verify_fingerprint", "verify_code"):
            run_in(
                loop,
                drive(
                    server.port,
                    pools[phase],
                    check_verify,
                    connections=plan.connections,
                    warmup=0,
                    limit=10**9,
                    seconds=plan.first_warmup,
                    server_cpu=server.cpu_seconds,
                ),
            )
        for number in range(plan.rounds):
            for config in configs:
                place(server, config)
                this = {
                    phase: measure(
                        server,
                        pools[phase],
                        checks.get(phase, check_verify),
                        warmup=plan.warmup,
                        limit=plan.limit,
                        seconds=plan.seconds,
                    )
                    for phase in PHASES
                }
                rounds[config].append(this)
                print(
                    f"round {number + 1} {config:8s} "
                    + "  ".join(
                        f"{p} {this[p]['rps']:,.0f}/s p99 {this[p]['p99_ms']:.1f} ms"
                        for p in PHASES
                    )
                    + f"  (others used {max(this[p]['foreign_cpu_util'] for p in PHASES):.2f}"
                    " cores at most)",
                    flush=True,
                )
        pin_self(None)
    return ceilings, rounds


def profile_paths(meta: dict[str, Any], cache: Path, plan: Plan, loop: Any) -> dict[str, Any]:
    """cProfile of the server (every thread) under load, one server per path."""
    out: dict[str, Any] = {}
    for phase, kind in (("verify_fingerprint", "fingerprint"), ("verify_code", "code")):
        path = cache / f"profile-{phase}.pstats"
        with running(["--serve", str(cache), "--profile-out", str(path)]) as server:
            measured = run_in(
                loop,
                drive(
                    server.port,
                    build_requests(meta, kind, server.port),
                    check_verify,
                    connections=plan.connections,
                    warmup=plan.warmup,
                    limit=plan.limit,
                    seconds=plan.seconds,
                    server_cpu=server.cpu_seconds,
                ),
            )
        requests = measured["requests"]
        stats = pstats.Stats(str(path))
        print(f"\n== profile of {phase} ({path}); under cProfile, {measured['rps']:,.0f} req/s ==")
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        out[phase] = {"pstats": str(path), "requests_while_profiled": requests}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10^4 goods, short phases")
    parser.add_argument("--keys", type=int, default=100)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100_000, help="per measured phase")
    parser.add_argument("--seconds", type=float, default=20.0, help="cap per measured phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="per phase, thrown away")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each phase, wait up to this long for other processes to go quiet",
    )
    parser.add_argument("--pin", choices=("both", "on", "off"), default="both")
    parser.add_argument("--profile", action="store_true", help="also cProfile the server")
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--raw-serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.profile_out)
        return
    if args.raw_serve:
        raw_serve(args.port)
        return

    import uvloop

    signal.signal(signal.SIGTERM, interrupt)  # stop the servers on SIGTERM as on Ctrl-C
    if args.quick:
        args.goods = 10_000 if args.goods == 1_000_000 else args.goods
        plan = Plan(args.connections, 1.0, 5_000, 3.0, 1, 1.0, 2.0, 0.0)
    else:
        plan = Plan(
            args.connections,
            args.warmup,
            args.requests,
            args.seconds,
            args.rounds,
            5.0,
            5.0,
            args.quiet_wait,
        )
    cpus = os.cpu_count() or 1
    can_pin = cpus >= 2 and hasattr(os, "sched_setaffinity")
    configs = {"both": ["pinned", "unpinned"], "on": ["pinned"], "off": ["unpinned"]}[args.pin]
    if not can_pin:
        configs = ["unpinned"]
    cache = args.cache_dir or default_cache(args.goods)
    meta = load_or_build(cache, args.goods, args.keys, args.sample)
    reset_telemetry(cache)
    loop = uvloop.new_event_loop()
    try:
        ceilings, rounds = run_configs(meta, cache, plan, configs, loop)
        profiles = profile_paths(meta, cache, plan, loop) if args.profile else None
    finally:
        loop.close()
    by_config = {config: medians(rounds[config]) for config in configs}
    headline = configs[0]
    table(by_config)
    import fastapi
    import uvicorn

    data = {
        "goods": args.goods,
        "sampled_goods": meta["sample"],
        "api_keys": meta["keys"],
        "platforms": PLATFORMS,
        "connections": plan.connections,
        "rounds": plan.rounds,
        "phase": {
            "warmup_s": plan.warmup,
            "max_requests": plan.limit,
            "max_seconds": plan.seconds,
            "order": list(PHASES),
        },
        "server": {
            "uvicorn": uvicorn.__version__,
            "fastapi": fastapi.__version__,
            "loop": "uvloop",
            "http": "httptools",
            "workers": 1,
            "database": "sqlite (WAL)",
            "pinned_cpu": SERVER_CPU,
        },
        "client": {
            "kind": "asyncio.Protocol per connection on uvloop, HTTP/1.1 keep-alive, "
            "no pipelining, in the bench process",
            "pinned_cpu": CLIENT_CPU,
            "ceiling_vs_raw_server": ceilings,
        },
        "headline": headline,
        "results": by_config,
        "rounds_raw": rounds,
        "targets": {"min_ratio_to_bare": TARGET_RATIO, "max_p99_ms": TARGET_P99_MS},
        "pass": {
            phase: all(by_config[headline][phase]["pass"].values())
            for phase in ("verify_fingerprint", "verify_code")
        },
        "profiles": profiles,
    }
    if args.quick:  # a check that it works, not a result: kept next to the cache
        path = cache / "verify_bench.quick.json"
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path = save("verify_bench", data)
    print(
        f"\nheadline ({headline}): "
        + "; ".join(
            f"{p} {by_config[headline][p]['ratio_rps']:.0%} of bare, p99 "
            f"{by_config[headline][p]['p99_ms']:.1f} ms -> {'PASS' if data['pass'][p] else 'FAIL'}"
            for p in ("verify_fingerprint", "verify_code")
        )
        + f" (targets: >= {TARGET_RATIO:.0%}, p99 < {TARGET_P99_MS:.0f} ms)"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; the servers were stopped", file=sys.stderr)
        sys.exit(130)
