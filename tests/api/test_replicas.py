"""Several API replicas on one PostgreSQL (issue 16): bulk jobs name their runner and outlive
it only by a bounded time; ``/readyz`` of a replica is its own health, the cluster's state
(anchoring, the singleton roles' holders) beside it without failing it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from api.app import create_app
from api.jobs import JobRunner, JobSpec
from registry.batches import CHUNK_SIZE, BatchCheck, BatchResult, Progress
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.lease import Lease
from registry.migrate import upgrade
from registry.service import Registry
from tests.registry.helpers import NO_ROYALTY

pytestmark = pytest.mark.postgres

#: A replica's jobs outlive its last heartbeat by this much (short, for the tests).
SECONDS = 1.5


@pytest.fixture
def pg_registry(postgres_url: str) -> Iterator[Registry]:
    engine = create_db_engine(postgres_url)
    upgrade(engine)
    yield Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    engine.dispose()


def job_row(engine: Engine, job_id: str) -> tuple[str, str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT state, error_code, runner FROM jobs WHERE id = :id"), {"id": job_id}
        ).one()
    return row.state, row.error_code, row.runner


def blocking_job(runner: JobRunner, job_id: str, release: threading.Event) -> None:
    """A job that runs until ``release`` (the batch itself is not what is tested here)."""

    def run(_fingerprints: object, _progress: object, _check: object) -> BatchResult:
        assert release.wait(60)
        raise RuntimeError("the test's job ends here")

    runner.submit(JobSpec(job_id, runner.spool(), False, run))


def wait_state(engine: Engine, job_id: str, state: str, timeout: float) -> float:
    """Seconds until the job reaches ``state``; fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if job_row(engine, job_id)[0] == state:
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"job {job_id} is {job_row(engine, job_id)[0]}, not {state}, after {timeout} s")


def test_a_starting_replica_leaves_a_live_replicas_job_alone(pg_registry: Registry) -> None:
    """Replica A runs a job; replica B (a whole app) starts and sweeps for ``3 * SECONDS``:
    A's job stays running, then ends by A. A job of no runner (from before 0020) is failed."""
    engine = pg_registry.engine
    a = JobRunner(pg_registry, seconds=SECONDS)
    a.start()
    release = threading.Event()
    try:
        job = a.create("creator", "registrations")
        blocking_job(a, job, release)
        wait_state(engine, job, "running", 10)
        legacy = a.create("creator", "registrations")
        with engine.begin() as conn:  # as a row written before runners were recorded
            conn.execute(text("UPDATE jobs SET runner = NULL WHERE id = :id"), {"id": legacy})
        app_b = create_app(pg_registry, roles_apart=True, lease_seconds=SECONDS)
        with TestClient(app_b):
            assert job_row(engine, legacy)[:2] == ("failed", "interrupted")
            time.sleep(3 * SECONDS)  # B's heartbeat sweeps several times meanwhile
            assert job_row(engine, job) == ("running", None, a.runner)
        release.set()
        assert wait_state(engine, job, "failed", 10) >= 0
        assert job_row(engine, job)[1] == "internal"  # A's own ending, not "interrupted"
    finally:
        release.set()
        a.close()


def test_a_frozen_replicas_batch_writes_nothing_once_its_job_was_failed(
    pg_registry: Registry, creator: CreatorKeys
) -> None:
    """Replica A's heartbeat stops (a replica frozen whole) mid-batch; replica B fails its
    job; A wakes and its batch reaches its commit: the batch rolls back whole (no entry, no
    record, the nonce unused) and the job stays failed, never ``done``."""
    engine = pg_registry.engine
    assert creator.code_key is not None
    codes = [f"FROZEN-{i:05d}" for i in range(6_000)]  # two chunks: frozen between them
    batch = prepare_code_batch(codes_source("\n".join(codes) + "\n"), creator.code_key)
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="card",
        use=Use.SINGLE,
        royalty_policy=NO_ROYALTY,
        metadata={},
        now=pg_registry.clock(),
        new_product=True,
    )
    assert pg_registry.latest_tree_head() is None  # an empty log: no head yet
    a = JobRunner(pg_registry, seconds=SECONDS)  # never started: no heartbeat, as if frozen
    b = JobRunner(pg_registry, seconds=SECONDS)
    b.start()
    frozen, wake = threading.Event(), threading.Event()

    def stream() -> Iterator[bytes]:
        for number, fingerprint in enumerate(batch.fingerprints()):
            if number == CHUNK_SIZE:  # the first chunk is in the log's tables, uncommitted
                frozen.set()
                assert wake.wait(60)
            yield fingerprint

    def run(_fingerprints: object, progress: Progress, check: BatchCheck) -> BatchResult:
        return pg_registry.register_batch(request, stream(), progress=progress, check=check)

    try:
        job = a.create("creator", "registrations")
        a.submit(JobSpec(job, a.spool(), False, run))
        assert frozen.wait(30)
        wait_state(engine, job, "failed", 10 * SECONDS)  # B, once A's time ran out
        wake.set()
        a.close()  # A's worker ends its job: the batch reaches its commit
        assert job_row(engine, job) == ("failed", "interrupted", a.runner)
        assert pg_registry.latest_tree_head() is None  # the batch's head rolled back too
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 0
        # The record and its nonce rolled back too: the same signed batch is accepted now.
        result = pg_registry.register_batch(request, batch.fingerprints())
        assert result.registered == len(codes)
    finally:
        wake.set()
        a.close()
        b.close()


#: Replica A, in a process of its own so that it can die as a crash would: it takes a job,
#: prints its id once it runs, and blocks in it.
DOOMED_REPLICA = """
import secrets, sys, threading
from eth_account import Account
from api.jobs import JobRunner, JobSpec
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.service import Registry
from tests.registry.helpers import NO_ROYALTY

registry = Registry(create_db_engine(sys.argv[1]), domain=DEV_DOMAIN,
                    account=Account.create(), master_key=secrets.token_bytes(32))
runner = JobRunner(registry, seconds=float(sys.argv[2]))
runner.start()
job = runner.create("creator", "registrations")
running = threading.Event()
def run(_f, _p, _c):
    running.set()
    threading.Event().wait()
runner.submit(JobSpec(job, runner.spool(), False, run))
running.wait(30)
print(job, flush=True)
threading.Event().wait()
"""


@pytest.mark.slow
def test_a_killed_replicas_job_is_failed_within_the_bound(
    pg_registry: Registry, postgres_url: str
) -> None:
    """Replica A (a real process) runs a job and is SIGKILLed; replica B, already running,
    fails the job at most ``SECONDS * 4 / 3`` (plus one beat's work) after A's last beat."""
    engine = pg_registry.engine
    b = JobRunner(pg_registry, seconds=SECONDS)
    b.start()
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-c", DOOMED_REPLICA, postgres_url, str(SECONDS)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert process.stdout is not None
        job = process.stdout.readline().strip()
        assert job.startswith("job_"), job
        time.sleep(2 * SECONDS)  # A beats meanwhile: B must not fail its job
        assert job_row(engine, job)[0] == "running"
        process.kill()
        process.wait(10)
        killed = time.monotonic()
        # The bound: A's time runs out at most SECONDS after the kill (its last beat was
        # before it); B sweeps every SECONDS / 3. Slack for a loaded machine: one more beat.
        waited = wait_state(engine, job, "failed", 10 * SECONDS)
        assert time.monotonic() - killed <= SECONDS * 4 / 3 + SECONDS / 3 + 1.0, waited
        assert job_row(engine, job)[1] == "interrupted"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        b.close()


@pytest.fixture
def devchain() -> Iterator[DevChain]:
    with DevChain() as chain:
        yield chain


@pytest.mark.slow
def test_readyz_of_an_api_replica_is_its_own_health(
    pg_registry: Registry, devchain: DevChain
) -> None:
    """No anchoring worker runs anywhere: an api-only replica is ready (200), and says so
    under ``cluster``; the all-in-one app (the embedded default) is not ready, as before.
    The cluster section names the live holder of each singleton role."""
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    address = Chain.connect(devchain.rpc_url, DEV_DOMAIN.verifying_contract).deploy(operator)
    chain = Chain.connect(devchain.rpc_url, address)
    lease = Lease(pg_registry.engine, "sequencer", seconds=30)
    assert lease.acquire()
    try:
        with TestClient(create_app(pg_registry, chain, roles_apart=True)) as replica:
            ready = replica.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["checks"] == {"database": "ok", "chain": "ok"}
            assert body["cluster"]["anchoring_worker"] == "no recent heartbeat"
            assert body["cluster"]["leases"]["sequencer"] == lease.holder
            assert body["cluster"]["leases"]["anchoring"] is None
            # The anchoring worker's alerts stay alerts: degraded, still ready.
            with pg_registry.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO anchorer_state (id, heartbeat, last_error, failures)"
                        " VALUES (1, 0, 'the anchoring key is unfunded', 1)"
                    )
                )
            degraded = replica.get("/readyz")
            assert degraded.status_code == 200, degraded.text
            assert degraded.json()["status"] == "degraded"
            assert degraded.json()["alerts"] == ["the anchoring key is unfunded"]
        with TestClient(create_app(pg_registry, chain)) as embedded:
            ready = embedded.get("/readyz")
            assert ready.status_code == 503
            assert "anchoring_worker: no recent heartbeat" in ready.json()["detail"]
        # A replica that cannot reach its own chain RPC is unready: that is its own health.
        dead = Chain.connect("http://127.0.0.1:9", address, timeout=0.5)
        with TestClient(create_app(pg_registry, dead, roles_apart=True)) as cut_off:
            answer = cut_off.get("/readyz")
            assert answer.status_code == 503 and "chain" in answer.json()["detail"]
    finally:
        lease.release()
