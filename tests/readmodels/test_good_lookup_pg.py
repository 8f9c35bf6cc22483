"""The verify lookup (``readmodels.authenticity.GoodLookup``) on PostgreSQL: one statement in
autocommit, so psycopg keeps it prepared across lookups (a rollback after each lookup made
it forget the statement and PostgreSQL planned it again every time: bench/cluster_bench.py),
no transaction stays open between lookups, and each lookup sees what was committed before."""

from __future__ import annotations

import os

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine

from readmodels.authenticity import GoodLookup
from registry.creator import CreatorKeys, sign_revocation
from registry.fingerprints import GoodType
from registry.service import Registry
from tests.conftest import CreatorFactory
from tests.registry.helpers import registration

pytestmark = pytest.mark.postgres

#: More lookups than psycopg's prepare threshold (5): from then on the statement is prepared.
LOOKUPS = 12


@pytest.fixture
def pg_engine(postgres_url: str) -> Engine:
    from registry.db import create_db_engine
    from registry.migrate import upgrade

    engine = create_db_engine(postgres_url)
    upgrade(engine)
    return engine


def test_lookups_stay_prepared_and_see_each_commit(
    pg_engine: Engine, make_creator: CreatorFactory
) -> None:
    from eth_account import Account

    from registry.eip712 import DEV_DOMAIN
    from tests.conftest import Clock

    clock = Clock()
    registry = Registry(
        pg_engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=os.urandom(32),
        clock=clock,
    )
    creator: CreatorKeys = make_creator()
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint))
    lookup = GoodLookup(pg_engine)
    try:
        for _ in range(LOOKUPS):
            facts = lookup.facts(GoodType.FILE, fingerprint)
            assert facts is not None and not facts.revoked
        conn = lookup._connection()
        # Nothing left open between lookups: no snapshot held for ever.
        assert conn.info.transaction_status == TransactionStatus.IDLE
        prepared = conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM entries e%'"
        ).fetchone()
        assert prepared is not None and prepared[0] == 1, "the lookup is planned every time"
        # A revocation committed through another connection is seen by the next lookup.
        registry.revoke(
            sign_revocation(
                creator,
                registry.domain,
                good_type=GoodType.FILE,
                fingerprint=fingerprint,
                reason="test",
                now=clock(),
            )
        )
        facts = lookup.facts(GoodType.FILE, fingerprint)
        assert facts is not None and facts.revoked
        assert lookup.facts_any(GoodType.FILE, [os.urandom(32), fingerprint]) is not None
        assert conn.info.transaction_status == TransactionStatus.IDLE
    finally:
        lookup.close()
        pg_engine.dispose()
