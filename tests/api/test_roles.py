"""``tracemark serve --role sequencer`` in two real processes on one PostgreSQL database
(issue 16): one sequences; killed mid-load (SIGKILL), the other takes over within the
lease's bound and every queued entry is sequenced exactly once; paused past its lease
(SIGSTOP, then SIGCONT), the old holder signs nothing more. And the roles' command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine, text

from registry.creator import CreatorKeys
from registry.lease import Lease
from registry.service import Registry
from registry.settings import Settings
from tests.registry.helpers import registration

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
#: The lease's length in these tests: a dead holder's role passes on within 4/3 of it.
LEASE_SECONDS = 2.0
TAKEOVER_BOUND = LEASE_SECONDS * 4 / 3
#: What a loaded 2-core machine may add to that bound (process scheduling, the standby's own
#: start): the assertion is about the lease's arithmetic, not about speed.
SCHEDULING_SLACK = 4.0
#: Registrations per test, integrated ten per batch: dozens of batches, killed among them.
LOAD = 240


@dataclass
class Deployment:
    registry: Registry
    env: dict[str, str]
    tmp: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        return self.registry.engine

    def start(self, name: str, role: str = "sequencer") -> subprocess.Popen[bytes]:
        """``tracemark serve --role ROLE`` in a process of its own, its log in ``name``.log."""
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [TRACEMARK, "serve", "--role", role],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        self.processes.append(process)
        return process

    def log_of(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def until_standing_by(self, name: str, role: str = "sequencer") -> None:
        """Wait until ``name`` is up and has found the lease held (a start takes seconds on a
        loaded machine; the takeover bound counts from a standby that exists)."""
        _until(
            f"{name} stands by",
            lambda: f"{role}: another process holds the lease" in self.log_of(name),
            60,
        )

    def holder_pid(self, role: str = "sequencer") -> int | None:
        """The process holding ``role``'s lease now (unexpired), if any."""
        with self.engine.connect() as conn:
            holder = conn.execute(
                text(
                    "SELECT holder FROM role_leases WHERE role = :role AND expires_at_ms"
                    " > (extract(epoch from clock_timestamp()) * 1000)::bigint"
                ),
                {"role": role},
            ).scalar()
        return None if holder is None else int(str(holder).split(":")[1])

    def scalar(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str) -> Iterator[Deployment]:
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, database_url=postgres_url)
    registry = Registry.open(settings)  # keys and schema made once, before the processes
    env = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(data_dir),
        "TRACEMARK_DATABASE_URL": postgres_url,
        "TRACEMARK_LEASE_SECONDS": str(LEASE_SECONDS),
        "TRACEMARK_SEQUENCER_INTERVAL": "0.05",
        "TRACEMARK_SEQUENCER_BATCH_SIZE": "10",
        "TRACEMARK_LOG_LEVEL": "INFO",
    }
    deployment = Deployment(registry, env, tmp_path)
    try:
        yield deployment
    finally:
        for process in deployment.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(10)
        registry.engine.dispose()


def _until(what: str, condition: Callable[[], bool], seconds: float = 30) -> float:
    """Wait for ``condition``; returns how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - started


class Load:
    """Registrations queued one by one from a thread, as API replicas would."""

    def __init__(self, registry: Registry, count: int, pause: float = 0.01) -> None:
        self.fingerprints: list[bytes] = []
        creator = CreatorKeys(Account.create(), os.urandom(32))

        def run() -> None:
            for _ in range(count):
                fingerprint = os.urandom(32)
                registry.register(registration(creator, registry.clock(), fingerprint=fingerprint))
                self.fingerprints.append(fingerprint)
                time.sleep(pause)

        self.thread = threading.Thread(target=run, name="load")
        self.thread.start()

    def finish(self) -> None:
        self.thread.join(120)
        assert not self.thread.is_alive()


def _heads_signed(log: str) -> list[int]:
    return [int(size) for size in re.findall(r"signed tree head size=(\d+)", log)]


def _check_sequenced_once(deployment: Deployment, load: Load) -> None:
    """Every queued entry is in the log once, at contiguous leaf indices; the tree and every
    signed head are the entries' (``tracemark log check``)."""
    _until(
        "the queue is drained",
        lambda: deployment.scalar("SELECT count(*) FROM entries WHERE leaf_index IS NULL") == 0,
    )
    with deployment.engine.connect() as conn:
        indices = conn.execute(text("SELECT leaf_index FROM entries ORDER BY leaf_index")).all()
        registered = conn.execute(text("SELECT fingerprint FROM entries WHERE kind = 1")).all()
        size = conn.execute(text("SELECT tree_size FROM log_state")).scalar_one()
    assert [row[0] for row in indices] == list(range(len(indices)))
    assert size == len(indices)
    assert sorted(bytes(row[0]) for row in registered) == sorted(load.fingerprints)
    check = subprocess.run(
        [TRACEMARK, "log", "check", "--json"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_killed_sequencer_is_taken_over_and_every_entry_is_sequenced_once(
    deployment: Deployment,
) -> None:
    first = deployment.start("first")
    _until("the first process holds the lease", lambda: deployment.holder_pid() == first.pid)
    second = deployment.start("second")
    deployment.until_standing_by("second")
    load = Load(deployment.registry, LOAD)
    _until("the first sequences", lambda: deployment.scalar("SELECT tree_size FROM log_state") > 60)
    assert deployment.holder_pid() == first.pid  # the second stands by
    first.kill()  # SIGKILL: no release, the lease expires on its own
    killed_at = time.monotonic()
    assert first.wait(10) == -signal.SIGKILL
    _until("the second takes over", lambda: deployment.holder_pid() == second.pid)
    took = time.monotonic() - killed_at
    assert took < TAKEOVER_BOUND + SCHEDULING_SLACK, (took, deployment.log_of("second")[-2000:])
    load.finish()
    _check_sequenced_once(deployment, load)
    first_heads = _heads_signed(deployment.log_of("first"))
    second_heads = _heads_signed(deployment.log_of("second"))
    assert first_heads and second_heads  # both sequenced: one before the kill, one after
    assert max(first_heads) < min(second_heads)
    # Taken twice (token 1, then 2): no flapping while both were alive.
    assert deployment.scalar("SELECT token FROM role_leases WHERE role = 'sequencer'") == 2


def test_a_paused_holder_past_its_lease_signs_nothing_after_the_takeover(
    deployment: Deployment,
) -> None:
    first = deployment.start("first")
    _until("the first process holds the lease", lambda: deployment.holder_pid() == first.pid)
    second = deployment.start("second")
    deployment.until_standing_by("second")
    load = Load(deployment.registry, LOAD)
    _until("the first sequences", lambda: deployment.scalar("SELECT tree_size FROM log_state") > 60)
    first.send_signal(signal.SIGSTOP)  # perhaps inside a batch's transaction
    paused_at = time.monotonic()
    # Frozen mid-transaction, PostgreSQL ends its session after the lease's length too.
    _until("the second takes over", lambda: deployment.holder_pid() == second.pid)
    took = time.monotonic() - paused_at
    assert took < LEASE_SECONDS * 7 / 3 + SCHEDULING_SLACK, (took, deployment.log_of("second"))
    taken_at_size = deployment.scalar("SELECT tree_size FROM log_state")
    _until(
        "the second sequences",
        lambda: deployment.scalar("SELECT tree_size FROM log_state") > taken_at_size + 20,
    )
    first.send_signal(signal.SIGCONT)
    load.finish()
    _check_sequenced_once(deployment, load)
    # The first wakes up believing nothing; its heartbeat finds the token changed, and
    # anything it was about to commit is refused by the fence.
    # 30 s, not 15: once (a fresh-clone CI run, 2 workers) the first had not logged it after
    # 15 s; not understood yet, so its log's tail goes into the failure.
    try:
        _until("the first notices", lambda: "lease lost" in deployment.log_of("first"), 30)
    except pytest.fail.Exception:
        pytest.fail(f"the first never noticed; its log ends: {deployment.log_of('first')[-4000:]}")
    assert first.poll() is None  # it stands by, alive
    first_heads = _heads_signed(deployment.log_of("first"))
    second_heads = _heads_signed(deployment.log_of("second"))
    assert first_heads and second_heads
    assert max(first_heads) < min(second_heads)
    assert deployment.holder_pid() == second.pid
    assert deployment.scalar("SELECT token FROM role_leases WHERE role = 'sequencer'") == 2


def test_roles_apart_need_postgresql_and_known_names(tmp_path: Path) -> None:
    env = {**os.environ, "TRACEMARK_DATA_DIR": str(tmp_path / "data")}
    env.pop("TRACEMARK_DATABASE_URL", None)
    unknown = subprocess.run(
        [TRACEMARK, "serve", "--role", "api,sequencr"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 3
    assert "unknown role 'sequencr'" in unknown.stderr
    assert not (tmp_path / "data").exists()  # refused before anything is made
    sqlite = subprocess.run(
        [TRACEMARK, "serve", "--role", "sequencer"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sqlite.returncode == 8, sqlite.stderr
    assert "only on PostgreSQL" in sqlite.stderr


def test_tracemark_anchor_does_not_sign_beside_the_anchoring_role(
    deployment: Deployment,
) -> None:
    """While another process holds the anchoring role, ``tracemark anchor --now`` refuses
    (exit 7, one line) before it opens the chain, and leaves the lease with its holder."""
    holder = Lease(deployment.engine, "anchoring", seconds=60)
    assert holder.acquire()
    refused = subprocess.run(
        [TRACEMARK, "anchor", "--now"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 7, refused.stderr
    assert "another process holds the anchoring role" in refused.stderr
    assert holder.renew()  # still its own
    assert deployment.scalar("SELECT count(*) FROM anchors") == 0
