"""THREATS 28 on PostgreSQL: of several anchoring workers exactly one anchors at a time (the
anchoring role's lease, ``registry.lease``), another takes over when it goes (here: a holder
killed mid-anchor), and every head is anchored once."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine, text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.loop import run_anchoring
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from anchoring.worker import FAULT_POINT_ENV, AnchorPolicy, AnchorWorker
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.lease import Lease
from registry.migrate import upgrade
from registry.service import Registry
from tests.registry.helpers import registration

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_db_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_two_workers_anchor_each_head_exactly_once(pg_engine: Engine) -> None:
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    with DevChain(block_time=0.2) as devchain:
        address = Chain.connect(devchain.rpc_url, "0x" + "00" * 20).deploy(operator)
        registry = Registry(
            pg_engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
        )
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        policy = AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=2)
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=run_anchoring,
                args=(
                    AnchorWorker(
                        registry, Chain.connect(devchain.rpc_url, address), operator, policy
                    ),
                ),
                kwargs={"interval": 0.05, "stop": stop},
            )
            for _ in range(2)
        ]
        for worker in workers:
            worker.start()
        heads: list[int] = []
        try:
            for _round in range(3):
                for _ in range(3):
                    registry.register(
                        registration(creator, registry.clock(), fingerprint=os.urandom(32))
                    )
                registry.sequence_all()
                deadline = time.monotonic() + 30  # bounded wait for this head to be final
                head = registry.latest_tree_head()
                assert head is not None
                heads.append(head.tree_size)
                while time.monotonic() < deadline:
                    with pg_engine.connect() as conn:
                        done = conn.execute(
                            text(
                                "SELECT count(*) FROM anchors"
                                " WHERE state = 'final' AND tree_size = :s"
                            ),
                            {"s": head.tree_size},
                        ).scalar_one()
                    if done:
                        break
                    time.sleep(0.1)
                else:
                    pytest.fail(f"head {head.tree_size} was not anchored in time")
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=30)
        with pg_engine.connect() as conn:
            anchors = conn.execute(text("SELECT tree_size, state FROM anchors ORDER BY id")).all()
            attempts = conn.execute(text("SELECT count(*) FROM anchor_attempts")).scalar_one()
        # Each head holds its three registrations and ends with its state commitment.
        assert heads == [4, 8, 12]
        assert [tuple(a) for a in anchors] == [(size, "final") for size in heads]
        with pg_engine.connect() as conn:  # the lease holder's heartbeat, for /readyz
            assert conn.execute(text("SELECT heartbeat FROM anchorer_state")).scalar_one() > 0
        assert attempts == 3  # one transaction per head: nobody signed twice
        assert Chain.connect(devchain.rpc_url, address).last_anchored()[0] == heads[-1]


#: The first worker, in a process of its own so that it can die as a crash would.
DOOMED_WORKER = """
import secrets, sys, threading
from eth_account import Account
from anchoring.chain import Chain
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from anchoring.loop import run_anchoring
from anchoring.worker import AnchorPolicy, AnchorWorker
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.lease import Lease
from registry.service import Registry

db, rpc, address = sys.argv[1:4]
registry = Registry(create_db_engine(db), domain=DEV_DOMAIN, account=Account.create(),
                    master_key=secrets.token_bytes(32))
worker = AnchorWorker(registry, Chain.connect(rpc, address),
                      Account.from_key(ANVIL_ACCOUNT_0_KEY),
                      AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=2))
stop = threading.Event()
lease = Lease(registry.engine, "anchoring", seconds=float(sys.argv[4]))
lease.keep(stop)
run_anchoring(worker, interval=0.05, stop=stop, lease=lease)
"""
#: The doomed worker's lease: the standby takes over at most ~4/3 of it after the kill.
LEASE_SECONDS = 2.0


def _lease_holder(engine: Engine) -> str | None:
    """Who holds the anchoring lease now (host:pid:random), if anyone."""
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT holder FROM role_leases WHERE role = 'anchoring'"
                " AND expires_at_ms > (extract(epoch from clock_timestamp()) * 1000)::bigint"
            )
        ).scalar()


def _until(what: str, condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.05)


def test_threat_28_a_dead_lease_holder_is_taken_over_and_nothing_is_anchored_twice(
    pg_engine: Engine, postgres_url: str
) -> None:
    """The worker holding the lease dies (SIGKILL right after it signed and stored an
    anchor); its lease expires without a heartbeat; the standing-by worker takes it over,
    sends the stored transaction (never a new one) and the head is anchored once."""
    operator = Account.from_key(ANVIL_ACCOUNT_0_KEY)
    with DevChain(block_time=0.2) as devchain:
        address = Chain.connect(devchain.rpc_url, "0x" + "00" * 20).deploy(operator)
        chain = Chain.connect(devchain.rpc_url, address)
        registry = Registry(
            pg_engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
        )
        doomed = subprocess.Popen(
            [
                sys.executable,
                "-c",
                DOOMED_WORKER,
                postgres_url,
                devchain.rpc_url,
                address,
                str(LEASE_SECONDS),
            ],
            env={**os.environ, FAULT_POINT_ENV: "signed"},
            cwd=Path(__file__).resolve().parents[2],
        )
        stop = threading.Event()
        lease = Lease(pg_engine, "anchoring", seconds=LEASE_SECONDS)
        standby = threading.Thread(
            target=run_anchoring,
            args=(
                AnchorWorker(
                    registry,
                    Chain.connect(devchain.rpc_url, address),
                    operator,
                    AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=2),
                ),
            ),
            kwargs={"interval": 0.05, "stop": stop, "lease": lease},
        )
        try:
            _until("the first worker holds the lease", lambda: _lease_holder(pg_engine) is not None)
            first_holder = _lease_holder(pg_engine)
            lease.keep(stop)  # only now: the doomed worker must be the first holder
            standby.start()
            time.sleep(0.5)
            assert _lease_holder(pg_engine) == first_holder  # the second one stands by
            nonce = chain.nonce(operator.address, "latest")
            creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
            for _ in range(3):
                registry.register(
                    registration(creator, registry.clock(), fingerprint=os.urandom(32))
                )
            head = registry.sequence_all()
            # The three registrations and the state commitment the head ends with.
            assert head is not None and head.tree_size == 3 + 1
            assert doomed.wait(timeout=30) == -signal.SIGKILL  # died right after signing
            with pg_engine.connect() as conn:
                state = conn.execute(text("SELECT state FROM anchors")).scalar_one()
            # It died after storing the signed transaction; the standby may have taken the
            # lease over and sent it already (the assertions below prove it was that one).
            assert state in ("signed", "broadcast", "mined", "final"), state
            _until(
                "the standby worker anchors the head",
                lambda: _states(pg_engine) == [(head.tree_size, "final")],
            )
            assert _lease_holder(pg_engine) not in (None, first_holder)  # taken over
        finally:
            stop.set()
            standby.join(timeout=30)
            if doomed.poll() is None:
                doomed.kill()
                doomed.wait()
        with pg_engine.connect() as conn:
            attempts = conn.execute(text("SELECT count(*) FROM anchor_attempts")).scalar_one()
        assert attempts == 1  # the dead worker's signed transaction, sent by the other
        assert chain.nonce(operator.address, "latest") == nonce + 1  # one transaction
        assert chain.last_anchored()[0] == head.tree_size


def _states(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [
            (int(s), str(st))
            for s, st in conn.execute(text("SELECT tree_size, state FROM anchors ORDER BY id"))
        ]
