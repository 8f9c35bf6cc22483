"""Shared fixtures: real SQLite and real PostgreSQL, an injected clock, registries, creators."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.migrate import upgrade
from registry.service import Registry

POSTGRES_URL = os.environ.get(
    "TRACEMARK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("TRACEMARK_REQUIRE_POSTGRES") == "1"
HOW_TO_ENABLE = (
    "PostgreSQL is not reachable at TRACEMARK_TEST_POSTGRES_URL "
    f"({POSTGRES_URL}); start a server (user postgres, trust auth, database test) "
    "or set TRACEMARK_TEST_POSTGRES_URL to enable the PostgreSQL half of the suite"
)

START = 1_790_000_000  # a fixed "now" (2026-09-21) for deterministic logs


class Clock:
    """An injected clock: Unix seconds that only move when a test moves them."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


_pg_available: bool | None = None


def _postgres_available() -> bool:
    global _pg_available
    if _pg_available is None:
        try:
            probe = create_engine(POSTGRES_URL)
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
            probe.dispose()
            _pg_available = True
        except Exception:
            _pg_available = False
    return _pg_available


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards; skips without a server."""
    if not _postgres_available():
        if REQUIRE_POSTGRES:
            pytest.fail(HOW_TO_ENABLE)
        pytest.skip(HOW_TO_ENABLE)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    # NOTE: a test's background writer (an app's telemetry flush) may still hold a lock in
    # the schema for a moment: the drop can deadlock with it (seen once in CI). PostgreSQL
    # ends one side of a deadlock, so dropping again succeeds; this is only cleanup.
    for attempt in range(5):
        try:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            break
        except DBAPIError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every registry test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'registry.db').as_posix()}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine, clock: Clock) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


CreatorFactory = Callable[[], CreatorKeys]


@pytest.fixture
def make_creator() -> CreatorFactory:
    return lambda: CreatorKeys(Account.create(), secrets.token_bytes(32))


@pytest.fixture
def creator(make_creator: CreatorFactory) -> CreatorKeys:
    return make_creator()
