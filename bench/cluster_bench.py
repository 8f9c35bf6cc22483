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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.clustersides import UNCOUNTED, Processes, Side, start_cluster, start_single
from bench.common import save
from bench.processcpu import CpuMeter
from bench.verifycache import PLATFORMS
from bench.verifyload import drive, run_in
from bench.verifyreport import percentile

POSTGRES_URL = os.environ.get(
    "TRACEMARK_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: Issue 16's target: the cluster path's server CPU per request at most this times one process's.
TARGET_RATIO = 1.5
PRODUCT = "cluster-card"
#: The request mix: (what, how looked up) -> share. Unknown codes are few: a platform's key
#: has a probe budget of 20 unknown codes a minute (THREATS 38), and honest platforms mostly
#: ask about codes that exist; unknown fingerprints cost no probe budget.
MIX = {
    ("registered", "code"): 45,
    ("registered", "fingerprint"): 30,
    ("revoked", "code"): 5,
    ("revoked", "fingerprint"): 5,
    ("unknown", "code"): 1,
    ("unknown", "fingerprint"): 14,
}
#: A round with more errors than this share of its answers is left out of the medians.
MAX_ERROR_SHARE = 0.01
EXPECTED = {"registered": "authentic", "revoked": "revoked", "unknown": "unknown"}


# -- the goods -------------------------------------------------------------------------------


@dataclass
class Goods:
    creator: Any  # registry.creator.CreatorKeys
    codes: Path
    revoked_codes: Path
    #: What the requests ask about: kind -> [(code, 0x fingerprint)].
    pools: dict[str, list[tuple[str, str]]]
    #: A registered code no request asks about: polled until the registry says authentic.
    probe: tuple[str, str]


def make_goods(tmp: Path, goods: int, revoked: int, requests: int) -> Goods:
    from eth_account import Account

    from bench.ingest_bench import ALPHABET, write_codes
    from registry.creator import CreatorKeys
    from registry.fingerprints import CodeFingerprinter

    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    fingerprinter = CodeFingerprinter(creator.require_code_key())
    codes = tmp / "codes.txt"
    write_codes(codes, goods)
    every = codes.read_text().split()
    rng = random.Random(16)
    order = rng.sample(range(goods), goods)
    revoked_codes = [every[i] for i in order[:revoked]]
    (tmp / "revoked.txt").write_text("\n".join(revoked_codes) + "\n")
    share = {kind: sum(v for (k, _), v in MIX.items() if k == kind) / 100 for kind in EXPECTED}
    wanted = int(requests * share["registered"]) + 1
    if revoked + wanted > goods:
        raise SystemExit(f"--goods {goods} is too few for {requests} requests a round")
    registered = [every[i] for i in order[revoked : revoked + wanted]]
    unknown = [
        "-".join("".join(rng.choices(ALPHABET, k=4)) for _ in range(4))
        for _ in range(int(requests * share["unknown"]) + 1)
    ]
    pools = {
        kind: [(code, "0x" + fingerprinter.fingerprint(code).hex()) for code in chosen]
        for kind, chosen in (
            ("registered", registered[1:]),
            ("revoked", revoked_codes),
            ("unknown", unknown),
        )
    }
    probe = registered[0]
    return Goods(
        creator, codes, tmp / "revoked.txt", pools, (probe, fingerprinter.fingerprint(probe).hex())
    )


def populate(settings: Any, goods: Goods, keys: int) -> list[str]:
    """The goods registered and revoked in the registry of ``settings``; its platform keys."""
    from api.apikeys import create_api_key
    from registry.codesfile import prepare_code_batch
    from registry.creator import sign_batch_registration, sign_batch_revocation, sign_enrollment
    from registry.fingerprints import GoodType, Use
    from registry.royalty import RoyaltyPolicy
    from registry.service import Registry

    registry = Registry.open(settings)
    creator = goods.creator
    code_key = creator.require_code_key()
    registry.enroll_code_key(
        sign_enrollment(creator, registry.domain, now=registry.clock()), code_key
    )
    with goods.codes.open(newline="") as source:
        batch = prepare_code_batch(source, code_key)
    request = sign_batch_registration(
        creator,
        registry.domain,
        batch,
        good_type=GoodType.CODE,
        product=PRODUCT,
        use=Use.SINGLE,
        royalty_policy=RoyaltyPolicy.parse({"recipients": []}),
        metadata={},
        now=registry.clock(),
        new_product=True,
    )
    registry.register_batch(request, batch.fingerprints())
    batch.close()
    with goods.revoked_codes.open(newline="") as source:
        batch = prepare_code_batch(source, code_key)
    revocation = sign_batch_revocation(
        creator,
        registry.domain,
        batch,
        good_type=GoodType.CODE,
        reason="bench",
        now=registry.clock(),
    )
    registry.revoke_batch(revocation, batch.fingerprints())
    batch.close()
    made = [
        create_api_key(
            registry.engine,
            f"bench-platform-{i % PLATFORMS}",
            ["verify"],
            f"cluster bench {i}",
            registry.clock(),
        )[0]
        for i in range(keys)
    ]
    registry.engine.dispose()
    return made


def build_requests(goods: Goods, keys: list[str], port: int, count: int) -> list[bytes]:
    """``count`` requests in ``MIX``'s shares, shuffled the same way for both sides; each
    good asked about once."""
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng = random.Random(5)
    taken: Counter[str] = Counter()
    out = []
    for i in range(count):
        what, how = kinds[rng.randrange(len(kinds))]
        pool = goods.pools[what]
        code, fingerprint = pool[taken[what] % len(pool)]
        taken[what] += 1
        if how == "code":
            body = {"good_type": "code", "code": code, "creator": goods.creator.address}
        else:
            body = {"good_type": "code", "fingerprint": fingerprint}
        data = json.dumps(body, separators=(",", ":")).encode()
        out.append(
            (
                f"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {keys[i % len(keys)]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    return out


def expected_verdicts(count: int) -> Counter[str]:
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng = random.Random(5)
    return Counter(EXPECTED[kinds[rng.randrange(len(kinds))][0]] for _ in range(count))


class Verdicts:
    """The check of every answer: 200 and a verdict, counted."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"HTTP {status}"
        at = body.find(b'"verdict":"')
        if at < 0:
            return "no verdict"
        end = body.find(b'"', at + 11)
        self.seen[body[at + 11 : end].decode()] += 1
        return None


def wait_until_anchored(side: Side, goods: Goods, seconds: float = 120.0) -> str:
    """Poll one registered good (asked about by no round) until its verdict is authentic:
    both sides answer from anchored goods. The verdict seen last."""
    body = json.dumps({"good_type": "code", "fingerprint": "0x" + goods.probe[1]}).encode()
    head = (
        f"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {side.keys[0]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + seconds
    verdict = ""
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", side.port), timeout=10) as sock:
            sock.sendall(head + body)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        at = answer.find(b'"verdict":"')
        verdict = answer[at + 11 : answer.find(b'"', at + 11)].decode() if at >= 0 else "?"
        if verdict == "authentic":
            break
        time.sleep(1.0)
    return verdict


# -- the rounds ------------------------------------------------------------------------------


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
