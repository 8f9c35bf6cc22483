"""Reads from a real PostgreSQL streaming replica through the app (issue 16, item 5).

The pair comes from ``tests.pgreplica`` (``initdb`` + ``pg_basebackup`` on loopback ports);
lag is real: the replica's ``pg_wal_replay_pause()``. That the replica served an answer is
shown by what only a stale replica could say (a good revoked on the primary still authentic,
a bundle naming a head older than the primary's newest), that the primary did by the fresh
answer.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.apikeys import create_api_key
from api.app import create_app
from api.settings import load_api_settings
from registry.creator import CreatorKeys, sign_revocation
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.migrate import upgrade
from registry.service import Registry
from tests.api.conftest import bearer
from tests.conftest import Clock
from tests.pgreplica import PgReplicaPair, Schema, pg_replica, replica_schema
from tests.polling import wait_until
from tests.registry.helpers import registration
from tests.trust import policy_of
from verifier.absence import Absence
from verifier.bundle import Bundle
from verifier.offline import check_bundle
from verifier.statecheck import check_absence

__all__ = ["pg_replica", "replica_schema"]  # the fixtures, used by name

pytestmark = pytest.mark.postgres

#: A registered good's verdict here: no chain, so never anchored.
REGISTERED = "pending_anchor"


@dataclass
class Setup:
    pair: PgReplicaPair
    registry: Registry
    creator: CreatorKeys
    clock: Clock
    key: str

    def register(self) -> bytes:
        fingerprint = os.urandom(32)
        self.registry.register(
            registration(self.creator, self.clock(), fingerprint=fingerprint, product="p")
        )
        self.registry.sequence_all()
        return fingerprint

    def revoke(self, fingerprint: bytes) -> None:
        self.registry.revoke(
            sign_revocation(
                self.creator,
                DEV_DOMAIN,
                good_type=GoodType.FILE,
                fingerprint=fingerprint,
                reason="leaked",
                now=self.clock(),
            )
        )
        self.registry.sequence_all()

    def client(self, schema: Schema, max_lag: float) -> TestClient:
        settings = load_api_settings(
            database_replica_url=schema.replica_url, replica_max_lag=max_lag
        )
        return TestClient(create_app(self.registry, api_settings=settings, telemetry_interval=0.05))


@pytest.fixture
def setup(pg_replica: PgReplicaPair, replica_schema: Schema) -> Iterator[Setup]:
    engine = create_db_engine(replica_schema.primary_url)
    upgrade(engine)
    clock = Clock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    key, _ = create_api_key(engine, "cardhub", ("verify", "audit"), "test", clock())
    yield Setup(pg_replica, registry, CreatorKeys(Account.create(), os.urandom(32)), clock, key)
    engine.dispose()


def verify(client: TestClient, key: str, fingerprint: bytes) -> dict[str, Any]:
    answer = client.post(
        "/v1/verify",
        json={"good_type": "file", "fingerprint": "0x" + fingerprint.hex()},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def replica_state(client: TestClient) -> str:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    return str(ready.json()["replica"]["state"])


def good_path(fingerprint: bytes) -> str:
    return f"/v1/goods/file/0x{fingerprint.hex()}"


def test_reads_come_from_the_replica_while_fresh_and_its_proofs_verify(
    setup: Setup, replica_schema: Schema
) -> None:
    good = setup.register()
    setup.pair.wait_caught_up()
    with setup.client(replica_schema, max_lag=60) as client:
        wait_until("the replica fresh", lambda: replica_state(client) == "fresh", timeout=10)
        assert verify(client, setup.key, good)["verdict"] == REGISTERED
        setup.pair.pause_replay()
        # The primary moves on: the good revoked, a newer head signed. Within the bound the
        # replica still serves, and only the replica can still call the good authentic.
        setup.revoke(good)
        assert verify(client, setup.key, good)["verdict"] == REGISTERED
        newest = setup.registry.latest_tree_head()
        assert newest is not None
        bundle = client.get(good_path(good) + "/proof", headers=bearer(setup.key))
        assert bundle.status_code == 200, bundle.text
        parsed = Bundle.parse(bundle.content)
        assert parsed.tree_head.tree_size < newest.tree_size  # the replica's head
        report = check_bundle(parsed, policy_of(setup.registry), None)
        assert report.tree_size == parsed.tree_head.tree_size and len(report.entries) == 1
        # The newest head and the checkpoint stay the primary's: a client never sees them go back.
        head = client.get("/v1/log/head", headers=bearer(setup.key)).json()
        assert head["tree_size"] == newest.tree_size
        checkpoint = client.get("/tlog/checkpoint").text
        assert checkpoint.splitlines()[1] == str(newest.tree_size)
        # A good never registered: the replica's absence proof, confirmed by the primary.
        missing = os.urandom(32)
        absence = client.get(good_path(missing) + "/absence", headers=bearer(setup.key))
        assert absence.status_code == 200, absence.text
        proof = Absence.parse(absence.content)
        assert proof.tree_head.tree_size < newest.tree_size
        check_absence(proof, policy_of(setup.registry), None)
        trace = client.get(good_path(good) + "/trace", headers=bearer(setup.key))
        assert trace.status_code == 200, trace.text
        assert '"kind":"revocation"' not in trace.text  # the replica's, before the revocation
        assert replica_state(client) == "fresh"


def test_past_the_bound_reads_go_to_the_primary_and_are_fresh(
    setup: Setup, replica_schema: Schema
) -> None:
    good = setup.register()
    setup.pair.wait_caught_up()
    with setup.client(replica_schema, max_lag=0.5) as client:
        wait_until("the replica fresh", lambda: replica_state(client) == "fresh", timeout=10)
        setup.pair.pause_replay()
        setup.revoke(good)
        wait_until("the replica lagging", lambda: replica_state(client) == "lagging", timeout=10)
        assert verify(client, setup.key, good)["verdict"] == "revoked"
        newest = setup.registry.latest_tree_head()
        assert newest is not None
        head = client.get("/v1/log/head", headers=bearer(setup.key)).json()
        assert head["tree_size"] == newest.tree_size
        trace = client.get(good_path(good) + "/trace", headers=bearer(setup.key))
        assert trace.status_code == 200 and '"kind":"revocation"' in trace.text
        ready = client.get("/readyz").json()
        assert ready["status"] == "ok" and ready["replica"]["lag_seconds"] >= 0.5
        # Replay resumed: the replica catches up and serves again.
        setup.pair.resume_replay()
        wait_until("the replica fresh again", lambda: replica_state(client) == "fresh", timeout=10)


def test_a_good_registered_a_moment_ago_is_never_unknown_on_a_stale_replica(
    setup: Setup, replica_schema: Schema
) -> None:
    setup.register()
    setup.pair.wait_caught_up()
    with setup.client(replica_schema, max_lag=60) as client:
        wait_until("the replica fresh", lambda: replica_state(client) == "fresh", timeout=10)
        setup.pair.pause_replay()
        good = setup.register()  # on the primary only: the replica has not replayed it
        assert replica_state(client) == "fresh"  # well within the bound
        assert verify(client, setup.key, good)["verdict"] == REGISTERED
        bundle = client.get(good_path(good) + "/proof", headers=bearer(setup.key))
        assert bundle.status_code == 200, bundle.text
        check_bundle(Bundle.parse(bundle.content), policy_of(setup.registry), None)
        absence = client.get(good_path(good) + "/absence", headers=bearer(setup.key))
        assert absence.status_code == 409, absence.text
        trace = client.get(good_path(good) + "/trace", headers=bearer(setup.key))
        assert trace.status_code == 200, trace.text
        history = client.get(good_path(good) + "/history", headers=bearer(setup.key))
        assert history.status_code == 200 and history.json()["items"]
        newest = setup.registry.latest_tree_head()
        assert newest is not None
        # The newest tile is past what the paused replica has published: the primary's.
        tile = client.get(f"/tlog/tile/0/000.p/{newest.tree_size}")
        assert tile.status_code == 200 and len(tile.content) == 32 * newest.tree_size
        entry = bundle.json()["entry"]["leaf_index"]
        inclusion = client.get(
            "/v1/log/proof/inclusion",
            params={"leaf_index": entry, "tree_size": newest.tree_size},
            headers=bearer(setup.key),
        )
        assert inclusion.status_code == 200, inclusion.text


def test_a_stopped_replica_costs_the_client_nothing(setup: Setup, replica_schema: Schema) -> None:
    good = setup.register()
    setup.pair.wait_caught_up()
    with setup.client(replica_schema, max_lag=60) as client:
        wait_until("the replica fresh", lambda: replica_state(client) == "fresh", timeout=10)
        assert verify(client, setup.key, good)["verdict"] == REGISTERED  # a connection kept
        setup.pair.stop_replica()
        # At once, before the watcher notices: the kept connection breaks under the read.
        assert verify(client, setup.key, good)["verdict"] == REGISTERED
        bundle = client.get(good_path(good) + "/proof", headers=bearer(setup.key))
        assert bundle.status_code == 200, bundle.text
        wait_until("the replica down", lambda: replica_state(client) == "down", timeout=10)
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["replica"]["lag_seconds"] is None
        assert verify(client, setup.key, good)["verdict"] == REGISTERED
        trace = client.get(good_path(good) + "/trace", headers=bearer(setup.key))
        assert trace.status_code == 200, trace.text
        setup.pair.start_replica()
        wait_until("the replica back", lambda: replica_state(client) == "fresh", timeout=15)
