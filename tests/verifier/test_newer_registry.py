"""A client pinned by a platform keeps reading a newer registry's answers (``verifier.transport``):
members it does not know are dropped, never a value of a wrong type. The real app answers, on
SQLite and PostgreSQL; a middleware adds to its JSON what a newer registry would add (the one
thing the real app cannot produce on demand: its own future)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from fastapi import Request, Response
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.apikeys import create_api_key
from api.app import create_app
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.helpers import registration
from tests.verifier.test_client import BASE_URL, ROOMY, SIWE_DOMAIN
from verifier.client import TracemarkClient
from verifier.problems import UnexpectedAnswer

Change = Callable[[dict[str, Any]], None]


@pytest.fixture
def registry(engine: Engine, clock: Clock) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


@pytest.fixture
def newer(registry: Registry, clock: Clock) -> Iterator[tuple[TracemarkClient, list[Change]]]:
    """A client of the app, and the changes the "newer registry" makes to verify answers."""
    key, _ = create_api_key(registry.engine, "cardhub", ["verify", "transfer"], "", clock())
    app = create_app(registry, limits=ROOMY, siwe_domain=SIWE_DOMAIN)
    changes: list[Change] = []

    @app.middleware("http")
    async def newer_answers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        answer = await call_next(request)
        if request.url.path != "/v1/verify" or not changes:
            return answer
        body = b"".join([chunk async for chunk in answer.body_iterator])  # type: ignore[attr-defined]
        document = json.loads(body)
        for change in changes:
            change(document)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return Response(json.dumps(document), answer.status_code, headers)

    with TestClient(app) as http:
        client = TracemarkClient(
            BASE_URL, http_client=http, api_key=key, max_retries=0, clock=clock
        )
        yield client, changes


def _registered(registry: Registry, creator: CreatorKeys, clock: Clock) -> bytes:
    fingerprint = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=fingerprint, product="art"))
    registry.sequence_all()
    return fingerprint


def test_members_a_newer_registry_adds_are_dropped_and_the_answer_read(
    newer: tuple[TracemarkClient, list[Change]],
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
) -> None:
    client, changes = newer
    fingerprint = _registered(registry, creator, clock)
    before = client.verify("file", fingerprint=fingerprint)

    def add(document: dict[str, Any]) -> None:
        document["loyalty"] = {"tier": "gold"}  # at the top
        document["risk"]["explained_by"] = ["model-v9"]  # inside a member this client knows

    changes.append(add)
    after = client.verify("file", fingerprint=fingerprint)
    assert after == before and after.verdict == before.verdict


def test_a_known_member_of_a_wrong_type_is_still_refused(
    newer: tuple[TracemarkClient, list[Change]],
    registry: Registry,
    creator: CreatorKeys,
    clock: Clock,
) -> None:
    client, changes = newer
    fingerprint = _registered(registry, creator, clock)

    def break_it(document: dict[str, Any]) -> None:
        document["loyalty"] = 1  # dropped, but ...
        document["verdict"] = 42  # ... a verdict that is no verdict is not

    changes.append(break_it)
    with pytest.raises(UnexpectedAnswer, match="verdict"):
        client.verify("file", fingerprint=fingerprint)
