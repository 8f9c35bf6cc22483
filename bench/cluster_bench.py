"""Server CPU per ``POST /v1/verify``: HAProxy to two ``serve --role api`` replicas on
PostgreSQL with the limits in Redis, against one ``tracemark serve`` on SQLite (issue 16).

Run: ``.venv/bin/python -m bench.cluster_bench [--goods N] [--requests N] [--rounds R]
[--quick]``. Writes ``bench/results/cluster.json`` (``--quick``: next to its temporary data,
a check that it works, not a result).

- Data: one creator enrols a code key and bulk-registers ``--goods`` codes, then revokes
  ``--revoked`` of them (both batches straight into the log); 100 platform keys (``verify``
  scope, 4 platforms). The same goods in both registries (same creator and code key, so the
  same fingerprints); each registry has its own keys.
- (a) the single process: ``tracemark serve`` on SQLite, every role in it, memory limits,
  its embedded anvil. Counted: the process and its children but anvil (the risk worker).
- (b) the cluster: HAProxy (``deploy/haproxy.cfg`` as shipped) -> two ``serve --role api``
  on one PostgreSQL schema (127.0.0.1:5432) with ``TRACEMARK_RATE_LIMIT_STORAGE`` on a
  private ``redis-server``, and one ``serve --role sequencer,anchoring,telemetry,risk,
  webhooks`` (the singletons (a) runs too), on an anvil of the bench's. Counted: both
  replicas, the roles' process and its children, HAProxy, the private Redis, and the
  PostgreSQL backends of those processes (by ``application_name``). Not counted (reported):
  PostgreSQL's background writer, WAL writer and checkpointer, which the machine's other
  users share, and each side's anvil.
- Load: the same requests to both, 8 keep-alive connections (``bench.verify_bench``'s
  client): by code and by fingerprint, registered, revoked and unknown goods (``MIX``); keys
  round robin; a fixed count a round, a time cap. Rounds interleave a, b, a, b, ...; each
  starts with a short warm-up that is thrown away. CPU per request = the counted processes'
  user + system time over the round / requests answered. Medians; ratio b / a.

The parts: ``bench.clustergoods`` (data, requests, checks), ``bench.clustersides`` (the two
sides' processes), ``bench.clusterrounds`` (a round, round trips, the summary); this module runs
them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.clustergoods import build_requests, make_goods, populate, wait_until_anchored
from bench.clusterrounds import TARGET_RATIO, Plan, measure, round_trips, summarise
from bench.clustersides import Processes, start_cluster, start_single
from bench.common import save

POSTGRES_URL = os.environ.get(
    "TRACEMARK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import uvloop
    from sqlalchemy import create_engine, make_url, text

    from registry.settings import Settings

    plan = Plan(
        args.idle,
        args.requests,
        args.seconds,
        args.warmup,
        args.first_warmup,
        args.connections,
        args.rounds,
    )
    print(f"making {args.goods:,} codes ({args.revoked:,} revoked) ...", flush=True)
    goods = make_goods(tmp, args.goods, args.revoked, args.requests)
    # A database of the bench's own (not a schema in a shared one): pg_stat_database then
    # counts the cluster's transactions alone (``round_trips``).
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    database = f"clusterbench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    database_url = (
        make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)
    )
    procs = Processes(tmp)
    loop = uvloop.new_event_loop()
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(procs.stop_all)
            started = time.perf_counter()
            single_keys = populate(Settings(data_dir=tmp / "single"), goods, 100)
            cluster_keys = populate(
                Settings(data_dir=tmp / "cluster", database_url=database_url), goods, 100
            )
            print(f"populated both in {time.perf_counter() - started:.0f} s", flush=True)
            sides = [
                start_single(procs, tmp / "single", single_keys),
                start_cluster(
                    procs, stack, tmp / "cluster", database_url, cluster_keys, admin, database
                ),
            ]
            anchored = {side.name: wait_until_anchored(side, goods) for side in sides}
            print(f"verdict of a registered good: {anchored}", flush=True)
            pools = {
                side.name: build_requests(goods, side.keys, side.port, plan.requests)
                for side in sides
            }
            rounds: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
            lost: dict[str, list[str]] = {side.name: [] for side in sides}
            for number in range(plan.rounds):
                for side in sides:
                    warm = plan.first_warmup if number == 0 else plan.warmup
                    try:
                        this = measure(side, pools[side.name], plan, loop, warm)
                    except ConnectionError as exc:
                        # A connection cut (HAProxy takes a replica out when a loaded machine
                        # answers its health check late): the round is lost, and said so.
                        lost[side.name].append(f"round {number + 1}: {exc}")
                        print(f"round {number + 1} {side.name}: lost ({exc})", flush=True)
                        continue
                    rounds[side.name].append(this)
                    print(
                        f"round {number + 1} {side.name:8s} {this['requests']:,} in "
                        f"{this['seconds']:.1f} s ({this['rps']:,.0f}/s) p50 {this['p50_ms']:.1f}"
                        f" ms p99 {this['p99_ms']:.1f} ms; server CPU "
                        f"{this['server_cpu_us_per_req']:.0f} us/req "
                        f"{this['cpu_us_per_req_by_group']}; errors {this['errors']}; "
                        f"load {this['load_average_1m']}",
                        flush=True,
                    )
            trips = {
                side.name: round_trips(side, pools[side.name], plan, loop)
                for side in sides
                if side.counters is not None
            }
    finally:
        loop.close()
        _keep_logs(tmp)
        for attempt in range(5):
            try:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE {database} WITH (FORCE)"))
                break
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(0.5)
        admin.dispose()
    return {
        **summarise(args, rounds, anchored),
        "round_trips_per_request": trips,
        "rounds_lost": lost,
    }


def _keep_logs(tmp: Path) -> None:
    """The processes' logs, kept past the temporary directory (a 500's traceback is there)."""
    kept = Path(tempfile.gettempdir()) / "tracemark-cluster-bench-logs"
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir()
    for log in tmp.glob("*.log"):
        shutil.copy(log, kept / log.name)
    print(f"the processes' logs are in {kept}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goods", type=int, default=100_000)
    parser.add_argument("--revoked", type=int, default=2_500)
    parser.add_argument("--requests", type=int, default=20_000, help="per round and side")
    parser.add_argument("--seconds", type=float, default=90.0, help="cap per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--idle", type=float, default=5.0, help="idle CPU measured per round")
    parser.add_argument("--warmup", type=float, default=2.0, help="per round, thrown away")
    parser.add_argument("--first-warmup", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="a check that it works")
    args = parser.parse_args()
    if args.quick:
        args.goods, args.revoked, args.requests, args.rounds, args.idle = 5_000, 300, 2_000, 1, 2.0
    with tempfile.TemporaryDirectory(prefix="tracemark-cluster-bench-") as name:
        tmp = Path(name)
        data = run(args, tmp)
        if args.quick:
            print(json.dumps({k: v for k, v in data.items() if k != "rounds_raw"}, indent=2))
            return
    path = save("cluster", data)
    med = data["median"]
    print(
        f"\nserver CPU per verify: single {med['single']['server_cpu_us_per_req']:.0f} us, "
        f"cluster {med['cluster']['server_cpu_us_per_req']:.0f} us: "
        f"{data['ratio_cluster_over_single']}x (target <= {TARGET_RATIO}x) -> "
        f"{'PASS' if data['pass'] else 'FAIL'}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
