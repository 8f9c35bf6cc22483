"""Sign-In with Ethereum behind a load balancer (issue 16): every replica expects the domain
of the public URL, so a message signed for the public address is accepted by whichever
replica the balancer picks; without a public URL a server expects its own host:port."""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_defunct
from fastapi.testclient import TestClient

from anchoring.devchain import free_port
from api.app import create_app
from api.siwe import expected_domain
from api.siwemessage import build_message
from api.trustroot import TrustRootConfig
from registry.creator import CreatorKeys
from registry.service import Registry
from registry.settings import Settings, load_settings

PUBLIC = "https://registry.example"


def replica(registry: Registry, settings: Settings) -> TestClient:
    """An API app configured from ``settings`` as ``tracemark serve`` configures it."""
    return TestClient(
        create_app(
            registry,
            siwe_domain=expected_domain(settings),
            trust_root=TrustRootConfig(url=settings.resolved_public_url),
        )
    )


def signed(keys: CreatorKeys, nonce: dict[str, Any], now: int) -> dict[str, str]:
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
    return {"message": message, "signature": "0x" + signature.hex()}


def test_a_message_for_the_public_address_signs_in_at_any_replica(
    registry: Registry, creator: CreatorKeys
) -> None:
    """Two replicas on their own ports share one public URL: a nonce from A, the message
    signed for the public domain, exchanged at B. A message naming A's own host:port (not
    what a wallet shown the public site signs) is refused by both."""
    ports = free_port(), free_port()
    a_settings, b_settings = (load_settings(api_port=p, public_url=PUBLIC + "/") for p in ports)
    with replica(registry, a_settings) as a, replica(registry, b_settings) as b:
        nonce = a.post("/v1/auth/siwe/nonce").json()
        assert (nonce["domain"], nonce["uri"]) == ("registry.example", PUBLIC + "/")
        answer = b.post("/v1/auth/siwe", json=signed(creator, nonce, registry.clock()))
        assert answer.status_code == 200, answer.text
        assert answer.json()["creator"] == creator.address
        own = {**a.post("/v1/auth/siwe/nonce").json(), "domain": f"127.0.0.1:{ports[0]}"}
        for client in (a, b):
            refused = client.post("/v1/auth/siwe", json=signed(creator, own, registry.clock()))
            assert refused.status_code == 401
            assert "sign one for registry.example" in refused.json()["detail"]


def test_without_a_public_url_the_domain_is_the_servers_own_address() -> None:
    assert expected_domain(load_settings(api_host="127.0.0.1", api_port=8123)) == "127.0.0.1:8123"
    assert expected_domain(load_settings(public_url="http://[::1]:9000")) == "[::1]:9000"
    assert expected_domain(load_settings(public_url="https://u:p@reg.example:8443/x")) == (
        "reg.example:8443"
    )
