"""Creator identity over HTTP: a domain served on loopback is proved, shows in verify answers
and traces, is logged as a CREATOR_IDENTITY entry that verifies offline, and lapses when its
statement goes; a statement signed by another key and a refused host write nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.identity import load_identity_settings
from readmodels.bundles import build_bundle
from registry import identity as store
from registry.creator import CreatorKeys
from registry.db import read_transaction
from registry.eip712 import DEV_DOMAIN, Domain
from registry.fingerprints import GoodType
from registry.leaf import NO_GOOD, EntryKind, LeafData, payload_hash, subject_fingerprint
from registry.log import entries_t
from registry.merkle import verify_inclusion
from registry.service import Registry
from tests.api.conftest import SIWE_DOMAIN, CodeGood, KeyFactory, bearer, sign_in
from tests.conftest import Clock
from tests.trust import policy_of
from verifier.bundle import Bundle, MalformedBundle
from verifier.errors import BundleInvalid
from verifier.identity import WELL_KNOWN_PATH, CreatorStatement, StatementWrongSigner
from verifier.identityclaim import InvalidIdentityEntry, verify_identity_entry
from verifier.offline import check_bundle

NAME = "Studio Nørd"


class StatementServer:
    """A web domain on loopback: serves ``WELL_KNOWN_PATH`` while ``body`` is set (404 after)."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = owner.body if self.path == WELL_KNOWN_PATH else None
                self.send_response(404 if body is None else 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.body: bytes | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[StatementServer]:
    server = StatementServer()
    yield server
    server.close()


@pytest.fixture
def loopback_client(registry: Registry) -> Iterator[TestClient]:
    settings = load_identity_settings(allow_http=True, allow_loopback=True)
    app = create_app(
        registry, siwe_domain=SIWE_DOMAIN, telemetry_interval=0.05, identity_settings=settings
    )
    with TestClient(app) as test_client:
        yield test_client


def statement(keys: CreatorKeys, domain: str, now: int, *, domain712: Domain = DEV_DOMAIN) -> bytes:
    signed = CreatorStatement.signed(
        private_key=bytes(keys.account.key),
        domain=domain,
        name=NAME,
        issued_at=now,
        eip712_domain=domain712,
    )
    return signed.to_json().encode("utf-8")


def identity_rows(registry: Registry) -> tuple[int, int]:
    """(CREATOR_IDENTITY entries, creator_identities rows)."""
    with read_transaction(registry.engine) as conn:
        entries = conn.execute(
            select(func.count())
            .select_from(entries_t)
            .where(entries_t.c.kind == int(EntryKind.CREATOR_IDENTITY))
        ).scalar_one()
        rows = conn.execute(select(func.count()).select_from(store.identities_t)).scalar_one()
    return int(entries), int(rows)


def verify_answer(client: TestClient, key: str, good: CodeGood) -> dict[str, Any]:
    answer = client.post(
        "/v1/verify", json={"good_type": "code", "fingerprint": good.hex}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_domain_on_loopback_is_proved_shown_logged_and_lapses(
    loopback_client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    site: StatementServer,
    make_key: KeyFactory,
    clock: Clock,
) -> None:
    client, keys = loopback_client, code_good.creator
    platform = make_key("cardhub", "verify")
    assert verify_answer(client, platform, code_good)["creator_identity"] is None

    site.body = statement(keys, site.domain, clock())
    session = bearer(sign_in(client, keys, clock()))
    proved = client.post("/v1/creators/me/identity", json={"domain": site.domain}, headers=session)
    assert proved.status_code == 201, proved.text
    assert proved.json()["name"] == NAME and proved.json()["status"] == "verified"

    # The verify answer names the creator and how it was verified.
    shown = verify_answer(client, platform, code_good)["creator_identity"]
    assert shown == {
        "name": NAME,
        "domain": site.domain,
        "status": "verified",
        "checked_at": clock(),
        "method": f"signed statement at http://{site.domain}{WELL_KNOWN_PATH}, "
        "checked by the registry",
    }

    # Logged: its leaf re-encodes, is in the signed tree, and its payload verifies offline
    # under the registry's domain only.
    assert store.latest_identity_entry(registry, bytes.fromhex(keys.address[2:])) is None  # queued
    head = registry.sequence_all()
    assert head is not None
    creator = bytes.fromhex(keys.address[2:])
    entry = store.latest_identity_entry(registry, creator)
    assert entry is not None and entry.leaf_index is not None
    assert entry.kind is EntryKind.CREATOR_IDENTITY and entry.good_type is None
    assert entry.actor == bytes.fromhex(registry.address[2:])
    assert entry.fingerprint == subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator)
    leaf = LeafData.decode(entry.leaf_data())
    assert leaf.encode() == entry.leaf_data() and leaf.good_type is None
    assert entry.leaf_data()[64:96] == NO_GOOD.to_bytes(32, "big")
    proof = registry.inclusion_proof(entry.leaf_index, head.tree_size)
    verify_inclusion(leaf.leaf_hash(), entry.leaf_index, head.tree_size, proof, head.root)
    with read_transaction(registry.engine) as conn:
        payload = store.identity_payload_of(conn, entry.entry_id)
    claim = verify_identity_entry(
        payload, creator=creator, eip712_domain=registry.domain, registry=registry.address
    )
    assert (claim.name, claim.status, claim.domain) == (NAME, "verified", site.domain)
    other = Domain(registry.domain.chain_id + 1, registry.domain.verifying_contract)
    with pytest.raises(InvalidIdentityEntry, match="not signed"):
        verify_identity_entry(
            payload, creator=creator, eip712_domain=other, registry=registry.address
        )
    with pytest.raises(InvalidIdentityEntry, match="attested by"):
        verify_identity_entry(
            payload, creator=creator, eip712_domain=registry.domain, registry="0x" + "11" * 20
        )
    with pytest.raises(InvalidIdentityEntry, match="is about"):
        verify_identity_entry(
            payload, creator=bytes(19) + b"\x01", eip712_domain=registry.domain,
            registry=registry.address,
        )  # fmt: skip

    # The trace shows it too.
    audit = make_key("auditor", "audit")
    trace = client.get(f"/v1/goods/code/{code_good.hex}/trace", headers=bearer(audit))
    assert trace.status_code == 200, trace.text
    assert trace.json()["creator_identity"]["name"] == NAME

    # A re-check while it is still served changes nothing in the log.
    clock.advance(60)
    again = client.post("/v1/creators/me/identity/recheck", headers=session)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "verified" and again.json()["entry_id"] is None
    assert identity_rows(registry) == (1, 1)

    # Removed: the re-check lapses it, says so in the answer, and logs a second entry.
    site.body = None
    clock.advance(60)
    lapsed = client.post("/v1/creators/me/identity/recheck", headers=session)
    assert lapsed.status_code == 200, lapsed.text
    assert lapsed.json()["status"] == "lapsed"
    shown = verify_answer(client, platform, code_good)["creator_identity"]
    assert shown["status"] == "lapsed" and shown["name"] == NAME
    assert shown["checked_at"] == clock()
    registry.sequence_all()
    assert identity_rows(registry) == (2, 1)
    newest = store.latest_identity_entry(registry, creator)
    # The first entry after the head that logged the first one (which ended with its state
    # commitment, issue 14).
    assert newest is not None and newest.leaf_index == head.tree_size
    with read_transaction(registry.engine) as conn:
        lapsed_payload = store.identity_payload_of(conn, newest.entry_id)
    claim = verify_identity_entry(
        lapsed_payload, creator=creator, eip712_domain=registry.domain, registry=registry.address
    )
    assert claim.status == "lapsed" and "404" in lapsed_payload["reason"]


def test_a_statement_signed_by_another_key_is_refused_and_writes_nothing(
    loopback_client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    site: StatementServer,
    clock: Clock,
) -> None:
    impostor = CreatorKeys(Account.create(), None)
    # The impostor's signature, under the creator's address.
    forged = CreatorStatement.signed(
        private_key=bytes(impostor.account.key),
        domain=site.domain,
        name=NAME,
        issued_at=clock(),
        eip712_domain=DEV_DOMAIN,
    )
    document = forged.document() | {"creator": creator.address}
    site.body = CreatorStatement.from_document(document).to_json().encode()
    session = bearer(sign_in(loopback_client, creator, clock()))
    refused = loopback_client.post(
        "/v1/creators/me/identity", json={"domain": site.domain}, headers=session
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"].endswith("/identity-wrong-signer")
    assert identity_rows(registry) == (0, 0)

    # Signed by the right key but under another registry's EIP-712 domain: refused too.
    other = Domain(DEV_DOMAIN.chain_id + 1, DEV_DOMAIN.verifying_contract)
    site.body = statement(creator, site.domain, clock(), domain712=other)
    refused = loopback_client.post(
        "/v1/creators/me/identity", json={"domain": site.domain}, headers=session
    )
    assert refused.json()["type"].endswith("/identity-wrong-signer"), refused.text
    # Another creator's (valid) statement does not prove this creator.
    site.body = statement(impostor, site.domain, clock())
    refused = loopback_client.post(
        "/v1/creators/me/identity", json={"domain": site.domain}, headers=session
    )
    assert refused.json()["type"].endswith("/identity-statement-mismatch"), refused.text
    assert identity_rows(registry) == (0, 0)


def test_the_guard_refuses_loopback_and_private_hosts_without_naming_addresses(
    client: TestClient,
    registry: Registry,
    creator: CreatorKeys,
    site: StatementServer,
    clock: Clock,
) -> None:
    # The default app: https only, no loopback (production's settings).
    site.body = statement(creator, site.domain, clock())
    session = bearer(sign_in(client, creator, clock()))
    refused = client.post("/v1/creators/me/identity", json={"domain": site.domain}, headers=session)
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/identity-host-refused"), refused.text


def test_a_name_resolving_to_loopback_is_refused_without_the_address(
    registry: Registry, creator: CreatorKeys, site: StatementServer, clock: Clock
) -> None:
    settings = load_identity_settings(allow_http=True, allow_loopback=False)
    app = create_app(registry, siwe_domain=SIWE_DOMAIN, identity_settings=settings)
    port = site.domain.split(":")[1]
    site.body = statement(creator, f"localhost:{port}", clock())
    with TestClient(app) as client:
        session = bearer(sign_in(client, creator, clock()))
        for domain in (f"localhost:{port}", "10.1.2.3", "169.254.169.254"):
            refused = client.post(
                "/v1/creators/me/identity", json={"domain": domain}, headers=session
            )
            assert refused.status_code == 400, refused.text
            problem = refused.json()
            assert problem["type"].endswith("/identity-host-refused"), problem
            assert domain.split(":")[0] in problem["detail"]
            if domain.startswith("localhost"):
                assert "127.0.0.1" not in problem["detail"] and "::1" not in problem["detail"]
    assert identity_rows(registry) == (0, 0)


def test_proving_needs_a_creator_session(loopback_client: TestClient, make_key: KeyFactory) -> None:
    anonymous = loopback_client.post("/v1/creators/me/identity", json={"domain": "a.example"})
    assert anonymous.status_code == 401
    platform = loopback_client.post(
        "/v1/creators/me/identity",
        json={"domain": "a.example"},
        headers=bearer(make_key("cardhub", "verify")),
    )
    assert platform.status_code == 403


def test_the_cli_signs_the_statement_the_registry_accepts(
    tmp_path: Path, site: StatementServer
) -> None:
    from tests.api.test_cli import Cli

    cli = Cli(tmp_path)
    cli("init")
    cli("keys", "new")
    path = tmp_path / "tracemark-creator.json"
    cli("creator", "identity", "--sign", "--domain", site.domain, "--name", "Studio CLI",
        "--out", path)  # fmt: skip
    signed = CreatorStatement.parse(path.read_bytes())
    address = cli.json("keys", "show")["address"]
    assert (signed.creator, signed.name, signed.domain) == (address, "Studio CLI", site.domain)
    # Signed under the CLI's configured domain (the dev chain's here); another one refuses it.
    signed.check(creator=address, domain=site.domain, eip712_domain=DEV_DOMAIN)
    other = Domain(DEV_DOMAIN.chain_id + 1, DEV_DOMAIN.verifying_contract)
    with pytest.raises(StatementWrongSigner):
        signed.check(creator=address, domain=site.domain, eip712_domain=other)
    assert cli("creator", "identity", "--domain", site.domain, expect=3).stdout == ""


def test_bundles_prove_the_creators_name_and_its_lapse_and_refuse_a_forged_one(
    loopback_client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    site: StatementServer,
    clock: Clock,
) -> None:
    """Issue 11: the verified name shows in bundles, proved offline under the pinned trust
    root; a lapsed one shows as no longer verified; a name the log does not prove never shows."""
    client, keys = loopback_client, code_good.creator
    policy = policy_of(registry)
    before = build_bundle(registry, GoodType.CODE, code_good.fingerprint)
    assert before.format == "tracemark-bundle/v4" and before.creator_identity is None
    report = check_bundle(before, policy, None)
    assert report.creator_identity is None and "(no verified name)" in report.summary()

    site.body = statement(keys, site.domain, clock())
    session = bearer(sign_in(client, keys, clock()))
    proved = client.post("/v1/creators/me/identity", json={"domain": site.domain}, headers=session)
    assert proved.status_code == 201, proved.text
    registry.sequence_all()
    bundle = Bundle.parse(build_bundle(registry, GoodType.CODE, code_good.fingerprint).to_json())
    assert bundle.creator_identity is not None
    report = check_bundle(bundle, policy, None)
    assert report.creator_identity is not None
    assert (report.creator_identity.name, report.creator_identity.status) == (NAME, "verified")
    assert f"is {NAME!r}, verified owner of {site.domain}" in report.summary()
    assert report.as_dict()["creator_identity"]["name"] == NAME

    # Forged: another name in the payload, another creator's entry, another attester.
    identity = bundle.creator_identity
    renamed = {**identity.payload, "identity": {**identity.payload["identity"], "name": "Big Co"}}
    probes = {
        "renamed": identity.model_copy(
            update={"payload": renamed, "payload_hash": payload_hash(renamed)}
        ),
        "other-subject": identity.model_copy(
            update={"fingerprint": subject_fingerprint(EntryKind.CREATOR_IDENTITY, b"\x01" * 20)}
        ),
        "other-attester": identity.model_copy(update={"actor": b"\x11" * 20}),
        "proof-bit": identity.model_copy(
            update={
                "inclusion_proof": tuple(
                    bytes([node[0] ^ 1]) + node[1:] for node in identity.inclusion_proof
                )
                or (b"\x00" * 32,)
            }
        ),
    }
    for name, forged in probes.items():
        candidate = Bundle.parse(bundle.model_copy(update={"creator_identity": forged}).to_json())
        with pytest.raises(BundleInvalid) as caught:
            check_bundle(candidate, policy, None)
        assert caught.value.step == "identity", (name, caught.value.detail)

    # Lapsed: shown as no longer verified, never as the name.
    site.body = None
    clock.advance(60)
    lapsed = client.post("/v1/creators/me/identity/recheck", headers=session)
    assert lapsed.json()["status"] == "lapsed", lapsed.text
    registry.sequence_all()
    report = check_bundle(
        build_bundle(registry, GoodType.CODE, code_good.fingerprint), policy, None
    )
    assert report.creator_identity is not None and report.creator_identity.status == "lapsed"
    assert "NO LONGER VERIFIED" in report.summary() and "verified owner" not in report.summary()

    # A v1 bundle (made before identities) still parses and verifies; it shows no name.
    old = bundle.model_dump(mode="json", exclude={"creator_identity", "state", "checkpoint"})
    old["format"] = "tracemark-bundle/v1"
    v1 = Bundle.parse(json.dumps(old))
    assert check_bundle(v1, policy, None).creator_identity is None
    with pytest.raises(MalformedBundle, match="has no creator_identity"):
        Bundle.parse(json.dumps({**old, "creator_identity": None}))
