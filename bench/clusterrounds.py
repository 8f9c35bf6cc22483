"""The cluster benchmark's rounds on one side (CPU per request, idle CPU, round trips) and their
summary: medians, the ratio of the cluster to the single process, the pass."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.clustergoods import MIX, Verdicts, expected_verdicts
from bench.clustersides import UNCOUNTED, Side
from bench.common import percentile
from bench.processcpu import CpuMeter
from bench.verifyload import drive, run_in

#: Issue 16's target: the cluster path's server CPU per request at most this times one process's.
TARGET_RATIO = 1.5
#: A round with more errors than this share of its answers is left out of the medians.
MAX_ERROR_SHARE = 0.01


@dataclass
class Plan:
    idle: float
    requests: int
    seconds: float
    warmup: float
    first_warmup: float
    connections: int
    rounds: int


def measure(
    side: Side, requests: list[bytes], plan: Plan, loop: Any, warmup: float
) -> dict[str, Any]:
    """One round on ``side``: a warm-up thrown away, then ``plan.requests`` or the time cap."""
    # What the side uses with no request at all (pollers, heartbeats, health checks), so a
    # round's CPU can be told apart from it: reported, not subtracted from the headline.
    quiet = CpuMeter(side.groups)
    quiet.start()
    time.sleep(plan.idle)
    idle_rate = {k: v / plan.idle for k, v in quiet.stop().items()}
    run_in(
        loop,
        drive(
            side.port,
            requests,
            Verdicts(),
            connections=plan.connections,
            warmup=0,
            limit=10**9,
            seconds=warmup,
            server_cpu=lambda: 0.0,
        ),
    )
    verdicts = Verdicts()
    meter = CpuMeter(side.groups)
    load_before = os.getloadavg()[0]
    meter.start()
    began = time.monotonic()
    raw = run_in(
        loop,
        drive(
            side.port,
            requests,
            verdicts,
            connections=plan.connections,
            warmup=0,
            limit=plan.requests,
            seconds=plan.seconds,
            server_cpu=lambda: 0.0,
        ),
    )
    used = meter.stop()
    span = time.monotonic() - began
    n = raw["requests"]
    counted = sum(v for k, v in used.items() if k not in side.uncounted)
    idle = sum(v for k, v in idle_rate.items() if k not in side.uncounted) * span
    lat = raw["latencies"]
    return {
        "requests": n,
        "seconds": round(raw["seconds"], 2),
        "rps": round(n / raw["seconds"], 1),
        "p50_ms": round(percentile(lat, 0.50) * 1e3, 2),
        "p99_ms": round(percentile(lat, 0.99) * 1e3, 2),
        "server_cpu_us_per_req": round(counted / n * 1e6, 1),
        "server_cpu_us_per_req_above_idle": round((counted - idle) / n * 1e6, 1),
        "idle_cpu_cores_by_group": {k: round(v, 3) for k, v in sorted(idle_rate.items())},
        "cpu_us_per_req_by_group": {k: round(v / n * 1e6, 1) for k, v in sorted(used.items())},
        "processes_by_group": meter.pids(),
        "client_cpu_us_per_req": round(raw["client_cpu_s"] / n * 1e6, 1),
        "verdicts": dict(verdicts.seen),
        "errors": raw["errors"],
        "error_samples": raw["error_samples"],
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


#: Seconds to wait before reading PostgreSQL's counts: an idle backend reports its own within
#: 10 s (PostgreSQL 15's PGSTAT_IDLE_INTERVAL).
SETTLE_SECONDS = 11.0


def round_trips(
    side: Side, requests: list[bytes], plan: Plan, loop: Any, settle: float = SETTLE_SECONDS
) -> dict[str, float]:
    """What one request costs ``side`` in round trips (``Side.counters``: Redis commands by
    name, PostgreSQL transactions and rows), from one more round: the counts' growth over the
    round less what the side does idle over as long (measured just before it, once what the
    rounds before left unreported has been reported)."""
    assert side.counters is not None
    time.sleep(settle)  # what the rounds before left unreported, reported
    before = side.counters()
    began = time.monotonic()
    time.sleep(settle)
    start = side.counters()
    started = time.monotonic()
    raw = run_in(
        loop,
        drive(
            side.port,
            requests,
            Verdicts(),
            connections=plan.connections,
            warmup=0,
            limit=plan.requests,
            seconds=plan.seconds,
            server_cpu=lambda: 0.0,
        ),
    )
    time.sleep(settle)
    end = side.counters()
    span = time.monotonic() - started
    n = raw["requests"]
    per_request = {}
    for name in sorted(end):
        idle = (start.get(name, 0.0) - before.get(name, 0.0)) / (started - began)
        grown = end[name] - start.get(name, 0.0)
        per_request[name] = round((grown - idle * span) / n, 3)
    print(f"round trips a request ({side.name}, {n:,} requests): {per_request}", flush=True)
    return {"requests": n, **per_request}


def summarise(
    args: argparse.Namespace, every: dict[str, list[dict[str, Any]]], anchored: dict[str, str]
) -> dict[str, Any]:
    # A round where more than MAX_ERROR_SHARE of the answers were errors measured something
    # else (HAProxy's 503 with every replica taken out is cheap): kept in rounds_raw only.
    rounds = {
        side: [r for r in rs if sum(r["errors"].values()) <= MAX_ERROR_SHARE * r["requests"]]
        for side, rs in every.items()
    }
    if not all(rounds.values()):
        raise SystemExit(f"no valid round on one side: {json.dumps(every)[:2000]}")

    def med(side: str, key: str) -> float:
        return float(statistics.median(r[key] for r in rounds[side]))

    groups = {
        side: {
            group: statistics.median(r["cpu_us_per_req_by_group"].get(group, 0.0) for r in rs)
            for group in rs[0]["cpu_us_per_req_by_group"]
        }
        for side, rs in rounds.items()
    }
    per_round = [
        b["server_cpu_us_per_req"] / a["server_cpu_us_per_req"]
        for a, b in zip(rounds["single"], rounds["cluster"], strict=False)
    ]
    single, cluster = (
        med("single", "server_cpu_us_per_req"),
        med("cluster", "server_cpu_us_per_req"),
    )
    return {
        "goods": args.goods,
        "revoked": args.revoked,
        "mix": {f"{what} by {how}": share for (what, how), share in MIX.items()},
        "connections": args.connections,
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "round_cap_s": args.seconds,
        "verdict_of_a_registered_good_before": anchored,
        "expected_verdict_shares": {
            k: round(v / args.requests, 3) for k, v in expected_verdicts(args.requests).items()
        },
        "median": {
            side: {
                "server_cpu_us_per_req": med(side, "server_cpu_us_per_req"),
                "server_cpu_us_per_req_above_idle": med(side, "server_cpu_us_per_req_above_idle"),
                "idle_cpu_cores": statistics.median(
                    sum(v for k, v in r["idle_cpu_cores_by_group"].items() if k not in UNCOUNTED)
                    for r in rounds[side]
                ),
                "cpu_us_per_req_by_group": groups[side],
                "rps": med(side, "rps"),
                "p50_ms": med(side, "p50_ms"),
                "p99_ms": med(side, "p99_ms"),
                "client_cpu_us_per_req": med(side, "client_cpu_us_per_req"),
            }
            for side in rounds
        },
        "ratio_cluster_over_single": round(cluster / single, 2),
        "ratio_above_idle": round(
            med("cluster", "server_cpu_us_per_req_above_idle")
            / med("single", "server_cpu_us_per_req_above_idle"),
            2,
        ),
        "ratio_per_round": [round(r, 2) for r in per_round],
        "target_ratio": TARGET_RATIO,
        "pass": cluster / single <= TARGET_RATIO,
        "counted": {
            "single": "tracemark serve (every role, SQLite, memory limits) and its children "
            "but anvil: the risk worker process",
            "cluster": "both serve --role api replicas, the roles process (sequencer, "
            "anchoring, telemetry, risk, webhooks) and its risk worker, HAProxy, the private "
            "redis-server, the PostgreSQL backends of those processes (application_name)",
            "not counted": "anvil on each side; PostgreSQL's background processes "
            "(checkpointer, background writer, WAL writer: shared with the machine's other "
            "users, reported under 'postgresql background' as an upper bound)",
        },
        "rounds_valid": {side: len(rs) for side, rs in rounds.items()},
        "rounds_raw": every,
    }
