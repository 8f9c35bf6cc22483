"""Sign-In with Ethereum (EIP-4361): the message grammar, every refusal a 401 with a clear
detail, the nonce used exactly once (also under concurrency), and the token it yields."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from api import auth, creatortokens, siwe
from api import errors as api_errors
from api.auth import require_creator
from api.models import SiweNonce
from api.principal import Principal
from api.siwemessage import SiweRejected, build_message, parse_message
from registry.service import Registry
from registry.signatures import SECP256K1_N
from tests.conftest import Clock

DOMAIN = "127.0.0.1:8000"

#: The example of EIP-4361 itself.
EIP_EXAMPLE = (
    "service.org wants you to sign in with your Ethereum account:\n"
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"
    "\n"
    "I accept the ServiceOrg Terms of Service: https://service.org/tos\n"
    "\n"
    "URI: https://service.org/login\n"
    "Version: 1\n"
    "Chain ID: 1\n"
    "Nonce: 32891756\n"
    "Issued At: 2021-09-30T16:25:24Z\n"
    "Resources:\n"
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"
    "- https://example.com/my-web2-claim.json"
)


def sign(account: LocalAccount, text: str) -> str:
    signed = account.sign_message(encode_defunct(text=text))
    return "0x" + bytes(signed.signature).hex()


class SiweIn(BaseModel):
    message: str
    signature: str


def build_app(registry: Registry) -> FastAPI:
    app = FastAPI()
    api_errors.install(app)
    auth.install(app, registry)

    @app.post("/nonce")
    def nonce() -> str:
        return siwe.issue_nonce(registry.engine, registry.clock())

    @app.post("/siwe")
    def sign_in(body: SiweIn) -> dict[str, Any]:
        token, expires_at, address = siwe.sign_in_creator(
            registry, body.message, body.signature, expected_domain=DOMAIN
        )
        return {"token": token, "expires_at": expires_at, "creator": address}

    @app.get("/me")
    def me(principal: Annotated[Principal, Depends(require_creator())]) -> str | None:
        return principal.creator

    return app


@dataclass
class SignIn:
    registry: Registry
    clock: Clock
    client: TestClient
    account: LocalAccount

    def nonce(self) -> str:
        response = self.client.post("/nonce")
        assert response.status_code == 200
        return str(response.json())

    def message(self, **fields: Any) -> str:
        values: dict[str, Any] = {
            "domain": DOMAIN,
            "address": self.account.address,
            "uri": f"http://{DOMAIN}/login",
            "chain_id": self.registry.domain.chain_id,
            "nonce": fields.pop("nonce", None) or self.nonce(),
            "issued_at": self.clock(),
            "statement": "Sign in to tracemark",
        }
        values.update(fields)
        return build_message(**values)

    def post(self, text: str, signature: str | None = None) -> Any:
        signature = signature if signature is not None else sign(self.account, text)
        return self.client.post("/siwe", json={"message": text, "signature": signature})

    def refused(self, text: str, signature: str | None = None) -> str:
        response = self.post(text, signature)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        problem = response.json()
        assert problem["type"].endswith("/siwe-rejected")
        return str(problem["detail"])


@pytest.fixture
def signin(registry: Registry, clock: Clock) -> Iterator[SignIn]:
    with TestClient(build_app(registry)) as client:
        yield SignIn(registry, clock, client, Account.create())


# -- the grammar ---------------------------------------------------------------------------------


def test_the_eip_example_parses_and_prints_back_exactly() -> None:
    message = parse_message(EIP_EXAMPLE)
    assert message.domain == "service.org" and message.scheme is None
    assert message.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert message.statement == "I accept the ServiceOrg Terms of Service: https://service.org/tos"
    assert (message.uri, message.version, message.chain_id) == ("https://service.org/login", "1", 1)
    assert message.nonce == "32891756" and message.issued_at_unix == 1633019124
    assert message.resources == (
        "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/",
        "https://example.com/my-web2-claim.json",
    )
    assert message.to_text() == EIP_EXAMPLE


def test_every_optional_field_round_trips() -> None:
    address = Account.create().address
    text = build_message(
        scheme="https",
        domain="example.com:8443",
        address=address,
        uri="https://example.com:8443/login?x=1#f",
        chain_id=31337,
        nonce="abcDEF123456",
        issued_at=1_790_000_000,
        expiration_time=1_790_000_600,
        not_before=1_790_000_010,
        request_id="req-42:@x",
        resources=("https://example.com/a",),
    )
    message = parse_message(text)
    assert message.scheme == "https" and message.domain == "example.com:8443"
    assert message.statement is None  # no statement: address, three LFs, URI
    assert text.split("\n")[1:5] == [address, "", "", "URI: https://example.com:8443/login?x=1#f"]
    assert message.expiration_unix == 1_790_000_600 and message.not_before_unix == 1_790_000_010
    assert message.request_id == "req-42:@x"
    assert message.to_text() == text
    # Fractions and offsets: expiry rounds down, not-before rounds up.
    odd = text.replace("2026-09-21T14:23:20Z", "2026-09-21T16:23:20.5+02:00")
    assert parse_message(odd).expiration_unix == 1_790_000_600
    late = text.replace("2026-09-21T14:13:30Z", "2026-09-21T14:13:30.25Z")
    assert parse_message(late).not_before_unix == 1_790_000_011


def _mutations() -> list[tuple[str, Callable[[str], str], str]]:
    def replace(old: str, new: str) -> Callable[[str], str]:
        return lambda text: text.replace(old, new, 1)

    return [
        ("crlf", replace("\n", "\r\n"), "LF only"),
        ("trailing newline", lambda t: t + "\n", "newline"),
        ("no header suffix", replace(" wants you to sign in", " wants to sign in"), "line 1"),
        ("domain with a path", replace("service.org wants", "service.org/x wants"), "line 1"),
        (
            "lower-case address",
            replace(
                "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
            ),
            "EIP-55",
        ),
        ("short address", replace("Cc2\n", "Cc\n"), "40 hex"),
        ("no blank after address", replace("Cc2\n\n", "Cc2\n"), "line 3"),
        ("statement with LF", replace("Terms of", "Terms\nof"), "line 5"),
        ("statement non-ABNF", replace("Terms of", 'Terms "of"'), "statement"),
        ("missing version", replace("Version: 1\n", ""), "Version"),
        ("version 2", replace("Version: 1", "Version: 2"), "version must be 1"),
        (
            "fields out of order",
            replace("Version: 1\nChain ID: 1", "Chain ID: 1\nVersion: 1"),
            "Version",
        ),
        ("chain id not a number", replace("Chain ID: 1", "Chain ID: one"), "chain id"),
        ("chain id zero", replace("Chain ID: 1", "Chain ID: 0"), "chain id"),
        ("short nonce", replace("Nonce: 32891756", "Nonce: 1234567"), "nonce"),
        ("nonce with a dash", replace("Nonce: 32891756", "Nonce: 3289-1756"), "nonce"),
        ("date without zone", replace("16:25:24Z", "16:25:24"), "RFC 3339"),
        ("impossible date", replace("2021-09-30", "2021-02-30"), "date"),
        (
            "uri without scheme",
            replace("URI: https://service.org/login", "URI: service.org"),
            "URI",
        ),
        (
            "resource without dash",
            replace("- https://example.com", "https://example.com"),
            "resource",
        ),
        ("double space", replace("URI: ", "URI:  "), "URI"),
        ("unknown field", replace("Resources:", "Foo: bar\nResources:"), "unexpected"),
        ("non-ascii", replace("Terms", "Térms"), "ASCII"),
        ("too long", lambda t: t.replace("Terms", "T" * 5000), "at most"),
    ]


@pytest.mark.parametrize(
    ("name", "mutate", "detail"), _mutations(), ids=[name for name, _, _ in _mutations()]
)
def test_malformed_messages_are_refused_with_the_reason(
    name: str, mutate: Callable[[str], str], detail: str
) -> None:
    mutated = mutate(EIP_EXAMPLE)
    assert mutated != EIP_EXAMPLE
    with pytest.raises(SiweRejected) as refused:
        parse_message(mutated)
    assert detail.lower() in refused.value.detail.lower(), refused.value.detail


# -- sign-in -------------------------------------------------------------------------------------


def test_sign_in_yields_a_creator_token(signin: SignIn) -> None:
    text = signin.message()
    response = signin.post(text)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["creator"] == signin.account.address
    assert body["expires_at"] == signin.clock() + creatortokens.TOKEN_TTL
    assert body["token"].startswith("tm_siwe_")
    me = signin.client.get("/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json() == signin.account.address


def test_the_token_never_outlives_the_message(signin: SignIn) -> None:
    text = signin.message(expiration_time=signin.clock() + 300)
    body = signin.post(text).json()
    assert body["expires_at"] == signin.clock() + 300
    headers = {"Authorization": f"Bearer {body['token']}"}
    signin.clock.advance(299)
    assert signin.client.get("/me", headers=headers).status_code == 200
    signin.clock.advance(1)
    assert signin.client.get("/me", headers=headers).status_code == 401


def test_refusals(signin: SignIn) -> None:
    now = signin.clock()
    chain = signin.registry.domain.chain_id
    other = Account.create()
    checks: list[tuple[str, str, str | None]] = [
        (signin.message(domain="evil.example"), "another domain", None),
        (signin.message(chain_id=chain + 1), "another chain", None),
        (signin.message(nonce="NeverIssued123"), "unknown nonce", None),
        (signin.message(expiration_time=now), "expired", None),
        (signin.message(expiration_time=now - 10, issued_at=now - 20), "expired", None),
        (signin.message(not_before=now + 5), "not valid yet", None),
        (signin.message(issued_at=now + 61), "future", None),
    ]
    for text, detail, signature in checks:
        assert detail in signin.refused(text, signature)
    # Within the clock skew, a message issued "in the future" is fine.
    assert signin.post(signin.message(issued_at=now + 60)).status_code == 200

    text = signin.message()
    assert "not made by the message's address" in signin.refused(text, sign(other, text))
    assert "not made by" in signin.refused(text, sign(signin.account, text + " "))
    raw = bytes.fromhex(sign(signin.account, text)[2:])
    r, s, v = raw[:32], int.from_bytes(raw[32:64], "big"), raw[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    assert "high-s" in signin.refused(text, "0x" + high_s.hex())
    assert "v must be 27 or 28" in signin.refused(text, "0x" + (raw[:64] + b"\x00").hex())
    assert "64-byte" in signin.refused(text, "0x" + raw[:64].hex())
    assert "hex" in signin.refused(text, "zz")
    garbage = bytes(31) + b"\x01" + (1).to_bytes(32, "big") + b"\x1b"
    garbled = signin.refused(text, "0x" + garbage.hex())
    assert "recover" in garbled or "not made by" in garbled
    # None of the refusals above used the nonce up: the right signature still works.
    assert signin.post(text).status_code == 200


def test_a_nonce_is_used_once_and_expires(signin: SignIn) -> None:
    text = signin.message()
    assert signin.post(text).status_code == 200
    assert "already used" in signin.refused(text)
    stale = signin.message()
    signin.clock.advance(siwe.NONCE_TTL)
    assert "expired" in signin.refused(stale)
    # Issuing sweeps expired nonces; a swept nonce is unknown, refused all the same.
    signin.nonce()
    with signin.registry.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(SiweNonce.__table__)).scalar()  # type: ignore[attr-defined]
    assert count == 1
    assert "unknown nonce" in signin.refused(stale)


def test_concurrent_sign_ins_with_one_nonce_have_exactly_one_winner(
    registry: Registry, clock: Clock
) -> None:
    account = Account.create()
    nonce = siwe.issue_nonce(registry.engine, clock())
    text = build_message(
        domain=DOMAIN,
        address=account.address,
        uri=f"http://{DOMAIN}",
        chain_id=registry.domain.chain_id,
        nonce=nonce,
        issued_at=clock(),
    )
    signature = sign(account, text)
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        try:
            siwe.sign_in_creator(registry, text, signature, expected_domain=DOMAIN)
            result = "won"
        except SiweRejected as exc:
            result = exc.detail
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1, outcomes
    assert all("already used" in o for o in outcomes if o != "won")


def test_sign_in_checks_in_order_and_keeps_the_signature_out_of_errors(
    registry: Registry, clock: Clock
) -> None:
    account = Account.create()
    nonce = siwe.issue_nonce(registry.engine, clock())
    text = build_message(
        domain=DOMAIN,
        address=account.address,
        uri=f"http://{DOMAIN}",
        chain_id=registry.domain.chain_id,
        nonce=nonce,
        issued_at=clock(),
    )
    signature = sign(account, text)
    token, expires_at = siwe.sign_in(
        registry.engine,
        text,
        signature,
        expected_domain=DOMAIN,
        expected_chain_id=registry.domain.chain_id,
        now=clock(),
        token_key=registry.derived_key("siwe-token"),
        token_ttl=60,
    )
    assert expires_at == clock() + 60
    claims = creatortokens.verify_creator_token(
        registry.derived_key("siwe-token"), token, now=clock(), chain_id=registry.domain.chain_id
    )
    assert claims.address == account.address
    with pytest.raises(SiweRejected) as refused:
        siwe.sign_in(
            registry.engine,
            text,
            signature,
            expected_domain=DOMAIN,
            expected_chain_id=registry.domain.chain_id,
            now=clock(),
            token_key=registry.derived_key("siwe-token"),
        )
    assert signature not in refused.value.detail and token not in refused.value.detail
