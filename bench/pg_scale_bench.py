"""10^7 goods on PostgreSQL (issue 16): bulk ingest against ``COPY``, verify and inclusion
proof latency, index probes and CPU per verification, and the database's bytes per good.

Run: ``.venv/bin/python -m bench.pg_scale_bench --postgres URL [--batches 10]
[--codes 1000000] [--requests 1000] [--rounds 3] [--workdir DIR] [--keep]
[--serve-only]``. One run, in a database of its own (``tracemark_scale_<pid>`` on URL's
server, dropped at the end unless ``--keep``):

1. Ingest, in a child process (its memory, the state map's included, its own):
   ``--batches`` bulk batches of ``--codes`` fresh codes each, through
   ``Registry.register_batch`` as ``bench.pg_ingest_bench`` (and ``tracemark
   register-codes``) drives it: fingerprints, one signature, then the registry's bulk path
   (timed: signature check, lookups, entries by COPY, tiles, the state map, the signed head).
   After each batch the rows it wrote are read back and ``COPY``'d into an unindexed table
   (the floor, same run, same database) and the WAL it wrote is read from
   ``pg_current_wal_lsn()``. Each batch's row goes to ``DIR/batches.jsonl`` when it commits.
2. Finish: the floor's table dropped, ``ANALYZE``, ``pg_total_relation_size`` of every table
   and ``pg_relation_size`` of every index; a sample of registered goods at random leaf
   indices; platform keys.
3. Serve: ``tracemark serve --role api`` on that database (embedded anvil as its chain, no
   anchoring: known goods answer ``pending_anchor``). One keep-alive client, one request
   after another (latency, not throughput), interleaved in ``--rounds`` rounds: ``GET
   /livez`` with a key (the peer: same server, connection and auth, no database), ``POST
   /v1/verify`` by fingerprint (9 in 10 a sampled registered good, 1 in 10 an unknown one;
   every answer checked), ``GET /v1/log/proof/inclusion`` of a random leaf at the newest
   size. CPU seconds of the API process and of its PostgreSQL backends (``/proc``) over the
   verify phases; then one more verify phase between PostgreSQL's own counters (index scans,
   blocks hit and read, per verification).

``--serve-only --workdir DIR`` runs steps 2-3 again on a kept database, also one whose ingest
was stopped part-way (the batches it committed). Writes ``bench/results/pg_scale.json``
(``pg_scale-N.json`` for other sizes) with the git commit measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

from bench.common import save
from bench.ingest_bench import ALPHABET
from bench.loopback import free_port, wait_until_serving
from bench.pg_ingest_bench import COLUMNS, TYPES

#: The ingest step past this is killed (a regressed path must not hang the bench).
STEP_TIMEOUT = 4 * 3600
PRODUCT = "scale-card"
#: Leaf indices drawn for the sample of registered goods the verify requests ask about.
SAMPLE = 5000
KEYS = 8  # platform keys, round robin: none passes its 100 requests a second
HERE = Path(__file__).resolve().parent.parent
TRACEMARK = str(Path(sys.executable).parent / "tracemark")


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


def _codes(batch: int, n: int) -> str:
    rng = random.Random(1000 + batch)  # a batch's codes differ from every other's
    lines = []
    for _ in range(n):
        s = "".join(rng.choices(ALPHABET, k=16))
        lines.append(f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}\n")
    return "".join(lines)


def _number(conn: Any, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _wal_lsn(conn: Any) -> int:
    return _number(conn, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")


def _copy_floor(conn: Any, start: int) -> tuple[int, float]:
    """The batch's rows (read back from ``entries``) COPY'd into the unindexed table."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM entries WHERE leaf_index >= %s ORDER BY leaf_index", (start,)
    ).fetchall()
    conn.commit()
    started = time.perf_counter()
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY floor.bare ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)
    conn.commit()
    return len(rows), time.perf_counter() - started


def sizes(conn: Any) -> list[dict[str, Any]]:
    """Every table (with its indexes and TOAST) and every index of the public schema."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind, COALESCE(i.indrelid::regclass::text, ''), "
        "CASE WHEN c.relkind = 'r' THEN pg_total_relation_size(c.oid) "
        "ELSE pg_relation_size(c.oid) END, "
        "CASE WHEN c.relkind = 'r' THEN pg_relation_size(c.oid) ELSE 0 END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 4 DESC"
    ).fetchall()
    return [
        {
            "name": name,
            "kind": "table" if kind == "r" else "index",
            "table": table or name,
            "bytes": int(total),
            "heap_bytes": int(heap),
        }
        for name, kind, table, total, heap in rows
    ]


def ingest(data_dir: Path, url: str, batches: int, n: int, progress: Path) -> None:
    """The batches, each committed and its row appended to ``progress`` (JSON lines) as it
    finishes: a run stopped part-way leaves the batches done, measurable by ``finish``."""
    import psycopg
    from eth_account import Account

    from registry.codesfile import prepare_code_batch
    from registry.creator import CreatorKeys, sign_batch_registration, sign_enrollment
    from registry.fingerprints import GoodType, Use
    from registry.royalty import RoyaltyPolicy
    from registry.service import Registry
    from registry.settings import load_settings

    registry = Registry.open(load_settings(data_dir=data_dir, database_url=url))
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    code_key = creator.require_code_key()
    registry.enroll_code_key(
        sign_enrollment(creator, registry.domain, now=registry.clock()), code_key
    )
    conn = psycopg.connect(_dsn(url))
    conn.execute("CREATE SCHEMA floor")
    conn.execute(
        "CREATE TABLE floor.bare (leaf_index bigint, kind smallint, "
        "good_type smallint, fingerprint bytea, actor bytea, payload_hash bytea, "
        "timestamp bigint, record_id bigint, position integer, product_id integer)"
    )
    conn.commit()
    rows: list[dict[str, Any]] = []
    for b in range(batches):
        head = registry.latest_tree_head()
        start = head.tree_size if head is not None else 0
        started = time.perf_counter()
        batch = prepare_code_batch(StringIO(_codes(b, n)), code_key)
        prepared = time.perf_counter()
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
            new_product=b == 0,
        )
        wal_before = _wal_lsn(conn)
        conn.commit()
        began = time.perf_counter()
        result = registry.register_batch(request, batch.fingerprints())
        finished = time.perf_counter()
        wal = _wal_lsn(conn) - wal_before
        conn.commit()
        assert result.registered == n, result
        batch.close()
        copied, copy_s = _copy_floor(conn, start)
        ingest_s = finished - began
        rows.append(
            {
                "batch": b + 1,
                "goods_before": start,
                "client_fingerprint_s": prepared - started,
                "registry_ingest_s": ingest_s,
                "goods_per_s": n / ingest_s,
                "copy_unindexed_rows": copied,
                "copy_unindexed_s": copy_s,
                "copy_rows_per_s": copied / copy_s,
                "ratio_registry_to_copy": ingest_s / copy_s,
                "wal_bytes": wal,
                "wal_bytes_per_good": wal / n,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "load_average": os.getloadavg(),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        with progress.open("a") as out:
            out.write(json.dumps(rows[-1]) + "\n")
    conn.close()
    registry.engine.dispose()


def finish(url: str) -> dict[str, Any]:
    """After the batches (all, or those a stopped run committed): the floor table's size,
    then dropped; ANALYZE; every table's and index's size; a sample of registered goods
    (at random leaf indices over the whole log) and platform keys for the serving phase."""
    import psycopg

    from api.apikeys import create_api_key
    from registry.db import create_db_engine

    conn = psycopg.connect(_dsn(url))
    floor_bytes = _number(conn, "SELECT COALESCE(pg_total_relation_size('floor.bare'), 0)")
    conn.execute("DROP SCHEMA IF EXISTS floor CASCADE")
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    tree_size = _number(conn, "SELECT max(leaf_index) + 1 FROM entries")
    rng = random.Random(7)
    leaves = [rng.randrange(tree_size) for _ in range(SAMPLE)]
    sample = [
        "0x" + bytes(row[0]).hex()
        for row in conn.execute(
            "SELECT fingerprint FROM entries WHERE kind = 1 AND leaf_index = ANY(%s)", (leaves,)
        ).fetchall()
    ]
    engine = create_db_engine(url)
    keys = [
        create_api_key(
            engine, f"scale-platform-{i % 4}", ["verify"], "scale bench", int(time.time())
        )[0]
        for i in range(KEYS)
    ]
    engine.dispose()
    measured = sizes(conn)
    database_bytes = _number(conn, "SELECT pg_database_size(current_database())")
    conn.close()
    return {
        "tree_size": tree_size,
        "floor_table_bytes": floor_bytes,
        "sizes": measured,
        "database_bytes": database_bytes,
        "sample": sample,
        "api_keys": keys,
    }


# -- serving -----------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backends(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(_dsn(url)) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def _stats(url: str) -> dict[str, int]:
    """Cumulative scans and block reads in this database (pg_stat_user_*, pg_statio_*)."""
    import psycopg

    with psycopg.connect(_dsn(url)) as conn:
        out = {
            f"idx_scan:{name}": int(n)
            for name, n in conn.execute(
                "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes"
            ).fetchall()
        }
        for name, n in conn.execute("SELECT relname, seq_scan FROM pg_stat_user_tables").fetchall():
            out[f"seq_scan:{name}"] = int(n)
        row = conn.execute(
            "SELECT sum(heap_blks_read), sum(heap_blks_hit), sum(idx_blks_read), "
            "sum(idx_blks_hit) FROM pg_statio_user_tables"
        ).fetchone()
        assert row is not None
        for key, n in zip(("heap_read", "heap_hit", "idx_read", "idx_hit"), row, strict=True):
            out[f"blocks:{key}"] = int(n or 0)
    return out


def _probes(url: str, verify: Any, requests: int, client: Client) -> dict[str, float]:
    """Index scans and blocks per verification, from PostgreSQL's own counters, over a
    phase of verify requests alone. A backend reports its counters at most every second
    when busy and within 10 s when idle (PostgreSQL 15): hence the waits."""
    time.sleep(11)
    before = _stats(url)
    client.connection.close()  # the server closed the idle connection: open a new one
    for i in range(requests):
        verify(i)
    time.sleep(11)
    after = _stats(url)
    return {
        key: (after[key] - before.get(key, 0)) / requests
        for key in sorted(after)
        if after[key] != before.get(key, 0)
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Client:
    """One keep-alive HTTP/1.1 connection; each call's latency in ms, its answer checked."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.errors: list[str] = []

    def call(self, method: str, path: str, key: str | None, body: Any, want: bytes) -> float:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        self.connection.request(method, path, data, headers)
        response = self.connection.getresponse()
        answer = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or want not in answer:
            self.errors.append(f"{method} {path}: {response.status} {answer[:200]!r}")
        return elapsed


def serve_and_measure(
    data_dir: Path, url: str, meta: dict[str, Any], requests: int, rounds: int
) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(data_dir),
        "TRACEMARK_DATABASE_URL": url,
        "TRACEMARK_API_HOST": "127.0.0.1",
        "TRACEMARK_API_PORT": str(port),
    }
    log_path = data_dir.parent / "serve.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [TRACEMARK, "serve", "--role", "api"], env=env, stdout=log, stderr=log
    )
    try:
        start_s = wait_until_serving(server, port, seconds=1800, interval=0.2, log=log_path)
        return _measure(port, server.pid, url, meta, requests, rounds) | {"serve_start_s": start_s}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def _measure(
    port: int, pid: int, url: str, meta: dict[str, Any], requests: int, rounds: int
) -> dict[str, Any]:
    rng = random.Random(11)
    keys, sample, size = meta["api_keys"], meta["sample"], meta["tree_size"]
    client = Client(port)

    def verify(i: int) -> float:
        known = i % 10 != 9
        fingerprint = rng.choice(sample) if known else "0x" + rng.randbytes(32).hex()
        body = {"good_type": "code", "fingerprint": fingerprint}
        want = b'"verdict":"pending_anchor"' if known else b'"verdict":"unknown"'
        return client.call("POST", "/v1/verify", keys[i % len(keys)], body, want)

    def inclusion(i: int) -> float:
        leaf = rng.randrange(size)
        path = f"/v1/log/proof/inclusion?leaf_index={leaf}&tree_size={size}"
        return client.call("GET", path, keys[i % len(keys)], None, b'"proof"')

    def livez(i: int) -> float:
        # With a key: an anonymous /livez is held to the health checks' 20/s.
        return client.call("GET", "/livez", keys[i % len(keys)], None, b"")

    for i in range(200):  # warm-up, thrown away: connections, caches, the first plans
        verify(i)
        inclusion(i)
    client.errors.clear()
    phases = {"livez": livez, "verify": verify, "inclusion_proof": inclusion}
    per_round: dict[str, list[dict[str, float]]] = {name: [] for name in phases}
    cpu = []
    for _ in range(rounds):
        for name, call in phases.items():
            backends = _backends(url) if name == "verify" else []
            before = (_cpu_seconds(pid), sum(_cpu_seconds(p) for p in backends))
            wall = time.perf_counter()
            samples = [call(i) for i in range(requests)]
            wall = time.perf_counter() - wall
            if name == "verify":
                api_cpu = _cpu_seconds(pid) - before[0]
                db_cpu = sum(_cpu_seconds(p) for p in backends) - before[1]
                cpu.append(
                    {
                        "api_cpu_ms_per_verify": api_cpu / requests * 1000,
                        "db_cpu_ms_per_verify": db_cpu / requests * 1000,
                        "wall_s": wall,
                    }
                )
            per_round[name].append(
                {
                    "p50_ms": _percentile(samples, 0.5),
                    "p99_ms": _percentile(samples, 0.99),
                    "mean_ms": statistics.fmean(samples),
                }
            )
    out: dict[str, Any] = {"requests_per_round": requests, "rounds": rounds}
    for name, runs in per_round.items():
        out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": runs}
    out["verify_cpu"] = {k: statistics.median(c[k] for c in cpu) for k in cpu[0]} | {"runs": cpu}
    out["verify_database_reads"] = _probes(url, verify, requests, client)
    out["errors"] = client.errors[:20]
    out["error_count"] = len(client.errors)
    out["load_average"] = os.getloadavg()
    return out


# -- the run -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", metavar="URL")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--codes", type=int, default=1_000_000, help="codes per batch")
    parser.add_argument("--requests", type=int, default=1000, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the data dir and ingest.json here")
    parser.add_argument("--keep", action="store_true", help="do not drop the database")
    parser.add_argument(
        "--serve-only", action="store_true", help="measure the kept database of --workdir again"
    )
    parser.add_argument(
        "--child", nargs=5, metavar=("DATA_DIR", "URL", "BATCHES", "CODES", "PROGRESS")
    )
    args = parser.parse_args()
    if args.child:
        data_dir, url, batches, codes, progress = args.child
        ingest(Path(data_dir), url, int(batches), int(codes), Path(progress))
        return
    if not args.postgres:
        parser.error("--postgres URL is required (postgresql+psycopg://postgres@127.0.0.1/test)")
    if args.workdir is None:
        with tempfile.TemporaryDirectory() as tmp:
            run(args, Path(tmp))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)


def run(args: argparse.Namespace, workdir: Path) -> None:
    """Ingest (unless ``--serve-only``), finish, serve and measure, drop the database
    (unless ``--keep``: then ``--serve-only --workdir`` measures the same database again,
    also after an ingest stopped part-way: the batches it committed)."""
    import psycopg

    saved, progress, data_dir = workdir / "run.json", workdir / "batches.jsonl", workdir / "data"
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
    ).stdout.strip()
    if not args.serve_only:
        database = f"tracemark_scale_{os.getpid()}"
        with psycopg.connect(_dsn(args.postgres), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {database}")
        plan = {
            "commit": commit,
            "database": database,
            "codes_per_batch": args.codes,
            "batches_wanted": args.batches,
        }
        saved.write_text(json.dumps(plan))
        started = time.perf_counter()
        child = [
            sys.executable,
            "-m",
            "bench.pg_scale_bench",
            "--child",
            str(data_dir),
            _with_database(args.postgres, database),
            str(args.batches),
            str(args.codes),
            str(progress),
        ]
        try:
            subprocess.run(child, check=True, timeout=STEP_TIMEOUT, cwd=HERE)
        except BaseException:
            if not args.keep:
                _drop(args.postgres, database)
            raise
        saved.write_text(json.dumps(plan | {"ingest_wall_s": time.perf_counter() - started}))
    meta = json.loads(saved.read_text())
    meta["batches"] = [json.loads(line) for line in progress.read_text().splitlines()]
    url = _with_database(args.postgres, meta["database"])
    finished = workdir / "finish.json"
    if not finished.exists():
        finished.write_text(json.dumps(finish(url)))
    meta |= json.loads(finished.read_text())
    meta["serving_commit"] = commit  # with --serve-only, later than the ingest's
    try:
        serving = serve_and_measure(data_dir, url, meta, args.requests, args.rounds)
    finally:
        if not args.keep:
            _drop(args.postgres, meta["database"])
    report(meta, serving)


def _drop(url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def report(meta: dict[str, Any], serving: dict[str, Any]) -> None:
    batches = meta["batches"]
    goods = len(batches) * meta["codes_per_batch"]
    total_ingest = sum(b["registry_ingest_s"] for b in batches)
    total_copy = sum(b["copy_unindexed_s"] for b in batches)
    tables = [s for s in meta["sizes"] if s["kind"] == "table"]
    data: dict[str, Any] = {
        "commit": meta["commit"],
        "serving_commit": meta["serving_commit"],
        "goods": goods,
        "batches_of": meta["codes_per_batch"],
        "tree_size": meta["tree_size"],
        "batches_wanted": meta["batches_wanted"],
        "batches_done": len(batches),
        "ingest_wall_s": meta.get("ingest_wall_s"),
        "registry_ingest_s": total_ingest,
        "copy_unindexed_s": total_copy,
        "ratio_registry_to_copy": total_ingest / total_copy,
        "goods_per_s": goods / total_ingest,
        "first_batch": batches[0],
        "last_batch": batches[-1],
        "batches": batches,
        "database_bytes": meta["database_bytes"],
        "bytes_per_good": meta["database_bytes"] / goods,
        "floor_table_bytes_per_row": meta["floor_table_bytes"] / goods,
        "tables_bytes_per_good": {t["name"]: t["bytes"] / goods for t in tables},
        "sizes": meta["sizes"],
        "serving": serving,
    }
    # Named by the run's plan: a 10^7 run stopped part-way says so in batches_done.
    planned = meta["batches_wanted"] * meta["codes_per_batch"]
    name = "pg_scale" if planned == 10_000_000 else f"pg_scale-{planned}"
    path = save(name, data)
    first, last = batches[0], batches[-1]
    print(f"commit {meta['commit']}; {goods:,} goods in {len(batches)} batches")
    print(
        f"ingest {total_ingest:.0f} s ({goods / total_ingest:,.0f} goods/s), COPY unindexed "
        f"{total_copy:.1f} s: {total_ingest / total_copy:.1f}x"
    )
    print(
        f"batch 1: {first['goods_per_s']:,.0f} goods/s ({first['ratio_registry_to_copy']:.1f}x); "
        f"batch {len(batches)}: {last['goods_per_s']:,.0f} goods/s "
        f"({last['ratio_registry_to_copy']:.1f}x)"
    )
    print(f"database {meta['database_bytes'] / goods:.0f} B/good")
    for t in tables[:8]:
        print(f"  {t['name']}: {t['bytes'] / goods:.1f} B/good")
    for name_ in ("livez", "verify", "inclusion_proof"):
        s = serving[name_]
        print(f"{name_}: p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms")
    c = serving["verify_cpu"]
    print(
        f"CPU per verify: api {c['api_cpu_ms_per_verify']:.2f} ms, "
        f"db {c['db_cpu_ms_per_verify']:.2f} ms; errors {serving['error_count']}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
