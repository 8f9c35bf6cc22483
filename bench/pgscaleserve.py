"""The 10^7-goods benchmark's serving phase: ``tracemark serve --role api`` on the database, one
keep-alive client's latencies, the CPU of the API and its backends, PostgreSQL's counters."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import percentile
from bench.loopback import free_port, wait_until_serving
from bench.pgscaleingest import _dsn
from bench.processcpu import live_cpu_seconds

TRACEMARK = str(Path(sys.executable).parent / "tracemark")


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
            before = (live_cpu_seconds(pid), sum(live_cpu_seconds(p) for p in backends))
            wall = time.perf_counter()
            samples = [call(i) for i in range(requests)]
            wall = time.perf_counter() - wall
            if name == "verify":
                api_cpu = live_cpu_seconds(pid) - before[0]
                db_cpu = sum(live_cpu_seconds(p) for p in backends) - before[1]
                cpu.append(
                    {
                        "api_cpu_ms_per_verify": api_cpu / requests * 1000,
                        "db_cpu_ms_per_verify": db_cpu / requests * 1000,
                        "wall_s": wall,
                    }
                )
            per_round[name].append(
                {
                    "p50_ms": percentile(samples, 0.5),
                    "p99_ms": percentile(samples, 0.99),
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
