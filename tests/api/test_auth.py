"""Authentication (THREATS 37, 43): API keys stored hashed and cached until a revocation, which
holds everywhere once it has returned; creator session tokens; credentials in the URL refused;
the FastAPI dependencies' 401/403 matrix, on a tiny app built here, on SQLite and PostgreSQL.
Nothing secret reaches a log or a reply."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from eth_account import Account
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from api import apikeys, auth, idempotency, keycache
from api import errors as api_errors
from api.apikeys import create_api_key, hash_api_key, list_api_keys, revoke_api_key
from api.auth import Authenticator, authenticated, require_creator, require_scope
from api.creatortokens import issue_creator_token, verify_creator_token
from api.models import ApiKey, Platform
from api.principal import BAD_CREDENTIALS, Principal, Unauthorized
from api.ratelimit import Limit, RateLimiter, RateLimits
from registry.db import write_transaction
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput, NotFound
from registry.service import Registry
from tests.conftest import Clock

PROBLEM = "application/problem+json"
#: Roomy limits, so that only the tests about limits meet them.
ROOMY = RateLimits(
    api_key=Limit(1000, 1000),
    auditor=Limit(1000, 1000),
    creator=Limit(1000, 1000),
    anonymous=Limit(1000, 1000),
)


def build_app(registry: Registry, limits: RateLimits = ROOMY) -> FastAPI:
    """One route per dependency; each answers with the principal it got."""
    app = FastAPI()
    api_errors.install(app)
    auth.install(app, registry, limiter=RateLimiter(limits, clock=lambda: float(registry.clock())))

    def show(principal: Principal) -> dict[str, object]:
        return {
            "kind": principal.kind,
            "platform": principal.platform,
            "creator": principal.creator,
            "scopes": sorted(principal.scopes),
            "rate_key": principal.rate_key,
        }

    @app.get("/any")
    def any_(principal: Annotated[Principal, Depends(authenticated)]) -> dict[str, object]:
        return show(principal)

    @app.get("/verify")
    def verify(principal: Annotated[Principal, Depends(require_scope("verify"))]) -> object:
        return show(principal)

    @app.get("/audit")
    def audit(principal: Annotated[Principal, Depends(require_scope("audit"))]) -> object:
        return show(principal)

    @app.get("/creator")
    def creator(principal: Annotated[Principal, Depends(require_creator())]) -> object:
        return show(principal)

    return app


@dataclass
class World:
    registry: Registry
    clock: Clock
    client: TestClient
    verify_key: str
    audit_key: str
    token: str
    address: str


@pytest.fixture
def world(registry: Registry, clock: Clock) -> Iterator[World]:
    verify_key, _ = create_api_key(registry.engine, "cardhub", ["verify"], "prod", clock())
    audit_key, _ = create_api_key(registry.engine, "watchdog", ["audit", "verify"], "", clock())
    address = Account.create().address
    token = issue_creator_token(
        registry.derived_key("siwe-token"),
        address,
        chain_id=registry.domain.chain_id,
        now=clock(),
        expires_at=clock() + 3600,
    )
    with TestClient(build_app(registry)) as client:
        yield World(registry, clock, client, verify_key, audit_key, token, address)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


# -- API keys ------------------------------------------------------------------------------------


def test_a_key_is_random_base58_and_only_its_hash_is_stored(
    registry: Registry, clock: Clock
) -> None:
    key, info = create_api_key(registry.engine, "cardhub", ["verify", "transfer"], "prod", clock())
    other, _ = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())
    assert key != other
    assert apikeys.is_api_key(key) and key.startswith("tm_live_") and len(key) == 8 + 44
    assert not set(key[8:]) & set("0OIl")
    assert info.prefix == key[:16] and info.scopes == {"verify", "transfer"}
    with registry.engine.connect() as conn:
        rows = conn.execute(select(ApiKey.__table__)).all()  # type: ignore[attr-defined]
        platforms = conn.execute(select(Platform.__table__)).all()  # type: ignore[attr-defined]
    assert [p.id for p in platforms] == ["cardhub"]  # made once, for the first key
    row = next(r for r in rows if r.id == info.id)
    assert bytes(row.key_hash) == hashlib.sha256(key.encode()).digest() == hash_api_key(key)
    assert row.scopes == "transfer verify" and row.revoked_at is None
    stored = repr([tuple(r) for r in rows])
    assert key not in stored and key[16:] not in stored


def test_lookup_by_hash_and_revocation_holds_from_the_next_request(
    registry: Registry, clock: Clock
) -> None:
    key, info = create_api_key(registry.engine, "cardhub", ["transfer"], "", clock())
    authenticator = Authenticator(registry)
    principal = authenticator.lookup_api_key(key)
    assert principal == Principal(
        kind="platform", platform="cardhub", scopes=frozenset({"transfer"}), key_id=info.id
    )
    assert principal.rate_key == f"key:{info.id}" and principal.owner == "platform:cardhub"
    # One character off, or a well-formed key never issued: unknown.
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert authenticator.lookup_api_key(flipped) is None
    assert authenticator.lookup_api_key(apikeys.generate_api_key()) is None
    assert authenticator.lookup_api_key("tm_live_short") is None

    revoked, now_revoked = revoke_api_key(registry.engine, info.prefix, clock())
    assert now_revoked and revoked.revoked_at == clock()
    assert authenticator.lookup_api_key(key) is None
    again, now_revoked = revoke_api_key(registry.engine, info.id, clock())
    assert not now_revoked and again.revoked_at == revoked.revoked_at


def test_create_list_revoke_validate_their_input(registry: Registry, clock: Clock) -> None:
    engine = registry.engine
    for platform in ["", "Card Hub", "-x", "x-", "a" * 65, "cardhub/../x"]:
        with pytest.raises(InvalidInput):
            create_api_key(engine, platform, ["verify"], "", clock())
    for scopes in [[], ["admin"], ["verify", "creator"]]:
        with pytest.raises(InvalidInput):
            create_api_key(engine, "cardhub", scopes, "", clock())
    with pytest.raises(InvalidInput):
        create_api_key(engine, "cardhub", ["verify"], "line\nbreak", clock())
    a, first = create_api_key(engine, "a-1", ["verify"], "", clock())
    _, second = create_api_key(engine, "b", ["audit"], "", clock())
    revoke_api_key(engine, a, clock())  # by the whole key
    assert [k.id for k in list_api_keys(engine)] == [first.id, second.id]
    assert [k.revoked_at for k in list_api_keys(engine, "a-1")] == [clock()]
    with pytest.raises(NotFound):
        revoke_api_key(engine, 999_999, clock())
    with pytest.raises(NotFound):
        revoke_api_key(engine, "tm_live_11111111", clock())
    with pytest.raises(InvalidInput) as refused:
        revoke_api_key(engine, "tm_live_" + "x" * 20, clock())
    assert "x" * 20 not in refused.value.detail


# -- creator tokens ------------------------------------------------------------------------------


def test_creator_tokens_are_bound_to_key_chain_and_time() -> None:
    key = secrets.token_bytes(32)
    address = Account.create().address
    token = issue_creator_token(key, address, chain_id=31337, now=100, expires_at=200)
    assert token.startswith("tm_siwe_")
    claims = verify_creator_token(key, token, now=199, chain_id=31337)
    assert (claims.address, claims.chain_id, claims.issued_at, claims.expires_at) == (
        address,
        31337,
        100,
        200,
    )
    body, _, mac = token.rpartition(".")
    document = json.loads(base64.urlsafe_b64decode(body[8:] + "=="))
    assert document == {"sub": address, "scope": "creator", "iat": 100, "exp": 200, "chain": 31337}
    forged_claims = dict(document, exp=10**10)
    forged_body = "tm_siwe_" + base64.urlsafe_b64encode(
        json.dumps(forged_claims).encode()
    ).decode().rstrip("=")
    for bad, now, chain in [
        (token, 200, 31337),  # expired
        (token, 150, 1),  # another chain
        (forged_body + "." + mac, 150, 31337),  # claims changed, MAC kept
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), 150, 31337),
        (body, 150, 31337),  # no MAC
        (token + "x" * 600, 150, 31337),  # too long
        ("tm_siwe_!!.??", 150, 31337),
    ]:
        with pytest.raises(Unauthorized):
            verify_creator_token(key, bad, now=now, chain_id=chain)
    with pytest.raises(Unauthorized):  # another registry's key
        verify_creator_token(secrets.token_bytes(32), token, now=150, chain_id=31337)


# -- the dependencies over HTTP ------------------------------------------------------------------


def test_role_matrix(world: World) -> None:
    client = world.client
    cases = {
        # credential: {route: status}
        "anonymous": {"/any": 200, "/verify": 401, "/audit": 401, "/creator": 401},
        "verify": {"/any": 200, "/verify": 200, "/audit": 403, "/creator": 403},
        "audit": {"/any": 200, "/verify": 200, "/audit": 200, "/creator": 403},
        "creator": {"/any": 200, "/verify": 403, "/audit": 403, "/creator": 200},
    }
    credentials = {
        "anonymous": {},
        "verify": bearer(world.verify_key),
        "audit": bearer(world.audit_key),
        "creator": bearer(world.token),
    }
    for who, routes in cases.items():
        for route, status in routes.items():
            response = client.get(route, headers=credentials[who])
            assert response.status_code == status, (who, route, response.text)
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert response.headers["content-type"] == PROBLEM
            if status == 403:
                assert response.json()["type"].endswith("/forbidden")
    assert client.get("/any").json()["kind"] == "anonymous"
    # TestClient's peer is named "testclient": no address, so no address's key (issue 12).
    assert client.get("/any").json()["rate_key"] == "ip:unknown"
    platform = client.get("/verify", headers=bearer(world.verify_key)).json()
    assert platform["platform"] == "cardhub" and platform["scopes"] == ["verify"]
    creator = client.get("/creator", headers=bearer(world.token)).json()
    assert creator["creator"] == world.address and creator["scopes"] == ["creator"]


def test_refused_credentials_get_one_generic_401(world: World) -> None:
    unknown = apikeys.generate_api_key()
    revoked, info = create_api_key(world.registry.engine, "cardhub", ["verify"], "", world.clock())
    revoke_api_key(world.registry.engine, info.id, world.clock())
    tampered = world.token[:-3] + ("AAA" if world.token[-3:] != "AAA" else "BBB")
    attempts = [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {world.verify_key}"},
        {"Authorization": world.verify_key},
        bearer("tm_live_short"),
        bearer(world.verify_key + "x"),
        bearer(unknown),
        bearer(revoked),
        bearer(tampered),
        bearer("tm_siwe_"),
        bearer("something-else"),
    ]
    for headers in attempts:
        response = world.client.get("/any", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["detail"] == BAD_CREDENTIALS
        assert (
            response.headers["www-authenticate"]
            == 'Bearer realm="tracemark", error="invalid_token"'
        )
        assert world.verify_key not in response.text and unknown not in response.text
    # Two Authorization headers: which one counts is never guessed.
    twice = world.client.get("/any", headers=[("Authorization", f"Bearer {world.verify_key}")] * 2)
    assert twice.status_code == 401
    # Missing credentials on a protected route: a challenge without an error code.
    missing = world.client.get("/verify")
    assert missing.headers["www-authenticate"] == 'Bearer realm="tracemark"'


def test_revocation_is_effective_on_the_next_request(world: World) -> None:
    key, info = create_api_key(world.registry.engine, "cardhub", ["verify"], "", world.clock())
    assert world.client.get("/verify", headers=bearer(key)).status_code == 200
    revoke_api_key(world.registry.engine, info.prefix, world.clock())
    assert world.client.get("/verify", headers=bearer(key)).status_code == 401


def test_a_token_expires(world: World) -> None:
    assert world.client.get("/creator", headers=bearer(world.token)).status_code == 200
    world.clock.advance(3600)
    assert world.client.get("/creator", headers=bearer(world.token)).status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"api_key": "KEY"},
        {"key": "KEY"},
        {"token": "TOKEN"},
        {"access_token": "TOKEN"},
        {"Access_Token": "x"},
        {"q": "KEY"},  # any parameter holding a key
        {"q": "TOKEN"},
    ],
)
def test_credentials_in_the_query_string_are_refused_even_with_a_valid_header(
    world: World, params: dict[str, str]
) -> None:
    values = {"KEY": world.verify_key, "TOKEN": world.token}
    query = {name: values.get(value, value) for name, value in params.items()}
    response = world.client.get("/verify", params=query, headers=bearer(world.verify_key))
    assert response.status_code == 401
    assert "URL" in response.json()["detail"]
    assert world.verify_key not in response.text and world.token not in response.text
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_refused_credentials_are_charged_to_the_ip_and_turn_into_429(
    registry: Registry, clock: Clock
) -> None:
    limits = RateLimits(anonymous=Limit(1, 3))
    with TestClient(build_app(registry, limits)) as client:
        statuses = [
            client.get("/any", headers=bearer(apikeys.generate_api_key())).status_code
            for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        refused = client.get("/any")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        clock.advance(1)
        assert client.get("/any").status_code == 200


def test_the_authenticator_is_found_through_the_app_context(
    registry: Registry, clock: Clock
) -> None:
    key, _ = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())

    @dataclass
    class Context:
        registry: Registry
        limiter: RateLimiter

    app = FastAPI()
    api_errors.install(app)
    app.state.context = Context(registry, RateLimiter(RateLimits(api_key=Limit(1, 1))))

    @app.get("/verify")
    def verify(principal: Annotated[Principal, Depends(require_scope("verify"))]) -> str:
        return principal.platform or ""

    with TestClient(app) as client:
        assert client.get("/verify", headers=bearer(key)).json() == "cardhub"
        assert client.get("/verify", headers=bearer(key)).status_code == 429


def test_no_key_or_token_in_any_log_line(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = world.registry.engine
    key, info = create_api_key(engine, "cardhub", ["verify"], "", world.clock())
    secrets_seen = [key, world.token, world.verify_key, world.audit_key]
    client = world.client
    client.get("/verify", headers=bearer(key))
    client.get("/verify", headers=bearer(key + "x"))
    client.get("/any", headers=bearer(world.token[:-1]))
    client.get("/creator", headers=bearer(world.token))
    client.get("/audit", headers={"Authorization": f"Basic {key}"})
    client.get("/any", headers=bearer(key), params={"api_key": key})
    revoke_api_key(engine, info.id, world.clock())
    client.get("/verify", headers=bearer(key))
    world.clock.advance(7200)
    client.get("/creator", headers=bearer(world.token))
    # The test client's own logger (httpx) prints the URLs it requests, query strings and
    # all: that is the client's log, not the registry's, and is exactly why such URLs are
    # refused. Every other line, the registry's included, is checked.
    lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert any("authentication refused" in line for line in lines)
    assert any("revoked API key" in line for line in lines)
    for secret in secrets_seen:
        assert not any(secret in line or secret[16:] in line for line in lines)


def test_principals_cannot_be_built_inconsistent() -> None:
    with pytest.raises(ValueError):
        Principal(kind="platform", platform="cardhub", scopes=frozenset({"verify"}))
    with pytest.raises(ValueError):
        Principal(kind="platform", platform="x", key_id=1, scopes=frozenset({"creator"}))
    with pytest.raises(ValueError):
        Principal(kind="creator", creator="0x" + "11" * 20, scopes=frozenset({"verify"}))
    with pytest.raises(ValueError):
        Principal(kind="anonymous", platform="cardhub")
    with pytest.raises(ValueError):
        Principal(kind="admin")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        require_scope("admin")
    auditor = Principal(kind="platform", platform="w", key_id=1, scopes=frozenset({"audit"}))
    assert auditor.request_bucket == "auditor"
    assert Principal.anonymous(None).rate_key == "ip:unknown"
    assert DEV_DOMAIN.chain_id == 31337


# -- idempotent replies, per principal (api/idempotency.py) --------------------------------------


def test_idempotent_replies_are_kept_per_principal_and_key(
    registry: Registry, clock: Clock
) -> None:
    engine = registry.engine
    first = idempotency.request_hash("POST", "/v1/transfers", b'{"a": 1}')
    second = idempotency.request_hash("POST", "/v1/transfers", b'{"a": 2}')
    assert first != second != idempotency.request_hash("PUT", "/v1/transfers", b'{"a": 1}')
    owner = "platform:cardhub"
    assert idempotency.lookup_idempotent(engine, owner, "k-1", first, now=clock()) is None
    kept = idempotency.store_idempotent(
        engine, owner, "k-1", first, 201, '{"id": 7}', "application/json", now=clock()
    )
    assert kept == idempotency.StoredResponse(201, '{"id": 7}', "application/json", clock())
    assert idempotency.lookup_idempotent(engine, owner, "k-1", first, now=clock()) == kept
    # The same key with another body: refused, never replayed (422).
    with pytest.raises(idempotency.IdempotencyKeyReused):
        idempotency.lookup_idempotent(engine, owner, "k-1", second, now=clock())
    with pytest.raises(idempotency.IdempotencyKeyReused):
        idempotency.store_idempotent(
            engine, owner, "k-1", second, 201, "{}", "application/json", now=clock()
        )
    # A racing twin that stores second gets the first reply back.
    twin = idempotency.store_idempotent(
        engine, owner, "k-1", first, 201, '{"id": 8}', "application/json", now=clock()
    )
    assert twin == kept
    # Keys are per principal.
    assert idempotency.lookup_idempotent(engine, "platform:other", "k-1", second) is None
    # After the TTL the key is free again, and storing replaces the old reply.
    clock.advance(idempotency.IDEMPOTENCY_TTL)
    assert idempotency.lookup_idempotent(engine, owner, "k-1", second, now=clock()) is None
    fresh = idempotency.store_idempotent(
        engine, owner, "k-1", second, 200, "{}", "application/json", now=clock()
    )
    assert idempotency.lookup_idempotent(engine, owner, "k-1", second, now=clock()) == fresh
    clock.advance(idempotency.IDEMPOTENCY_TTL)
    assert idempotency.purge_idempotent(engine, now=clock()) == 1
    for bad in ["", "x" * 129, "tab\there", "ключ"]:
        with pytest.raises(InvalidInput):
            idempotency.lookup_idempotent(engine, owner, bad, first)


def test_a_reused_idempotency_key_is_a_422_problem(registry: Registry) -> None:
    app = FastAPI()
    api_errors.install(app)

    @app.get("/reuse")
    def reuse() -> None:
        raise idempotency.IdempotencyKeyReused("this Idempotency-Key was already used")

    with TestClient(app) as client:
        response = client.get("/reuse")
    assert response.status_code == 422
    assert response.json()["type"].endswith("/idempotency-key-reused")


def test_the_key_lookup_survives_a_dropped_connection_and_threads(
    registry: Registry, clock: Clock
) -> None:
    key, _ = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())
    digest = hash_api_key(key)
    lookup = keycache.KeyLookup(registry.engine)
    assert lookup.fetch(digest) is not None
    if registry.engine.dialect.name == "postgresql":
        # The server ends the lookup's idle connection (a restart, an idle timeout).
        [idle] = lookup._free
        cursor = idle.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        cursor.close()
        with registry.engine.connect() as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
    assert lookup.fetch(digest) is not None
    results: list[bool] = []

    def look() -> None:
        for _ in range(50):
            results.append(lookup.fetch(digest) is not None and lookup.generation() == 0)

    threads = [threading.Thread(target=look) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 300
    assert len(lookup._free) <= 6
    lookup.close()


class CountingLookup(keycache.KeyLookup):
    """The real lookup, counting the key reads it makes (and able to act in the middle of one)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.fetches = 0
        self.during_fetch: Callable[[], None] | None = None

    def fetch(self, digest: bytes) -> tuple[Any, ...] | None:
        self.fetches += 1
        row = super().fetch(digest)
        if self.during_fetch is not None:
            self.during_fetch()
        return row


def revoke_elsewhere(engine: Engine, key_id: int, now: int) -> None:
    """What another process's ``revoke_api_key`` commits (without waiting for the caches)."""
    with write_transaction(engine) as conn:
        conn.execute(
            update(ApiKey.__table__).where(ApiKey.__table__.c.id == key_id).values(revoked_at=now)
        )
        apikeys._bump_generation(conn)


def test_key_rows_are_cached_until_the_generation_moves(registry: Registry, clock: Clock) -> None:
    key, info = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())
    other, _ = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())
    lookup = CountingLookup(registry.engine)
    now = [100.0]
    cache = keycache.KeyCache(lookup, clock=lambda: now[0])
    digest = hash_api_key(key)
    assert cache.fetch(digest) == cache.fetch(digest) == lookup.fetch(digest)
    assert lookup.fetches == 2  # one for the cache, one by this test
    # Unknown keys are read every time, never kept.
    unknown = hash_api_key(apikeys.generate_api_key())
    assert cache.fetch(unknown) is None and cache.fetch(unknown) is None
    assert lookup.fetches == 4

    # Revoked in another process: the cached row serves until the window ends, then not.
    revoke_elsewhere(registry.engine, info.id, clock())
    now[0] += keycache.KEY_CACHE_SECONDS / 2
    row = cache.fetch(digest)
    assert row is not None and row[4] is None
    now[0] += keycache.KEY_CACHE_SECONDS / 2
    row = cache.fetch(digest)
    assert row is not None and row[4] == clock()
    # Every row was dropped with the generation, the other key's too (read again, once).
    before = lookup.fetches
    assert cache.fetch(hash_api_key(other)) is not None
    assert cache.fetch(hash_api_key(other)) is not None
    assert lookup.fetches == before + 1


def test_a_row_read_while_a_revocation_commits_is_not_kept(
    registry: Registry, clock: Clock
) -> None:
    key, info = create_api_key(registry.engine, "cardhub", ["verify"], "", clock())
    lookup = CountingLookup(registry.engine)
    now = [100.0]
    cache = keycache.KeyCache(lookup, clock=lambda: now[0])
    digest = hash_api_key(key)

    def revoked_meanwhile() -> None:
        # The revocation commits after the row was read, and another request (the clock
        # has moved on) sees the new generation before this one stores the row.
        lookup.during_fetch = None
        revoke_elsewhere(registry.engine, info.id, clock())
        now[0] += keycache.KEY_CACHE_SECONDS
        assert cache.fetch(hash_api_key(apikeys.generate_api_key())) is None

    lookup.during_fetch = revoked_meanwhile
    row = cache.fetch(digest)
    assert row is not None and row[4] is None  # what the database said when it was read
    row = cache.fetch(digest)
    assert row is not None and row[4] == clock()


def test_a_full_key_cache_starts_again(
    registry: Registry, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keycache, "KEY_CACHE_MAX", 2)
    keys = [create_api_key(registry.engine, "cardhub", ["verify"], "", clock())[0] for _ in "abc"]
    lookup = CountingLookup(registry.engine)
    cache = keycache.KeyCache(lookup, clock=lambda: 100.0)
    for key in keys:
        assert cache.fetch(hash_api_key(key)) is not None
    assert len(cache._kept) == 1  # the third emptied it, then was kept
    assert cache.fetch(hash_api_key(keys[2])) is not None
    assert lookup.fetches == 3
