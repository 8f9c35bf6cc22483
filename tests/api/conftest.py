"""Fixtures for the API's tests: the real app in-process (TestClient) on SQLite and
PostgreSQL, platform API keys, a creator's Sign-In with Ethereum session, registered goods."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from eth_account.messages import encode_defunct
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.apikeys import create_api_key
from api.app import create_app
from api.siwemessage import build_message
from registry.creator import CreatorKeys, sign_enrollment
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.helpers import registration

KeyFactory = Callable[..., str]
SIWE_DOMAIN = "testserver"

POLICY = RoyaltyPolicy.parse(
    {"recipients": [{"address": "0x" + "a1" * 20, "bps": 750, "label": "studio"}]}
)


@pytest.fixture
def app(registry: Registry) -> FastAPI:
    return create_app(registry, siwe_domain=SIWE_DOMAIN, telemetry_interval=0.05)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_key(registry: Registry) -> KeyFactory:
    """A platform API key: ``make_key("cardhub", "verify", "transfer")``."""

    def make(platform: str, *scopes: str) -> str:
        key, _ = create_api_key(
            registry.engine, platform, scopes or ("verify",), "test", registry.clock()
        )
        return key

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, keys: CreatorKeys, now: int) -> str:
    """A creator session token through the real SIWE routes."""
    nonce = client.post("/v1/auth/siwe/nonce").json()
    message = build_message(
        domain=nonce["domain"],
        address=keys.address,
        uri=nonce["uri"],
        chain_id=nonce["chain_id"],
        nonce=nonce["nonce"],
        issued_at=now,
        statement="Sign in to tracemark.",
    )
    signature = keys.account.sign_message(encode_defunct(text=message)).signature
    answer = client.post(
        "/v1/auth/siwe", json={"message": message, "signature": "0x" + signature.hex()}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


@dataclass(frozen=True)
class CodeGood:
    """A registered, sequenced single-use code of ``creator``'s product ``30-day-card``."""

    creator: CreatorKeys
    code: str
    fingerprint: bytes

    @property
    def hex(self) -> str:
        return "0x" + self.fingerprint.hex()


@pytest.fixture
def code_good(registry: Registry, creator: CreatorKeys, clock: Clock) -> CodeGood:
    code_key = creator.require_code_key()
    enrollment = sign_enrollment(creator, DEV_DOMAIN, now=clock())
    registry.enroll_code_key(enrollment, code_key)
    code = "1234-5678-" + os.urandom(3).hex()
    fingerprint = CodeFingerprinter(code_key).fingerprint(code)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
            policy=POLICY,
        )
    )
    registry.sequence_all()
    return CodeGood(creator, code, fingerprint)
