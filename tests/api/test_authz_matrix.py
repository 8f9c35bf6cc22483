"""Who may call what (THREATS 43, 35-37): every route in the app's route table under every
kind of caller, tenants that never see each other's objects, and credentials in the URL.

The matrix is built from ``app.routes``, so a new route is in it the moment it exists; its
operation id must then be given a policy in ``POLICY`` (and a minimal request in
``REQUESTS``), or ``test_every_route_has_a_policy_and_a_request`` fails: nobody adds a route
without deciding who may call it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from api.apikeys import API_KEY_PREFIX, create_api_key, generate_api_key, revoke_api_key
from api.app import create_app
from api.creatortokens import TOKEN_TTL, issue_creator_token
from api.ratelimit import Limit, RateLimits
from api.siwemessage import build_message
from api.webhooks import WebhookSettings
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_batch_revocation,
    sign_enrollment,
    sign_retirement,
    sign_revocation,
)
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.royalty import policy_document
from registry.service import Registry
from tests.api.conftest import POLICY as ROYALTY_POLICY
from tests.api.conftest import SIWE_DOMAIN, bearer, sign_in
from tests.conftest import Clock
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"

# -- callers ----------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
VERIFY = "verify-key"
TRANSFER = "transfer-key"
AUDIT = "audit-key"
PLATFORM = "all-scopes-key"
CREATOR = "creator-session"
REVOKED = "revoked-key"
GARBAGE = "garbage-key"
UNKNOWN = "unknown-key"
EXPIRED = "expired-session"
FOREIGN = "foreign-session"

#: Platform A's keys and their scopes.
KEY_SCOPES: dict[str, tuple[str, ...]] = {
    VERIFY: ("verify",),
    TRANSFER: ("transfer",),
    AUDIT: ("audit",),
    PLATFORM: ("verify", "transfer", "audit"),
}
#: Callers with acceptable credentials (or none): the route's policy decides.
VALID = (ANONYMOUS, VERIFY, TRANSFER, AUDIT, PLATFORM, CREATOR)
#: Callers whose credentials must be refused (401) by every route: a revoked key, ``tm_live_``
#: and junk, a well-formed key never issued, an expired creator token, a token that another
#: registry (another master key) signed.
INVALID = (REVOKED, GARBAGE, UNKNOWN, EXPIRED, FOREIGN)
ROLES = VALID + INVALID

# -- the policy: who may call each operation ---------------------------------------------------

ANYONE = frozenset(VALID)


def holding(scope: str) -> frozenset[str]:
    """Platform keys with ``scope``."""
    return frozenset(role for role, scopes in KEY_SCOPES.items() if scope in scopes)


#: Who may call each operation (by operation id). Everyone else with valid credentials gets
#: 403; an anonymous caller 401; invalid credentials 401 everywhere.
POLICY: dict[str, frozenset[str]] = {
    # Platforms. Verifying is open (anonymous code lookups get coarse answers), but a key
    # must hold the verify scope to use it; transfers are a platform's own business.
    "verify_good": ANYONE - {TRANSFER, AUDIT},
    "verify_file": ANYONE - {TRANSFER, AUDIT},
    # A proof-of-work challenge for a public code lookup: anyone may ask (keys need none).
    "verify_challenge": ANYONE,
    "record_transfer": holding("transfer"),
    # Consent that another platform may move a good this platform holds (issue 12).
    "authorize_handover": holding("transfer"),
    "get_transfer": holding("transfer"),
    "list_transfers": holding("transfer"),
    # Guaranteed-trade orders (issue 17): a sale the platform will report, so its scope.
    "open_order": holding("transfer"),
    "get_order": holding("transfer"),
    "list_orders": holding("transfer"),
    "deliver_order": holding("transfer"),
    "confirm_order": holding("transfer"),
    "dispute_order": holding("transfer"),
    "resolve_order": holding("transfer"),
    "cancel_order": holding("transfer"),
    # Upline rebates (issue 17): the platform's own tree and policies, with its sales' scope;
    # a creator's own policy for its product, with its session.
    "place_agents": holding("transfer"),
    "list_agents": holding("transfer"),
    "lookup_agent": holding("transfer"),
    "get_rebate_policies": holding("transfer"),
    "set_platform_rebate_policy": holding("transfer"),
    "remove_platform_rebate_policy": holding("transfer"),
    "get_rebate_statement": holding("transfer"),
    "get_my_rebate_policy": frozenset({CREATOR}),
    "set_my_rebate_policy": frozenset({CREATOR}),
    "remove_my_rebate_policy": frozenset({CREATOR}),
    "get_my_face_value": frozenset({CREATOR}),
    "set_my_face_value": frozenset({CREATOR}),
    "remove_my_face_value": frozenset({CREATOR}),
    # The buyer's delivery receipt (issue 17 item 3): the order's platform reads it; anyone
    # holding its short link reads it and checks a code against it (the public code check's
    # proof of work and budgets).
    "get_delivery_receipt": holding("transfer"),
    "get_receipt": ANYONE,
    "check_receipt_code": ANYONE,
    # Credit scores (issue 18 item 1): public, as a market's buyers choose sellers by them.
    "get_platform_credit": ANYONE,
    "list_platform_credit": ANYONE,
    "get_seller_credit": ANYONE,
    # Real-name attestations (issue 18 item 4): a platform attests its own sellers with its
    # sales' scope; the levels and proofs are public, as the log holds them.
    "attest_seller": holding("transfer"),
    "attestation_statement": holding("transfer"),
    "enroll_attestation_key": holding("transfer"),
    "get_attestation": ANYONE,
    "get_attestation_proof": ANYONE,
    "get_seller_level": ANYONE,
    # An order's dispute evidence (issue 17 item 5): auditors and the order's parties.
    "get_order_evidence": holding("transfer") | holding("audit"),
    # Payouts and balances (issue 17 item 7): what the platform paid and owes, with its
    # sales' scope; a creator's own royalties' balances, with its session.
    "record_payout": holding("transfer"),
    "get_payout": holding("transfer"),
    "list_owed_lines": holding("transfer"),
    "get_platform_balances": holding("transfer"),
    "get_agent_balances": holding("transfer"),
    "get_my_balances": frozenset({CREATOR}),
    # Webhooks carry transfer receipts: managing them takes the transfer scope.
    "create_webhook": holding("transfer"),
    "list_webhooks": holding("transfer"),
    "get_webhook": holding("transfer"),
    "delete_webhook": holding("transfer"),
    "list_webhook_deliveries": holding("transfer"),
    # Creators. A write carries the creator's EIP-712 signature, which is its authentication;
    # a job id is the capability to read the job; reads of one's own goods need a session.
    "enroll_code_key": ANYONE,
    "retire_code_key": ANYONE,
    "register_good": ANYONE,
    "revoke_good": ANYONE,
    "register_batch": ANYONE,
    "revoke_batch": ANYONE,
    "get_job": ANYONE,
    "list_my_goods": frozenset({CREATOR}),
    "get_my_royalty_statement": frozenset({CREATOR}),
    "get_my_distribution": frozenset({CREATOR}),
    "list_my_code_keys": frozenset({CREATOR}),
    # A creator proves its own web domain (the registry fetches it: nothing else to name).
    "prove_my_identity": frozenset({CREATOR}),
    "recheck_my_identity": frozenset({CREATOR}),
    "set_my_distribution": frozenset({CREATOR}),
    "siwe_nonce": ANYONE,
    "siwe_sign_in": ANYONE,
    # Auditors. The log and the registry's identity are public; a good's full history is for
    # auditors' keys.
    "get_registry": ANYONE,
    "get_trust_root": ANYONE,
    "get_tree_head": ANYONE,
    "get_inclusion_proof": ANYONE,
    "get_consistency_proof": ANYONE,
    "get_proof_bundle": ANYONE,
    "get_absence_proof": ANYONE,
    # The static read API (C2SP tlog-tiles): the public log, as files.
    "get_tlog_checkpoint": ANYONE,
    "get_tlog_tile": ANYONE,
    "get_tlog_entry_bundle": ANYONE,
    "get_good_history": holding("audit"),
    # A good's trace: auditors' keys, and its own creator signed in (another creator: 404).
    "get_good_trace": holding("audit") | {CREATOR},
    "list_signals": holding("audit"),
    # A platform's compliance report (issue 18 item 3): any key of the platform itself (A asks
    # for cardhub's, its own), an auditor any platform's; another platform's key a 404.
    "get_compliance_report": holding("verify") | holding("transfer") | holding("audit"),
    # Health.
    "livez": ANYONE,
    "readyz": ANYONE,
}

ALLOWED = "allowed"


def expected(operation_id: str, role: str) -> str | int:
    """``ALLOWED``, 401 or 403."""
    if role in INVALID:
        return 401
    if role in POLICY[operation_id]:
        return ALLOWED
    return 401 if role == ANONYMOUS else 403


# -- the route table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    path: str

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.operation_id})"


def route_table(app: FastAPI) -> list[Route]:
    """Every API route the app serves (included routers flattened), once per method."""
    routes = []
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue  # /openapi.json, /docs, /redoc: FastAPI's own pages
        operation_id = context.operation_id
        assert operation_id, f"{context.path_format} has no operation_id: give it one"
        for method in sorted(context.methods or ()):
            routes.append(Route(operation_id, method, context.path_format))
    return routes


def _route_table_offline() -> list[Route]:
    # Collection needs the route table before any database exists: this app is built on an
    # in-memory engine that nothing ever connects to; it only lists its routes.
    registry = Registry(
        create_engine("sqlite://"),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=bytes(32),
    )
    return route_table(create_app(registry))


ROUTES = _route_table_offline()

#: Limits that never trip: a 429 would hide the decision this module is about.
UNLIMITED = RateLimits(
    **{name: Limit.per_second(10**9, burst=10**9) for name in RateLimits().named()}
)

#: Webhooks to a closed local port (the matrix is about who may call, not delivery).
WEBHOOK_URL = "http://127.0.0.1:9/hook"
WEBHOOKS = WebhookSettings(allow_http=True, allow_loopback=True)

# -- a world with one of everything ------------------------------------------------------------


@dataclass
class Call:
    """The parts of a request a route needs besides its path and its caller."""

    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """Two platforms (A: cardhub, B: keyshop), two creators, goods, transfers and a job."""

    client: TestClient
    registry: Registry
    clock: Clock
    #: What each caller sends in its Authorization header (nothing for anonymous).
    credentials: dict[str, str | None]
    creator_a: CreatorKeys
    creator_b: CreatorKeys
    #: Creator A's code (royalty-bearing, sold on platform A), and goods for the writes.
    good: bytes
    good_b: bytes
    matrix_transfer_good: bytes
    #: A good platform A's user "h1" holds: what A may consent to hand over.
    handover_good: bytes
    revocable_good: bytes
    transfer_a: int
    transfer_b: int
    job_id: str
    tree_size: int
    platform_b_key: str
    webhook_id: int
    batch_ndjson: bytes
    batch_revocation_csv: bytes
    batch_revocation_header: str
    registration_body: dict[str, Any]
    revocation_body: dict[str, Any]

    def headers(self, role: str) -> dict[str, str]:
        credential = self.credentials[role]
        return {} if credential is None else bearer(credential)

    @property
    def path_values(self) -> dict[str, str]:
        return {
            "transfer_id": str(self.transfer_a),
            "order_id": "999999",
            "creator": self.creator_a.address,
            "product": "matrix-card",
            "payout_id": "999999",
            "attestation_id": "999999",
            "receipt_id": "A" * 22,
            "platform": "cardhub",
            "seller": "0x" + "ab" * 32,
            "webhook_id": str(self.webhook_id),
            "job_id": self.job_id,
            "good_type": "code",
            "fingerprint": hex0x(self.good),
            # The first leaf's tile and bundle (of width 1: in every checkpoint).
            "tile_path": "0/000.p/1",
            "bundle_path": "000.p/1",
        }

    def url(self, route: Route) -> str:
        values = self.path_values
        names = re.findall(r"{(\w+)}", route.path)
        missing = [name for name in names if name not in values]
        assert not missing, f"{route}: give World.path_values a real value for {missing}"
        return route.path.format(**{name: values[name] for name in names})

    def send(
        self,
        route: Route,
        role: str,
        *,
        extra_params: dict[str, str] | None = None,
    ) -> httpx2.Response:
        call = REQUESTS[route.operation_id](self)
        return self.client.request(
            route.method,
            self.url(route),
            params={**call.params, **(extra_params or {})},
            json=call.json,
            content=call.content,
            headers={**call.headers, **self.headers(role)},
        )


def hex0x(data: bytes) -> str:
    return "0x" + data.hex()


def _body_of(request: Any) -> dict[str, Any]:
    return {
        "signed": request.signed.document(),
        "royalty_policy": policy_document(request.royalty_policy),
        "metadata": dict(request.metadata),
        "new_product": request.new_product,
    }


def _transfer(client: TestClient, key: str, **body: Any) -> int:
    answer = client.post("/v1/transfers", json=body, headers=bearer(key))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["transfer_id"])


@contextmanager
def build_world(registry: Registry, clock: Clock) -> Iterator[World]:
    app = create_app(
        registry,
        limits=UNLIMITED,
        siwe_domain=SIWE_DOMAIN,
        telemetry_interval=0.05,
        webhook_settings=WEBHOOKS,
    )
    engine, now = registry.engine, clock()
    keys = {
        role: create_api_key(engine, "cardhub", scopes, role, now)[0]
        for role, scopes in KEY_SCOPES.items()
    }
    revoked, revoked_info = create_api_key(engine, "cardhub", KEY_SCOPES[PLATFORM], "old", now)
    revoke_api_key(engine, revoked_info.id, now)
    platform_b_key, _ = create_api_key(engine, "keyshop", KEY_SCOPES[PLATFORM], "b", now)

    creator_a = CreatorKeys(Account.create(), secrets.token_bytes(32))
    creator_b = CreatorKeys(Account.create(), secrets.token_bytes(32))
    registry.enroll_code_key(
        sign_enrollment(creator_a, DEV_DOMAIN, now=now), creator_a.require_code_key()
    )
    good, good_b, matrix_good, revocable, own_b = (secrets.token_bytes(32) for _ in range(5))
    handover_good = secrets.token_bytes(32)
    registry.register(
        registration(
            creator_a,
            now,
            fingerprint=good,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
            policy=ROYALTY_POLICY,
        )
    )
    for fingerprint in (good_b, matrix_good, revocable, handover_good):
        registry.register(registration(creator_a, now, fingerprint=fingerprint))
    registry.register(registration(creator_b, now, fingerprint=own_b))
    head = registry.sequence_all()
    assert head is not None

    with TestClient(app) as client:
        # Platform A sells creator A's code twice (the second a priced final resale: royalties);
        # platform B sells another of creator A's goods.
        code = {"good_type": "code", "fingerprint": hex0x(good)}
        _transfer(
            client, keys[PLATFORM], **code, seller={"creator": True}, buyer={"reference": "a1"}
        )
        transfer_a = _transfer(
            client,
            keys[PLATFORM],
            **code,
            seller={"platform": "cardhub", "reference": "a1"},
            buyer={"reference": "a2"},
            price="10000",
            currency="EUR",
            final=True,
        )
        transfer_b = _transfer(
            client,
            platform_b_key,
            good_type="file",
            fingerprint=hex0x(good_b),
            seller={"creator": True},
            buyer={"reference": "b1"},
        )
        _transfer(
            client,
            keys[PLATFORM],
            good_type="file",
            fingerprint=hex0x(handover_good),
            seller={"creator": True},
            buyer={"reference": "h1"},
        )

        # A bulk upload of two codes: its job is the real job id; its documents are reused.
        codes = "".join(f"BULK-{secrets.token_hex(4)}\n" for _ in range(2))
        batch = prepare_code_batch(codes_source(codes), creator_a.require_code_key())
        signed_batch = sign_batch_registration(
            creator_a,
            DEV_DOMAIN,
            batch,
            good_type=GoodType.CODE,
            product="bulk-card",
            use=Use.SINGLE,
            royalty_policy=ROYALTY_POLICY,
            metadata={},
            now=now,
            new_product=True,
        )
        fingerprints = [hex0x(fp) for fp in batch.fingerprints()]
        batch_ndjson = "\n".join([json.dumps(_body_of(signed_batch)), *fingerprints]).encode()
        accepted = client.post(
            "/v1/registrations/batches",
            content=batch_ndjson,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert accepted.status_code == 202, accepted.text
        revocation = sign_batch_revocation(
            creator_a, DEV_DOMAIN, batch, good_type=GoodType.CODE, reason="test", now=now
        )
        header = json.dumps({"signed": revocation.signed.document()}).encode()

        token_key = app.state.authenticator.token_key
        chain_id = registry.domain.chain_id
        other = Registry(
            engine,
            domain=registry.domain,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=clock,
        )
        credentials: dict[str, str | None] = {
            ANONYMOUS: None,
            **keys,
            CREATOR: sign_in(client, creator_a, now),
            REVOKED: revoked,
            GARBAGE: API_KEY_PREFIX + "not-a-key!",
            UNKNOWN: generate_api_key(),
            # Signed with this registry's own key, for this chain: wrong only in its expiry.
            EXPIRED: issue_creator_token(
                token_key,
                creator_a.address,
                chain_id=chain_id,
                now=now - TOKEN_TTL - 60,
                expires_at=now - 60,
            ),
            # Well-formed and unexpired, for this chain: wrong only in the key that signed it.
            FOREIGN: issue_creator_token(
                other.derived_key("siwe-token"),
                creator_a.address,
                chain_id=chain_id,
                now=now,
                expires_at=now + TOKEN_TTL,
            ),
        }
        yield World(
            client=client,
            registry=registry,
            clock=clock,
            credentials=credentials,
            creator_a=creator_a,
            creator_b=creator_b,
            good=good,
            good_b=good_b,
            matrix_transfer_good=matrix_good,
            handover_good=handover_good,
            revocable_good=revocable,
            transfer_a=transfer_a,
            transfer_b=transfer_b,
            job_id=str(accepted.json()["job_id"]),
            tree_size=head.tree_size,
            platform_b_key=platform_b_key,
            webhook_id=app.state.webhooks.create("cardhub", WEBHOOK_URL, ["anchor.final"])[0].id,
            batch_ndjson=batch_ndjson,
            batch_revocation_csv=("fingerprint\n" + "\n".join(fingerprints) + "\n").encode(),
            batch_revocation_header=base64.urlsafe_b64encode(header).decode(),
            registration_body=_body_of(registration(creator_a, now)),
            revocation_body={
                "signed": sign_revocation(
                    creator_a,
                    DEV_DOMAIN,
                    good_type=GoodType.FILE,
                    fingerprint=revocable,
                    reason="test",
                    now=now,
                ).signed.document()
            },
        )


# -- a minimal valid request for each operation -----------------------------------------------


def _siwe_sign_in(world: World) -> Call:
    # A fresh nonce and message each time: a nonce is good for one sign-in.
    nonce = world.client.post("/v1/auth/siwe/nonce").json()
    message = build_message(
        domain=nonce["domain"],
        address=world.creator_a.address,
        uri=nonce["uri"],
        chain_id=nonce["chain_id"],
        nonce=nonce["nonce"],
        issued_at=world.clock(),
        statement="Sign in to tracemark.",
    )
    signature = world.creator_a.account.sign_message(encode_defunct(text=message)).signature
    return Call(json={"message": message, "signature": "0x" + signature.hex()})


REQUESTS: dict[str, Callable[[World], Call]] = {
    "verify_good": lambda w: Call(json={"good_type": "code", "fingerprint": hex0x(w.good)}),
    "verify_challenge": lambda w: Call(),
    "verify_file": lambda w: Call(
        content=b"a file", headers={"Content-Type": "application/octet-stream"}
    ),
    # The same Idempotency-Key and body each time: the first is recorded, the rest replay it.
    "record_transfer": lambda w: Call(
        json={
            "good_type": "file",
            "fingerprint": hex0x(w.matrix_transfer_good),
            "seller": {"creator": True},
            "buyer": {"reference": "matrix"},
        },
        headers={"Idempotency-Key": "authz-matrix"},
    ),
    # Issuing consents nothing away by itself: every call is a new one-time authorization.
    "authorize_handover": lambda w: Call(
        json={
            "good_type": "file",
            "fingerprint": hex0x(w.handover_good),
            "reference": "h1",
            "buyer_platform": "keyshop",
        }
    ),
    "get_transfer": lambda w: Call(),
    "list_transfers": lambda w: Call(params={"limit": 5}),
    # The matrix's good is held on platform A, not by its creator: a 409 (double-sale), and
    # the order routes' id is no order at all: a 404; neither 401 nor 403.
    "open_order": lambda w: Call(
        json={
            "good_type": "code",
            "fingerprint": hex0x(w.good),
            "seller": {"creator": True},
            "buyer_reference": "matrix",
            "price": "1",
            "currency": "EUR",
        }
    ),
    "get_order": lambda w: Call(),
    "list_orders": lambda w: Call(params={"limit": 5}),
    "deliver_order": lambda w: Call(json={"fingerprint": "0x" + "ab" * 32}),
    "confirm_order": lambda w: Call(),
    "dispute_order": lambda w: Call(),
    "resolve_order": lambda w: Call(json={"outcome": "refund"}),
    "cancel_order": lambda w: Call(),
    "place_agents": lambda w: Call(json={"agents": [{"agent": "matrix", "upline": None}]}),
    "list_agents": lambda w: Call(params={"limit": 5}),
    "lookup_agent": lambda w: Call(json={"agent": "matrix"}),
    # The matrix's creator has no product of that slug: a 404, neither 401 nor 403.
    "get_rebate_policies": lambda w: Call(),
    "set_platform_rebate_policy": lambda w: Call(json={"levels": [100]}),
    "remove_platform_rebate_policy": lambda w: Call(),
    "get_rebate_statement": lambda w: Call(),
    "get_my_rebate_policy": lambda w: Call(),
    "set_my_rebate_policy": lambda w: Call(json={"levels": [100]}),
    "remove_my_rebate_policy": lambda w: Call(),
    "get_my_face_value": lambda w: Call(),
    "set_my_face_value": lambda w: Call(json={"face_value": "100", "currency": "CNY"}),
    "remove_my_face_value": lambda w: Call(),
    # No order 999999 and no receipt of the matrix's id: 404s, neither 401 nor 403.
    "get_delivery_receipt": lambda w: Call(),
    "get_receipt": lambda w: Call(),
    "check_receipt_code": lambda w: Call(json={"code": "1234"}),
    "get_platform_credit": lambda w: Call(),
    "list_platform_credit": lambda w: Call(),
    "get_seller_credit": lambda w: Call(),
    # No attestation key is enrolled for the matrix's platforms: a signed attestation is
    # refused (400), a statement to sign is proposed; no attestation 999999: 404s.
    "attest_seller": lambda w: Call(
        json={
            "reference": "matrix",
            "level": "phone",
            "nonce": 1,
            "deadline": 2**53 - 1,
            "signature": "0x" + "11" * 65,
        }
    ),
    "attestation_statement": lambda w: Call(json={"reference": "matrix", "level": "phone"}),
    # A signature by no key of that address: refused (400), neither 401 nor 403.
    "enroll_attestation_key": lambda w: Call(
        json={
            "address": "0x" + "22" * 20,
            "nonce": 1,
            "deadline": 2**53 - 1,
            "signature": "0x" + "11" * 65,
        }
    ),
    "get_attestation": lambda w: Call(),
    "get_attestation_proof": lambda w: Call(),
    "get_seller_level": lambda w: Call(),
    "get_order_evidence": lambda w: Call(),
    # No such line (a 422) and no such payout (a 404): neither 401 nor 403.
    "record_payout": lambda w: Call(
        json={
            "kind": "royalty",
            "recipient": "0x" + "a1" * 20,
            "amount": "1",
            "currency": "EUR",
            "reference": "matrix",
            "paid_at": 0,
            "lines": [999999],
        }
    ),
    "get_payout": lambda w: Call(),
    "list_owed_lines": lambda w: Call(params={"limit": 5}),
    "get_platform_balances": lambda w: Call(),
    "get_agent_balances": lambda w: Call(),
    "get_my_balances": lambda w: Call(),
    "create_webhook": lambda w: Call(json={"url": WEBHOOK_URL, "event_types": ["anchor.final"]}),
    "list_webhooks": lambda w: Call(params={"limit": 5}),
    "get_webhook": lambda w: Call(),
    "delete_webhook": lambda w: Call(),
    "list_webhook_deliveries": lambda w: Call(params={"limit": 5}),
    "enroll_code_key": lambda w: Call(
        json={
            "signed": sign_enrollment(w.creator_a, DEV_DOMAIN, now=w.clock()).document(),
            "code_key": hex0x(w.creator_a.require_code_key()),
        }
    ),
    # A key creator_a never enrolled (404): the world's enrolled key stays live.
    "retire_code_key": lambda w: Call(
        json={
            "signed": sign_retirement(
                w.creator_a, DEV_DOMAIN, key_commitment=b"\x11" * 32, now=w.clock()
            ).document()
        }
    ),
    "register_good": lambda w: Call(json=w.registration_body),
    "revoke_good": lambda w: Call(json=w.revocation_body),
    "register_batch": lambda w: Call(
        content=w.batch_ndjson, headers={"Content-Type": "application/x-ndjson"}
    ),
    "revoke_batch": lambda w: Call(
        content=w.batch_revocation_csv,
        headers={"Content-Type": "text/csv", "Tracemark-Request": w.batch_revocation_header},
    ),
    "get_job": lambda w: Call(),
    "list_my_goods": lambda w: Call(params={"limit": 5}),
    "get_my_royalty_statement": lambda w: Call(),
    "get_my_distribution": lambda w: Call(),
    "list_my_code_keys": lambda w: Call(),
    # A domain the identity settings refuse to fetch (no network in tests): a 4xx, not 401/403.
    "prove_my_identity": lambda w: Call(json={"domain": "studio.example"}),
    "recheck_my_identity": lambda w: Call(),
    "set_my_distribution": lambda w: Call(json={"restricted": False, "platforms": []}),
    "siwe_nonce": lambda w: Call(),
    "siwe_sign_in": _siwe_sign_in,
    "get_registry": lambda w: Call(),
    "get_trust_root": lambda w: Call(),
    "get_tree_head": lambda w: Call(),
    "get_inclusion_proof": lambda w: Call(params={"leaf_index": 0, "tree_size": w.tree_size}),
    "get_consistency_proof": lambda w: Call(params={"from_size": 1, "tree_size": w.tree_size}),
    "get_proof_bundle": lambda w: Call(),
    # The matrix's good is registered: a 409 pointing at its bundle, neither 401 nor 403.
    "get_absence_proof": lambda w: Call(),
    "get_tlog_checkpoint": lambda w: Call(),
    "get_tlog_tile": lambda w: Call(),
    "get_tlog_entry_bundle": lambda w: Call(),
    "get_good_history": lambda w: Call(),
    "get_good_trace": lambda w: Call(),
    "list_signals": lambda w: Call(params={"limit": 5}),
    "get_compliance_report": lambda w: Call(params={"from": 0, "to": 86_400}),
    "livez": lambda w: Call(),
    "readyz": lambda w: Call(),
}


def check_answer(route: Route, role: str, answer: httpx2.Response, credential: str | None) -> None:
    want = expected(route.operation_id, role)
    where = f"{route} as {role}: {answer.status_code} {answer.text[:300]}"
    if want == ALLOWED:
        assert answer.status_code not in (401, 403), where
        assert answer.status_code < 500, where
        return
    assert answer.status_code == want, where
    # A refused credential is never repeated back (THREATS 37).
    assert credential is None or credential not in answer.text, where
    assert answer.headers["content-type"] == PROBLEM, where
    if want == 401:
        assert answer.headers.get("WWW-Authenticate", "").startswith("Bearer "), where
        assert answer.json()["type"].endswith("/unauthorized"), where
    else:
        assert answer.json()["type"].endswith("/forbidden"), where


# -- known gaps (strict: they fail loudly once fixed, so the marker comes off) -----------------

#: (operation, caller) pairs that fail today, each with why; strict xfails, so a fix shows.
KNOWN_GAPS: dict[tuple[str, str], str] = {}
QUERY_PARAMS = ("api_key", "token", "access_token")
KNOWN_QUERY_GAPS: dict[tuple[str, str], str] = {}


def _param(route: Route, other: str, gaps: dict[tuple[str, str], str]) -> Any:
    reason = gaps.get((route.operation_id, other))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(route, other, id=f"{route.operation_id}-{other}", marks=marks)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One SQLite registry and app for the whole matrix (the PostgreSQL subset is below)."""
    path: Path = tmp_path_factory.mktemp("authz") / "registry.db"
    engine = create_db_engine(f"sqlite:///{path.as_posix()}")
    upgrade(engine)
    clock = Clock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    with build_world(registry, clock) as built:
        yield built
    engine.dispose()


# -- the matrix --------------------------------------------------------------------------------


def test_every_route_has_a_policy_and_a_request(world: World) -> None:
    served = route_table(world.client.app)  # type: ignore[arg-type]
    assert served == ROUTES, "the app's routes changed between collection and the test"
    operation_ids = [route.operation_id for route in served]
    assert len(operation_ids) == len(set(operation_ids)), "operation ids must be unique"
    unplanned = sorted(set(operation_ids) - POLICY.keys())
    assert not unplanned, f"decide who may call {unplanned}: add them to POLICY"
    stale = sorted(POLICY.keys() - set(operation_ids))
    assert not stale, f"POLICY names operations the app no longer has: {stale}"
    assert POLICY.keys() == REQUESTS.keys(), "every operation needs a minimal request"


@pytest.mark.parametrize(
    ("route", "role"), [_param(route, role, KNOWN_GAPS) for route in ROUTES for role in ROLES]
)
def test_role_matrix(world: World, route: Route, role: str) -> None:
    assert route.operation_id in POLICY, f"{route}: no policy; add it to POLICY"
    answer = world.send(route, role)
    check_answer(route, role, answer, world.credentials[role])


@pytest.mark.parametrize(
    ("route", "name"),
    [_param(route, name, KNOWN_QUERY_GAPS) for route in ROUTES for name in QUERY_PARAMS],
)
def test_credentials_in_the_query_string_are_refused(world: World, route: Route, name: str) -> None:
    """A key or token in the URL is 401, alone or next to a valid header (THREATS 37)."""
    assert route.operation_id in POLICY, f"{route}: no policy; add it to POLICY"
    allowed = POLICY[route.operation_id]
    role = CREATOR if CREATOR in allowed and PLATFORM not in allowed else PLATFORM
    credential = world.credentials[role]
    assert credential is not None
    alone = world.send(route, ANONYMOUS, extra_params={name: credential})
    beside = world.send(route, role, extra_params={name: credential})
    for answer in (alone, beside):
        where = f"{route} with ?{name}=: {answer.status_code} {answer.text[:200]}"
        assert answer.status_code == 401, where
        assert 'error="invalid_request"' in answer.headers.get("WWW-Authenticate", ""), where
        assert credential not in answer.text, where


def test_the_refused_tokens_are_wrong_in_one_respect_only(world: World) -> None:
    """The foreign token's claims, signed with this registry's key, are accepted; a token of
    this registry is accepted until the second it expires, and refused from then on."""
    now, chain_id = world.clock(), world.registry.domain.chain_id
    token_key = world.client.app.state.authenticator.token_key  # type: ignore[attr-defined]
    address = world.creator_a.address
    ours = issue_creator_token(
        token_key, address, chain_id=chain_id, now=now, expires_at=now + TOKEN_TTL
    )
    assert world.client.get("/v1/creators/me/goods", headers=bearer(ours)).status_code == 200
    short = issue_creator_token(token_key, address, chain_id=chain_id, now=now, expires_at=now + 60)
    try:
        for offset, status in ((59, 200), (60, 401)):
            world.clock.now = now + offset
            answer = world.client.get("/v1/creators/me/goods", headers=bearer(short))
            assert answer.status_code == status, (offset, answer.text)
    finally:
        world.clock.now = now


def test_revocation_holds_from_the_next_request(world: World) -> None:
    engine, now = world.registry.engine, world.clock()
    key, info = create_api_key(engine, "cardhub", ["transfer"], "short-lived", now)
    assert world.client.get("/v1/transfers", headers=bearer(key)).status_code == 200
    revoke_api_key(engine, info.id, now)
    assert world.client.get("/v1/transfers", headers=bearer(key)).status_code == 401


# -- tenants (THREATS 35, 36): on SQLite and PostgreSQL ----------------------------------------


def _normalised(answer: httpx2.Response, transfer_id: int) -> tuple[Any, ...]:
    body = answer.json()
    body["detail"] = body["detail"].replace(str(transfer_id), "<id>")
    return answer.status_code, answer.headers["content-type"], body, sorted(answer.headers.keys())


def check_platform_isolation(world: World) -> None:
    client, a, b = world.client, world.headers(PLATFORM), bearer(world.platform_b_key)
    assert client.get(f"/v1/transfers/{world.transfer_a}", headers=a).status_code == 200
    # B asking for A's transfer learns exactly what asking for one that never existed tells.
    nonexistent = world.transfer_a + 10**6
    theirs = client.get(f"/v1/transfers/{world.transfer_a}", headers=b)
    missing = client.get(f"/v1/transfers/{nonexistent}", headers=b)
    assert theirs.status_code == 404
    assert _normalised(theirs, world.transfer_a) == _normalised(missing, nonexistent)
    # And the other way round.
    assert client.get(f"/v1/transfers/{world.transfer_b}", headers=a).status_code == 404
    # Lists are scoped server-side, whatever filter is asked for.
    listed_b = client.get("/v1/transfers", headers=b, params={"limit": 200}).json()["items"]
    assert {item["platform"] for item in listed_b} == {"keyshop"}
    assert world.transfer_a not in {item["transfer_id"] for item in listed_b}
    filtered = client.get(
        "/v1/transfers",
        headers=b,
        params={"good_type": "code", "fingerprint": hex0x(world.good), "platform": "cardhub"},
    )
    assert filtered.status_code == 200 and filtered.json()["items"] == []
    listed_a = client.get("/v1/transfers", headers=a, params={"limit": 200}).json()["items"]
    assert world.transfer_a in {item["transfer_id"] for item in listed_a}
    assert world.transfer_b not in {item["transfer_id"] for item in listed_a}


def check_creator_isolation(world: World) -> None:
    client = world.client
    mine = bearer(str(world.credentials[CREATOR]))
    theirs = bearer(sign_in(client, world.creator_b, world.clock()))
    a_goods = client.get("/v1/creators/me/goods", headers=mine, params={"limit": 200}).json()
    assert hex0x(world.good) in {g["fingerprint"] for g in a_goods["items"]}
    a_statement = client.get("/v1/creators/me/royalties", headers=mine).json()
    assert a_statement["lines"], "creator A's resale should owe royalties"
    a_fingerprints = {g["fingerprint"] for g in a_goods["items"]}
    # Creator B, even naming creator A in every way a client might try.
    for params in ({}, {"creator": world.creator_a.address}, {"address": world.creator_a.address}):
        goods = client.get("/v1/creators/me/goods", headers=theirs, params={"limit": 200, **params})
        assert goods.status_code == 200, goods.text
        assert len(goods.json()["items"]) == 1  # B's own good
        assert not a_fingerprints & {g["fingerprint"] for g in goods.json()["items"]}
        for format_ in ("json", "csv"):
            statement = client.get(
                "/v1/creators/me/royalties", headers=theirs, params={"format": format_, **params}
            )
            assert statement.status_code == 200, statement.text
            assert hex0x(world.good) not in statement.text.lower()
            assert world.creator_a.address.lower() not in statement.text.lower()
            if format_ == "json":
                assert statement.json()["lines"] == [] and statement.json()["totals"] == []


def test_platforms_never_see_each_others_transfers(world: World) -> None:
    check_platform_isolation(world)


def test_creators_never_see_each_others_goods_or_royalties(world: World) -> None:
    check_creator_isolation(world)


#: The routes whose answers depend on who is asking, swept on both databases.
TENANT_SCOPED = (
    "record_transfer",
    "get_transfer",
    "list_transfers",
    "list_webhooks",
    "get_webhook",
    "list_my_goods",
    "get_my_royalty_statement",
    "get_good_history",
    "get_good_trace",
    "verify_good",
)


def test_tenants_and_scoped_routes_on_both_databases(registry: Registry, clock: Clock) -> None:
    """The tenant checks and the scoped routes' rows of the matrix, on each database."""
    with build_world(registry, clock) as world:
        check_platform_isolation(world)
        check_creator_isolation(world)
        wrong = []
        for route in (r for r in ROUTES if r.operation_id in TENANT_SCOPED):
            for role in ROLES:
                try:
                    check_answer(route, role, world.send(route, role), world.credentials[role])
                except AssertionError as exc:
                    wrong.append(str(exc).splitlines()[0])
        assert not wrong, "\n".join(wrong)
