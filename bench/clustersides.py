"""The two server sides of ``bench.cluster_bench``, started on loopback: one ``tracemark
serve`` on SQLite, and HAProxy -> two ``serve --role api`` replicas on PostgreSQL with a
private Redis and a process of the singleton roles; each with the processes its CPU counts."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.loopback import free_port, http_status
from bench.processcpu import Groups, command_name, descendants

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
HAPROXY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"
#: The cluster's processes name their PostgreSQL sessions with this, then their own name.
APP_NAME = f"tmcluster{secrets.token_hex(3)}"
STARTUP_SECONDS = 180.0
#: Groups reported but not counted: no verification runs there (anvil), or the machine's other
#: users share them (PostgreSQL's own background processes).
UNCOUNTED = ("anvil", "postgresql background")


def _until(what: str, condition: Callable[[], bool], seconds: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.2)


@dataclass
class Side:
    """One server side: where clients connect, its platform keys, what its CPU counts."""

    name: str
    port: int
    keys: list[str]
    groups: Callable[[], Groups]
    #: Groups reported but left out of the per-request CPU.
    uncounted: tuple[str, ...]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Running totals of the side's round trips (Redis commands, PostgreSQL transactions), for
    #: ``bench.cluster_bench.round_trips``; None where there are none (one process on SQLite).
    counters: Callable[[], dict[str, float]] | None = None


class Processes:
    """Children started by the bench, each stopped (TERM, then KILL) at the end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(args, env=env, stdout=log, stderr=log)
        self.started.append(process)
        return process

    def alive(self, process: subprocess.Popen[bytes], name: str) -> bool:
        if process.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        return True

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.started):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _without_anvil(pid: int) -> list[int]:
    return [pid, *(p for p in descendants(pid) if command_name(p) != "anvil")]


def _anvils(pid: int) -> list[int]:
    return [p for p in descendants(pid) if command_name(p) == "anvil"]


def start_single(procs: Processes, data_dir: Path, keys: list[str]) -> Side:
    port = free_port()
    env = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(data_dir),
        "TRACEMARK_DATABASE_URL": "",
        "TRACEMARK_API_HOST": "127.0.0.1",
        "TRACEMARK_API_PORT": str(port),
        "TRACEMARK_LOG_LEVEL": "WARNING",
        "TRACEMARK_RATE_LIMIT_STORAGE": "memory://",
    }
    env.pop("TRACEMARK_CHAIN_RPC_URL", None)  # its embedded anvil, as `make run`
    serve = procs.start("single", [TRACEMARK, "serve"], env)
    _until(
        "the single process answers",
        lambda: procs.alive(serve, "single") and http_status(port, "/livez") == 200,
    )

    def groups() -> Groups:
        return {
            "serve (and its risk worker)": _without_anvil(serve.pid),
            "anvil": _anvils(serve.pid),
        }

    return Side("single", port, keys, groups, UNCOUNTED, [serve])


def _pg_pids(admin: Any) -> dict[str, list[int]]:
    """The cluster's PostgreSQL backends by the process they serve (its application name),
    and the server's own background processes."""
    from sqlalchemy import text

    with admin.connect() as conn:
        rows = conn.execute(
            text("SELECT pid, backend_type, coalesce(application_name, '') FROM pg_stat_activity")
        ).all()
    found: dict[str, list[int]] = {"postgresql background": []}
    for pid, kind, app in rows:
        if app.startswith(APP_NAME):
            found.setdefault(f"postgresql backends of {app.removeprefix(APP_NAME + '-')}", [])
            found[f"postgresql backends of {app.removeprefix(APP_NAME + '-')}"].append(pid)
        elif kind != "client backend":
            found["postgresql background"].append(pid)
    return found


def start_cluster(
    procs: Processes,
    stack: contextlib.ExitStack,
    data_dir: Path,
    database_url: str,
    keys: list[str],
    admin: Any,
    database: str,
) -> Side:
    from eth_account import Account

    from anchoring.chain import Chain
    from anchoring.devchain import DevChain
    from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
    from registry.eip712 import DEV_DOMAIN

    chain = stack.enter_context(DevChain(block_time=1.0))
    Chain.connect(chain.rpc_url, DEV_DOMAIN.verifying_contract).deploy(
        Account.from_key(ANVIL_ACCOUNT_0_KEY)
    )
    redis_port = free_port()
    redis = procs.start(
        "redis",
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        dict(os.environ),
    )
    _until("redis answers", lambda: procs.alive(redis, "redis") and _redis_up(redis_port), 20)
    separator = "&" if "?" in database_url else "?"
    base = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(data_dir),
        "TRACEMARK_CHAIN_RPC_URL": chain.rpc_url,
        "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
        "TRACEMARK_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{redis_port}/0",
        "TRACEMARK_RATE_LIMIT_PREFIX": "bench",
        "TRACEMARK_RATE_LIMIT_REPLICAS": "2",
        "TRACEMARK_TRUSTED_PROXIES": "127.0.0.1",
        "TRACEMARK_API_HOST": "127.0.0.1",
        "TRACEMARK_LOG_LEVEL": "WARNING",
    }

    def env(name: str, **extra: str) -> dict[str, str]:
        url = f"{database_url}{separator}application_name={APP_NAME}-{name}"
        return {**base, "TRACEMARK_DATABASE_URL": url, **extra}

    roles = procs.start(
        "roles",
        [TRACEMARK, "serve", "--role", "sequencer,anchoring,telemetry,risk,webhooks"],
        env("roles"),
    )
    ports = [free_port(), free_port()]
    replicas = [
        procs.start(
            f"api{n}",
            [TRACEMARK, "serve", "--role", "api"],
            env(f"api{n}", TRACEMARK_API_PORT=str(port)),
        )
        for n, port in enumerate(ports, start=1)
    ]
    for n, (replica, port) in enumerate(zip(replicas, ports, strict=True), start=1):
        _replica_ready(procs, replica, f"api{n}", port)
    lb_port = free_port()
    haproxy = procs.start(
        "haproxy",
        [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
        {
            **os.environ,
            "TRACEMARK_LB_BIND": f"127.0.0.1:{lb_port}",
            **{f"TRACEMARK_API_{n}": f"127.0.0.1:{p}" for n, p in enumerate(ports, start=1)},
        },
    )
    _until(
        "HAProxy answers",
        lambda: procs.alive(haproxy, "haproxy") and http_status(lb_port, "/livez") == 200,
    )

    def groups() -> Groups:
        pg = _pg_pids(admin)
        return {
            "api replicas": [r.pid for r in replicas],
            "roles process": _without_anvil(roles.pid),
            "haproxy": [haproxy.pid],
            "redis": [redis.pid],
            **pg,
            "anvil": _anvils(os.getpid()),
        }

    return Side(
        "cluster",
        lb_port,
        keys,
        groups,
        UNCOUNTED,
        [roles, *replicas, haproxy, redis],
        partial(_counters, admin, database, redis_port),
    )


def _counters(admin: Any, database: str, redis_port: int) -> dict[str, float]:
    """The cluster's round trips so far: Redis's commands by name (its own ``INFO
    commandstats``: the private server sees nothing else), and the bench database's
    transactions and rows (``pg_stat_database``: only the cluster uses that database; a
    backend reports its counts within ~1 s while busy, ~10 s once idle)."""
    import redis
    from sqlalchemy import text

    with admin.connect() as conn:
        row = conn.execute(
            text(
                "SELECT xact_commit + xact_rollback, tup_inserted, tup_returned + tup_fetched "
                "FROM pg_stat_database WHERE datname = :name"
            ),
            {"name": database},
        ).one()
    found = {
        "postgresql transactions": float(row[0]),
        "postgresql rows inserted": float(row[1]),
        "postgresql rows read": float(row[2]),
    }
    client = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    for name, calls in stats.items():
        found[f"redis {name.removeprefix('cmdstat_')}"] = float(calls["calls"])
    return found


def _ready(procs: Processes, process: subprocess.Popen[bytes], name: str, port: int) -> bool:
    return procs.alive(process, name) and http_status(port, "/readyz") == 200


def _replica_ready(
    procs: Processes, process: subprocess.Popen[bytes], name: str, port: int
) -> None:
    try:
        _until(f"{name} is ready", partial(_ready, procs, process, name, port))
    except RuntimeError as exc:
        tail = (procs.logs / f"{name}.log").read_text(errors="replace")[-1500:]
        status = http_status(port, "/readyz")
        raise RuntimeError(f"{exc}; /readyz {status}; its log:\n{tail}") from None


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
