"""A database that refuses connections is a 503 to retry, never a 500 (issue 16's probing saw
PostgreSQL's "too many clients" come back as 500): problem+json with Retry-After, nothing of
the driver's message (it names the server) in the answer."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, text

from anchoring.devchain import free_port
from api.app import create_app
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry
from tests.conftest import Clock


def registry_on(url: str, clock: Clock) -> Registry:
    return Registry(
        create_db_engine(url),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def assert_unavailable(registry: Registry, secret_part: str) -> None:
    client = TestClient(create_app(registry), raise_server_exceptions=False)
    verify = {"good_type": "code", "fingerprint": "0x" + "ab" * 32}
    for answer in (client.get("/v1/log/head"), client.post("/v1/verify", json=verify)):
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["type"].endswith("/storage-unavailable")
        assert secret_part not in answer.text


def test_a_refused_connection_is_a_503(clock: Clock) -> None:
    port = free_port()  # nothing listens there: the driver's own "connection refused"
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
    assert_unavailable(registry_on(url, clock), str(port))


@pytest.fixture
def limited_role(postgres_url: str) -> Iterator[str]:
    """A login role PostgreSQL lets make no connection at all (CONNECTION LIMIT 0): every
    connection is refused with "too many connections for role", the server's own error."""
    role = f"tm_full_{secrets.token_hex(4)}"
    admin = create_engine(make_url(postgres_url).set(query={}))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"))
    try:
        yield postgres_url.replace(
            "postgresql+psycopg://postgres@", f"postgresql+psycopg://{role}@"
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


@pytest.mark.postgres
def test_too_many_connections_is_a_503(limited_role: str, clock: Clock) -> None:
    assert_unavailable(registry_on(limited_role, clock), "127.0.0.1")
