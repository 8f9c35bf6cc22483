"""THREATS 28 on PostgreSQL: of several anchoring workers exactly one anchors at a time,
another takes over when it goes, and every head is anchored once."""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from sqlalchemy import Engine, text

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.lease import AnchorLease
from anchoring.runtime import ANVIL_ACCOUNT_0_KEY
from anchoring.worker import AnchorPolicy, AnchorWorker, run_anchoring
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
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


def test_one_lease_at_a_time_and_it_passes_on(pg_engine: Engine) -> None:
    first, second = AnchorLease(pg_engine), AnchorLease(pg_engine)
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    first.release()
    assert second.acquire()
    second.release()


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
        assert [tuple(a) for a in anchors] == [(3, "final"), (6, "final"), (9, "final")]
        with pg_engine.connect() as conn:  # the lease holder's heartbeat, for /readyz
            assert conn.execute(text("SELECT heartbeat FROM anchorer_state")).scalar_one() > 0
        assert attempts == 3  # one transaction per head: nobody signed twice
        assert Chain.connect(devchain.rpc_url, address).last_anchored()[0] == 9
