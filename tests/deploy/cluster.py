"""A whole registry on loopback for the deploy tests (issue 16): PostgreSQL (a schema of its
own), a private Redis the test may stop, anvil with the registry's contract, two processes
for each of the ``sequencer`` and ``anchoring`` roles (one holds the lease, one stands by),
two ``serve --role api`` replicas and HAProxy on ``deploy/haproxy.cfg`` as shipped; and the
small HTTP client, ledger and checks the tests share."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import text

from anchoring.chain import Chain
from anchoring.devchain import DevChain, free_port
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from registry.eip712 import DEV_DOMAIN
from registry.leaf import EntryKind
from registry.service import Registry
from registry.settings import Settings
from tests.api.test_roles import TRACEMARK, Deployment, _until
from tests.redisserver import RedisServer

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
#: The path HAProxy asks each replica (its ``http-check send`` line).
CHECK_PATH = re.findall(r"http-check send meth GET uri (\S+)", CONFIG.read_text())[0]
REQUIRE_HAPROXY = os.environ.get("TRACEMARK_REQUIRE_HAPROXY") == "1"
#: The singleton roles' lease in these tests: a dead holder's role passes on within 4/3 of it.
LEASE_SECONDS = 2.0
#: How long the processes may take to start: seconds of CPU each, on a 2-core machine that
#: other test runs share (minutes were seen at a load of 15).
STARTUP = 300.0


def haproxy_binary() -> str:
    """HAProxy's path; skip without it unless ``TRACEMARK_REQUIRE_HAPROXY=1`` (CI)."""
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if binary is None:
        message = "haproxy is not installed (apt-get install haproxy): the balancer test needs it"
        if REQUIRE_HAPROXY:
            pytest.fail(message)
        pytest.skip(message)
    return binary


@dataclass
class Balancer:
    """HAProxy started on deploy/haproxy.cfg as it is, its log in a file."""

    process: subprocess.Popen[bytes]
    log: Path
    port: int

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def start_balancer(binary: str, tmp: Path, replicas: list[int], check_inter: str) -> Balancer:
    """HAProxy on a free loopback port in front of ``replicas``, checking each every
    ``check_inter`` (the cfg's ``TRACEMARK_LB_CHECK_INTER``)."""
    port = free_port()
    env = {
        **os.environ,
        "TRACEMARK_LB_BIND": f"127.0.0.1:{port}",
        "TRACEMARK_LB_CHECK_INTER": check_inter,
        **{f"TRACEMARK_API_{n}": f"127.0.0.1:{p}" for n, p in enumerate(replicas, start=1)},
    }
    check = subprocess.run(
        [binary, "-c", "-f", str(CONFIG)], env=env, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    log = tmp / "haproxy.log"
    with log.open("wb") as sink:
        # -db: in the foreground, no daemon; the test owns the process and kills it.
        process = subprocess.Popen(
            [binary, "-db", "-f", str(CONFIG)], env=env, stdout=sink, stderr=sink
        )
    return Balancer(process, log, port)


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (a refused or cut connection)
    body: bytes
    headers: dict[str, str]
    sent: float  # monotonic, before the request was sent
    received: float  # monotonic, once the answer was read

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem_type(self) -> str:
        try:
            return str(self.json().get("type", ""))
        except ValueError:
            return ""


class Client:
    """One keep-alive connection to ``port`` (reopened after any failure): one per thread."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self._connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        sent = time.monotonic()
        head = {"Content-Type": "application/json"} if body is not None else {}
        if self.token is not None:
            head["Authorization"] = f"Bearer {self.token}"
        head.update(headers or {})
        payload = None if body is None else json.dumps(body).encode()
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            self._connection.request(method, path, payload, head)
            reply = self._connection.getresponse()
            data = reply.read()
            found = {k.lower(): v for k, v in reply.getheaders()}
            if found.get("connection", "").lower() == "close":
                self.close()
            return Answer(reply.status, data, found, sent, time.monotonic())
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(0, type(exc).__name__.encode(), {}, sent, time.monotonic())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def get(port: int, path: str, token: str | None = None) -> Answer:
    client = Client(port, token)
    try:
        return client.request("GET", path)
    finally:
        client.close()


# -- what the clients were told ------------------------------------------------------------------


@dataclass
class Ledger:
    """Every write a client was told is done (acknowledged), across the whole module: the log
    must hold each exactly once and nothing else."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    registered: list[bytes] = field(default_factory=list)
    revoked: list[bytes] = field(default_factory=list)
    #: transfer ids from the receipts (each a TRANSFER entry)
    transfers: list[int] = field(default_factory=list)

    def add(self, kind: str, value: Any) -> None:
        with self.lock:
            getattr(self, kind).append(value)


# -- the cluster ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    deployment: Deployment
    redis: RedisServer
    devchain: DevChain
    chain: Chain
    balancer: Balancer
    #: The replicas' own ports (api1, api2), for requests that must reach one of them.
    replicas: list[int]
    #: monotonic time HAProxy was up (its checks began)
    started: float
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def port(self) -> int:
        """The balancer's: where clients connect."""
        return self.balancer.port

    @property
    def registry(self) -> Registry:
        return self.deployment.registry

    def holder(self, role: str) -> subprocess.Popen[bytes] | None:
        pid = self.deployment.holder_pid(role)
        return next((p for p in self.deployment.processes if p.pid == pid), None)

    def tracemark(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The ``tracemark`` command on this cluster's settings."""
        return subprocess.run(
            [TRACEMARK, *args],
            env=self.deployment.env,
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )

    def down_lines(self) -> list[str]:
        """HAProxy's log lines taking a replica out."""
        return [line for line in self.balancer.text().splitlines() if " is DOWN" in line]


@dataclass(frozen=True)
class ClusterShape:
    """What the module's fixture starts: the HAProxy check interval and extra settings."""

    check_inter: str = "200ms"
    env: dict[str, str] = field(default_factory=dict)


def run_cluster(tmp: Path, database_url: str, shape: ClusterShape) -> Iterator[Cluster]:
    """The body of a fixture: every part started, ready and behind HAProxy; all stopped
    afterwards (processes killed, Redis and anvil stopped)."""
    binary = haproxy_binary()
    redis = RedisServer()
    redis.start()
    devchain = DevChain(block_time=0.2).start()
    registry = None
    balancer = None
    deployment = None
    try:
        operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
        chain = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract)
        assert chain.deploy(operator) == DEV_DOMAIN.verifying_contract
        data_dir = tmp / "data"
        # Keys and schema made once, before the processes (``tracemark init``'s part).
        registry = Registry.open(Settings(data_dir=data_dir, database_url=database_url))
        env = {
            **os.environ,
            "TRACEMARK_DATA_DIR": str(data_dir),
            "TRACEMARK_DATABASE_URL": database_url,
            "TRACEMARK_LEASE_SECONDS": str(LEASE_SECONDS),
            "TRACEMARK_SEQUENCER_INTERVAL": "0.05",
            "TRACEMARK_SEQUENCER_BATCH_SIZE": "10",
            "TRACEMARK_LOG_LEVEL": "INFO",
            "TRACEMARK_CHAIN_RPC_URL": devchain.rpc_url,
            "TRACEMARK_ANCHOR_KEY": ANVIL_ACCOUNT_0_KEY,
            "TRACEMARK_ANCHOR_MAX_ENTRIES": "1",
            "TRACEMARK_ANCHOR_MAX_AGE": "0",
            "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
            "TRACEMARK_RATE_LIMIT_STORAGE": redis.url,
            "TRACEMARK_RATE_LIMIT_PREFIX": f"tmcluster-{secrets.token_hex(4)}",
            "TRACEMARK_RATE_LIMIT_REPLICAS": "2",
            "TRACEMARK_TRUSTED_PROXIES": "127.0.0.1",
            "TRACEMARK_API_HOST": "127.0.0.1",
            **shape.env,
        }
        deployment = Deployment(registry, env, tmp)
        # Everything at once: a start costs seconds of CPU each (imports, the keys), so on a
        # loaded machine one after the other would take minutes. Whichever process of a role
        # is first takes its lease; the other then finds it held.
        for role in ("sequencer", "anchoring"):
            for n in (1, 2):
                deployment.start(f"{role}{n}", role)
        ports = [free_port(), free_port()]
        base = dict(env)
        for n, port in enumerate(ports, start=1):
            deployment.env = {**base, "TRACEMARK_API_PORT": str(port)}
            deployment.start(f"api{n}", "api")
        deployment.env = base
        for role in ("sequencer", "anchoring"):
            held = _held_with_standby(deployment, role)
            _until(f"{role}: one holds, one stands by", held, STARTUP)
        for n, port in enumerate(ports, start=1):
            _until(f"api{n} is ready", _ready(port), STARTUP)
        balancer = start_balancer(binary, tmp, ports, shape.check_inter)
        _until("HAProxy answers", lambda: get(balancer.port, "/livez").status == 200, 30)
        yield Cluster(deployment, redis, devchain, chain, balancer, ports, time.monotonic())
    finally:
        if balancer is not None:
            balancer.stop()
        if deployment is not None:
            for process in deployment.processes:
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
        if registry is not None:
            registry.engine.dispose()
        devchain.stop()
        redis.stop()


def _ready(port: int) -> Callable[[], bool]:
    return lambda: get(port, CHECK_PATH).status == 200


def _held_with_standby(deployment: Deployment, role: str) -> Callable[[], bool]:
    def ready() -> bool:
        if deployment.holder_pid(role) is None:
            return False
        return any(
            f"{role}: another process holds the lease" in deployment.log_of(f"{role}{n}")
            for n in (1, 2)
        )

    return ready


# -- the checks ----------------------------------------------------------------------------------


def check_log_holds_the_ledger_once(cluster: Cluster) -> int:
    """Every acknowledged write is in the log exactly once and nothing else is (but the
    sequencer's state commitments); the leaf indices are contiguous and ``tracemark log
    check`` is clean. Returns the tree size."""
    deployment, ledger = cluster.deployment, cluster.ledger
    _until(
        "the queue is drained",
        lambda: deployment.scalar("SELECT count(*) FROM entries WHERE leaf_index IS NULL") == 0,
        60,
    )
    with deployment.engine.connect() as conn:
        indices = [r[0] for r in conn.execute(text("SELECT leaf_index FROM entries"))]
        by_kind = {
            kind: sorted(
                bytes(r[0])
                for r in conn.execute(
                    text("SELECT fingerprint FROM entries WHERE kind = :k"), {"k": int(kind)}
                )
            )
            for kind in (EntryKind.REGISTER, EntryKind.REVOKE)
        }
        transfers = sorted(int(r[0]) for r in conn.execute(text("SELECT id FROM transfers")))
        transfer_entries = conn.execute(
            text("SELECT count(*) FROM entries WHERE kind = :k"), {"k": int(EntryKind.TRANSFER)}
        ).scalar_one()
        # The registry's own entries: the state map's root at each head (issue 14).
        others = {
            EntryKind(int(kind)): int(count)
            for kind, count in conn.execute(
                text("SELECT kind, count(*) FROM entries WHERE kind > 3 GROUP BY kind")
            )
        }
        size = int(conn.execute(text("SELECT tree_size FROM log_state")).scalar_one())
    assert sorted(indices) == list(range(len(indices))) and size == len(indices)
    assert by_kind[EntryKind.REGISTER] == sorted(ledger.registered)
    assert by_kind[EntryKind.REVOKE] == sorted(ledger.revoked)
    assert transfers == sorted(ledger.transfers) and transfer_entries == len(transfers)
    assert set(others) <= {EntryKind.STATE_COMMITMENT}, others
    writes = len(ledger.registered) + len(ledger.revoked) + len(transfers)
    assert len(indices) == writes + sum(others.values())
    check = cluster.tracemark("log", "check", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    return size
