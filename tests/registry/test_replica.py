"""The replica's freshness (``registry.replica``) on a real primary and streaming replica.

Freshness is read from WAL positions, so an idle pair stays fresh (the replay timestamp would
age); paused replay ages it past the bound; a server that is not in recovery is never used.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from sqlalchemy import Engine, text

from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import ConfigurationError, NotFound
from registry.migrate import upgrade
from registry.replica import (
    DOWN,
    FRESH,
    LAGGING,
    NOT_A_REPLICA,
    ReplicaReads,
    parse_lsn,
    replica_engine,
)
from registry.service import Registry
from tests.pgreplica import PgReplicaPair, Schema, pg_replica, replica_schema

__all__ = ["pg_replica", "replica_schema"]  # the fixtures, used by name


def test_lsn_text_is_one_ordered_number() -> None:
    assert parse_lsn("0/0") == 0
    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert parse_lsn("1/0") > parse_lsn("0/FFFFFFFF")


def test_a_replica_needs_postgresql(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError):
        replica_engine("sqlite:///replica.db")
    sqlite = create_db_engine("sqlite://")
    registry = Registry(
        sqlite, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    with pytest.raises(ConfigurationError):
        ReplicaReads(registry, sqlite, max_lag=1)


@pytest.fixture
def primary(replica_schema: Schema, pg_replica: PgReplicaPair) -> Iterator[Registry]:
    engine = create_db_engine(replica_schema.primary_url)
    upgrade(engine)
    pg_replica.wait_caught_up()
    yield Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    engine.dispose()


def write(engine: Engine) -> None:
    """Some WAL on the primary: a row in a table of the test's own."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS lag_probe (n int)"))
        conn.execute(text("INSERT INTO lag_probe VALUES (1)"))


@pytest.mark.postgres
def test_an_idle_pair_stays_fresh_and_paused_replay_ages_past_the_bound(
    primary: Registry, replica_schema: Schema, pg_replica: PgReplicaPair
) -> None:
    reads = ReplicaReads(primary, replica_engine(replica_schema.replica_url), max_lag=0.6)
    try:
        assert reads.check().state == FRESH
        # Idle for longer than the bound: positions still match, so still fresh.
        time.sleep(1.0)
        status = reads.check()
        assert status.state == FRESH and status.lag_seconds is not None
        assert status.lag_seconds < 0.6
        pg_replica.pause_replay()
        write(primary.engine)
        assert reads.check().state == FRESH  # what it replayed was sampled just now
        time.sleep(0.7)
        status = reads.check()
        assert status.state == LAGGING and status.lag_seconds is not None
        assert status.lag_seconds >= 0.6
        assert reads.read(lambda registry: registry.engine) is primary.engine
        pg_replica.resume_replay()
        pg_replica.wait_caught_up()
        assert reads.check().state == FRESH
        assert reads.read(lambda registry: registry.engine) is reads.replica.engine
    finally:
        reads.close()


@pytest.mark.postgres
def test_a_server_not_in_recovery_or_down_is_never_read(
    primary: Registry, replica_schema: Schema, pg_replica: PgReplicaPair
) -> None:
    # The primary named as its own replica (a promoted replica looks the same): not used.
    itself = ReplicaReads(primary, replica_engine(replica_schema.primary_url), max_lag=5)
    try:
        assert itself.check().state == NOT_A_REPLICA
        assert itself.read(lambda registry: registry.engine) is primary.engine
    finally:
        itself.close()
    reads = ReplicaReads(primary, replica_engine(replica_schema.replica_url), max_lag=5)
    try:
        assert reads.check().state == FRESH
        pg_replica.stop_replica()
        status = reads.check()
        assert status.state == DOWN and status.lag_seconds is None
        assert reads.read(lambda registry: registry.engine) is primary.engine
    finally:
        reads.close()
        pg_replica.start_replica()


@pytest.mark.postgres
def test_a_negative_answer_from_the_replica_is_asked_of_the_primary(
    primary: Registry, replica_schema: Schema
) -> None:
    reads = ReplicaReads(primary, replica_engine(replica_schema.replica_url), max_lag=5)
    asked: list[Engine] = []

    def missing_on_replica(registry: Registry) -> str:
        asked.append(registry.engine)
        if registry.engine is reads.replica.engine:
            raise NotFound("not replayed yet")
        return "found"

    try:
        reads.check()
        assert reads.fresh()
        assert reads.read(missing_on_replica) == "found"
        assert asked == [reads.replica.engine, primary.engine]
        asked.clear()
        assert reads.read(lambda r: r.engine, confirm=lambda _: False) is primary.engine
        # The primary's own negative answer is the answer.
        with pytest.raises(NotFound):
            reads.read(lambda r: r.tree_head(10**6))
    finally:
        reads.close()
