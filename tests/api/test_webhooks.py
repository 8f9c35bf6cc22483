"""Webhooks end to end: a real receiver on 127.0.0.1, the real app (TestClient) and its delivery
worker, on SQLite and PostgreSQL; signatures checked with ``verifier.webhooks``; SSRF refusals
(THREATS 42) at subscription time and before every connection; tenants; secrets kept out of
logs."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from anchoring.models import AnchorRecord
from api.app import create_app
from api.webhooks import WebhookPolicy, WebhookService, WebhookSettings, publish_signal
from api.webhooks.outbox import Claim
from api.webhooks.publish import publish_signals
from api.webhooks.ssrf import (
    PortRefused,
    TargetRefused,
    check_addresses,
    parse_target,
    refusal,
    resolve,
)
from api.webhooks.store import subscriptions_t
from api.webhooks.worker import _client, send_once
from readmodels.riskworker import RiskWorker
from registry.db import read_transaction, write_transaction
from registry.service import Registry
from tests.api.conftest import SIWE_DOMAIN, CodeGood, KeyFactory, bearer
from tests.polling import wait_until
from verifier.webhooks import (
    WebhookVerificationError,
    encode_secret,
    verify_webhook,
    webhook_headers,
)

PROBLEM = "application/problem+json"
#: Loopback and http allowed (the receiver runs here), tiny back-off: 3 attempts in ~0.2 s.
TEST_SETTINGS = WebhookSettings(
    allow_http=True,
    allow_loopback=True,
    max_attempts=3,
    retry_base=0.05,
    retry_factor=2.0,
    poll_interval=0.05,
    connect_timeout=1.0,
    total_timeout=2.0,
)
#: Production's policy: https only, public addresses only.
DEFAULT_SETTINGS = WebhookSettings(allow_http=False, allow_loopback=False)
#: For tests whose subject is not storage: SQLite only, to keep the module fast.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


# -- a real receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers from a script (then 200) and keeps requests."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    location: str | None = None
    #: Seconds to wait before answering (a slow receiver).
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        wait(lambda: len(self.requests) >= count, timeout, f"{count} requests at the receiver")
        return self.requests


def wait(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "it") -> Any:
    return wait_until(what, predicate, timeout=timeout, every=0.02)


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def make(
        statuses: list[int] | None = None, location: str | None = None, delay: float = 0.0
    ) -> Receiver:
        receiver: Receiver

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if receiver.location is not None:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        receiver = Receiver(server, statuses=list(statuses or []), location=location, delay=delay)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the app ------------------------------------------------------------------------------------


@pytest.fixture
def hook_app(registry: Registry) -> FastAPI:
    return create_app(
        registry,
        siwe_domain=SIWE_DOMAIN,
        telemetry_interval=0.05,
        webhook_settings=TEST_SETTINGS,
    )


@pytest.fixture
def hooks(hook_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(hook_app) as test_client:
        yield test_client


def subscribe(client: TestClient, key: str, url: str, *events: str) -> dict[str, Any]:
    answer = client.post(
        "/v1/webhooks",
        json={"url": url, "event_types": list(events or ["transfer.recorded"])},
        headers=bearer(key),
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def report(
    client: TestClient, key: str, good: CodeGood, seller: dict[str, Any], buyer: str
) -> httpx2.Response:
    return client.post(
        "/v1/transfers",
        json={
            "good_type": "code",
            "fingerprint": good.hex,
            "seller": seller,
            "buyer": {"reference": buyer},
        },
        headers=bearer(key),
    )


def sell(client: TestClient, key: str, good: CodeGood, seller: dict[str, Any], buyer: str) -> int:
    answer = report(client, key, good, seller, buyer)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["transfer_id"])


def deliveries(client: TestClient, key: str, webhook_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def settled(client: TestClient, key: str, webhook_id: int, count: int = 1) -> list[dict[str, Any]]:
    """The delivery log once ``count`` deliveries are no longer pending."""

    def done() -> list[dict[str, Any]] | None:
        items = deliveries(client, key, webhook_id)
        finished = [d for d in items if d["state"] != "pending"]
        return items if len(finished) >= count else None

    return list(wait(done, 10.0, f"{count} settled deliveries"))


def insert_anchor(registry: Registry, state: str) -> int:
    """An ``anchors`` row for the current head, as the anchoring worker writes it."""
    head = registry.latest_tree_head()
    assert head is not None
    now = registry.clock()
    table = AnchorRecord.__table__  # type: ignore[attr-defined]
    with write_transaction(registry.engine) as conn:
        return int(
            conn.execute(
                table.insert()
                .values(
                    tree_size=head.tree_size,
                    root=head.root,
                    previous_size=0,
                    state=state,
                    nonce=0,
                    tx_hash=b"\x11" * 32,
                    block_number=7,
                    block_hash=b"\x22" * 32,
                    created_at=now,
                    updated_at=now,
                )
                .returning(table.c.id)
            ).scalar_one()
        )


# -- delivery -----------------------------------------------------------------------------------


def test_transfer_recorded_is_signed_and_delivered_once(
    hooks: TestClient,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    key = make_key("cardhub", "transfer")
    receiver = make_receiver()
    # A transfer before the subscription exists is not sent: it hears of what comes after.
    sell(hooks, key, code_good, {"creator": True}, "agent-1")
    created = subscribe(hooks, key, receiver.url, "transfer.recorded")
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["event_types"] == ["transfer.recorded"]
    transfer_id = sell(
        hooks, key, code_good, {"platform": "cardhub", "reference": "agent-1"}, "buyer-2"
    )

    (request,) = receiver.wait_for(1)
    verify_webhook(secret, request.headers, request.body)
    event = json.loads(request.body)
    assert event["type"] == "transfer.recorded"
    assert event["timestamp"].endswith("Z")
    # The data is the receipt exactly as GET /v1/transfers/{id} answers it.
    receipt = hooks.get(f"/v1/transfers/{transfer_id}", headers=bearer(key)).json()
    assert event["data"] == receipt
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{receiver.server.server_port}"

    (delivery,) = settled(hooks, key, created["id"])
    assert delivery["state"] == "delivered" and delivery["attempts"] == 1
    assert delivery["msg_id"] == request.headers["webhook-id"]
    assert delivery["log"][0]["status_code"] == 200 and delivery["log"][0]["error"] is None
    assert delivery["next_attempt_ms"] is None
    # Tampering with anything signed is caught.
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, request.headers, request.body.replace(b"buyer", b"BUYER"))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, {**request.headers, "webhook-id": "msg_other"}, request.body)
    # Nothing more is sent, and the secret is never shown again.
    time.sleep(0.3)
    assert len(receiver.requests) == 1
    listed = hooks.get("/v1/webhooks", headers=bearer(key)).json()
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    one = hooks.get(f"/v1/webhooks/{created['id']}", headers=bearer(key))
    assert one.status_code == 200 and "secret" not in one.json()
    assert secret not in json.dumps(listed) + one.text


def test_a_failed_attempt_is_retried_with_the_same_id(
    hooks: TestClient,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    key = make_key("cardhub", "transfer")
    receiver = make_receiver(statuses=[500])
    created = subscribe(hooks, key, receiver.url)
    sell(hooks, key, code_good, {"creator": True}, "agent-1")

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    verify_webhook(created["secret"], first.headers, first.body)
    verify_webhook(created["secret"], second.headers, second.body)
    (delivery,) = settled(hooks, key, created["id"])
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2
    assert [(a["attempt"], a["status_code"]) for a in delivery["log"]] == [(1, 500), (2, 200)]
    assert delivery["log"][0]["error"] == "HTTP 500"


def test_a_dead_receiver_exhausts_the_retries(
    hooks: TestClient, make_key: KeyFactory, code_good: CodeGood
) -> None:
    key = make_key("cardhub", "transfer")
    created = subscribe(hooks, key, f"http://127.0.0.1:{closed_port()}/hook")
    sell(hooks, key, code_good, {"creator": True}, "agent-1")

    (delivery,) = settled(hooks, key, created["id"])
    assert delivery["state"] == "failed"
    assert delivery["attempts"] == TEST_SETTINGS.max_attempts
    assert [a["attempt"] for a in delivery["log"]] == [1, 2, 3]
    assert all(a["status_code"] is None and a["error"] for a in delivery["log"])
    assert delivery["next_attempt_ms"] is None and delivery["last_status"] is None
    failed = hooks.get(
        f"/v1/webhooks/{created['id']}/deliveries", params={"state": "failed"}, headers=bearer(key)
    )
    assert [d["id"] for d in failed.json()["items"]] == [delivery["id"]]


def test_anchor_final_is_sent_when_an_anchor_becomes_final(
    hooks: TestClient,
    registry: Registry,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    key = make_key("cardhub", "transfer")
    receiver = make_receiver()
    created = subscribe(hooks, key, receiver.url, "anchor.final")
    # Mined is not final yet: nothing is sent, and the poller's mark waits below it.
    anchor_id = insert_anchor(registry, "mined")
    time.sleep(0.3)
    assert receiver.requests == []
    later = insert_anchor(registry, "final")  # a later anchor final first is sent at once
    (first,) = receiver.wait_for(1)
    assert json.loads(first.body)["data"]["anchor_id"] == later
    table = AnchorRecord.__table__  # type: ignore[attr-defined]
    with write_transaction(registry.engine) as conn:
        conn.execute(update(table).where(table.c.id == anchor_id).values(state="final"))

    _, second = receiver.wait_for(2)
    verify_webhook(created["secret"], second.headers, second.body)
    event = json.loads(second.body)
    head = registry.latest_tree_head()
    assert head is not None
    assert event["type"] == "anchor.final"
    assert event["data"]["anchor_id"] == anchor_id
    assert event["data"]["tree_size"] == head.tree_size
    assert event["data"]["root"] == "0x" + head.root.hex()
    assert event["data"]["tx_hash"] == "0x" + "11" * 32
    assert event["data"]["chain_id"] == registry.domain.chain_id
    time.sleep(0.3)
    assert len(receiver.requests) == 2  # each anchor once


def test_signal_raised_goes_only_to_the_platform_it_concerns(
    hooks: TestClient,
    registry: Registry,
    make_key: KeyFactory,
    make_receiver: Callable[..., Receiver],
) -> None:
    ours, theirs = make_receiver(), make_receiver()
    key_a, key_b = make_key("cardhub", "transfer"), make_key("keyshop", "transfer")
    created = subscribe(hooks, key_a, ours.url, "signal.raised")
    subscribe(hooks, key_b, theirs.url, "signal.raised")
    fingerprint = bytes(range(32))
    for _ in range(2):  # published twice (a retried transaction): queued once
        with write_transaction(registry.engine) as conn:
            publish_signal(
                conn,
                platform="cardhub",
                signal_id="sig-1",
                code="velocity",
                detail="42 codes of batch 7 in 5 minutes",
                now=registry.clock(),
                good_type="code",
                fingerprint=fingerprint,
                evidence={"batch": 7, "codes": 42},
            )
    (request,) = ours.wait_for(1)
    verify_webhook(created["secret"], request.headers, request.body)
    event = json.loads(request.body)
    assert event["type"] == "signal.raised"
    assert event["data"] == {
        "signal_id": "sig-1",
        "code": "velocity",
        "detail": "42 codes of batch 7 in 5 minutes",
        "good": {"good_type": "code", "fingerprint": "0x" + fingerprint.hex()},
        "evidence": {"batch": 7, "codes": 42},
    }
    time.sleep(0.3)
    assert len(ours.requests) == 1 and theirs.requests == []


def test_a_refused_double_sale_shows_in_verify_the_signals_list_and_a_webhook(
    hooks: TestClient,
    registry: Registry,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    """The risk worker wired in: a signal it raises is announced once to the platforms it
    concerns, listed for auditors with its evidence, and part of every verify answer."""
    worker = RiskWorker(registry.engine, clock=registry.clock, publish=publish_signals)
    seller, rival = make_key("cardhub", "transfer", "verify"), make_key("gamemart", "transfer")
    auditor, bystander = make_key("auditco", "audit"), make_key("keyshop", "transfer")
    ours, theirs = make_receiver(), make_receiver()
    created = subscribe(hooks, rival, ours.url, "signal.raised")
    subscribe(hooks, bystander, theirs.url, "signal.raised")
    assert worker.run_once().raised == 0

    def risk() -> dict[str, Any]:
        check = {"good_type": "code", "fingerprint": code_good.hex}
        answer = hooks.post("/v1/verify", json=check, headers=bearer(seller)).json()
        assert answer["verdict"] == "pending_anchor"
        return dict(answer["risk"])

    before = risk()
    assert [s["code"] for s in before["signals"]] == ["unanchored"]
    sell(hooks, seller, code_good, {"creator": True}, "agent-1")
    assert report(hooks, rival, code_good, {"creator": True}, "u-9").status_code == 409
    assert worker.run_once().raised == 1

    (request,) = ours.wait_for(1)
    verify_webhook(created["secret"], request.headers, request.body)
    event = json.loads(request.body)
    assert event["type"] == "signal.raised"
    assert event["data"]["code"] == "sold-by-non-holder"
    assert event["data"]["good"] == {"good_type": "code", "fingerprint": code_good.hex}
    assert event["data"]["evidence"]["platforms"] == ["cardhub", "gamemart"]

    after = risk()
    assert "sold-by-non-holder" in [s["code"] for s in after["signals"]]
    assert after["score"] >= 0.7 > before["score"]

    listed = hooks.get(
        "/v1/signals", params={"good": f"code:{code_good.hex}"}, headers=bearer(auditor)
    )
    assert listed.status_code == 200, listed.text
    (item,) = [i for i in listed.json()["items"] if i["code"] == "sold-by-non-holder"]
    assert item == event["data"]["evidence"]
    assert item["signal_id"] == event["data"]["signal_id"]
    assert [e["kind"] for e in item["evidence"]] == ["transfer", "attempt"]
    assert "gamemart reported the creator -> gamemart/" in item["evidence"][1]["detail"]

    assert worker.run_once().raised == 0  # a standing signal is announced once
    # ... across restarts too: a new worker reads what was raised from the table.
    assert (
        RiskWorker(registry.engine, clock=registry.clock, publish=publish_signals).run_once().raised
        == 0
    )
    time.sleep(0.3)
    assert len(ours.requests) == 1 and theirs.requests == []
    assert hooks.get("/v1/signals", headers=bearer(seller)).status_code == 403
    assert hooks.get("/v1/signals").status_code == 401


@sqlite_only
def test_a_deleted_subscription_gets_nothing(
    hooks: TestClient,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    key = make_key("cardhub", "transfer")
    receiver = make_receiver()
    created = subscribe(hooks, key, receiver.url)
    assert hooks.delete(f"/v1/webhooks/{created['id']}", headers=bearer(key)).status_code == 204
    sell(hooks, key, code_good, {"creator": True}, "agent-1")
    time.sleep(0.3)
    assert receiver.requests == []
    assert hooks.get(f"/v1/webhooks/{created['id']}", headers=bearer(key)).status_code == 404
    assert hooks.get("/v1/webhooks", headers=bearer(key)).json()["items"] == []


# -- redirects and SSRF (THREATS 42) ------------------------------------------------------------


@sqlite_only
def test_a_redirect_is_not_followed(
    hooks: TestClient,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
) -> None:
    target = make_receiver()
    redirecting = make_receiver(statuses=[302, 302, 302], location=target.url)
    key = make_key("cardhub", "transfer")
    created = subscribe(hooks, key, redirecting.url)
    sell(hooks, key, code_good, {"creator": True}, "agent-1")

    (delivery,) = settled(hooks, key, created["id"])
    assert delivery["state"] == "failed"
    assert [a["status_code"] for a in delivery["log"]] == [302, 302, 302]
    assert "not followed" in delivery["log"][0]["error"]
    assert len(redirecting.requests) == 3 and target.requests == []


REFUSED_URLS = [
    "http://example.com/hook",  # http without the development switch
    "ftp://example.com/hook",
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/hook",  # shared address space
    "https://0.0.0.0/hook",
    "https://224.0.0.1/hook",
    "https://255.255.255.255/hook",
    "https://[::1]/hook",
    "https://[::]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://[::ffff:169.254.169.254]/hook",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://[ff02::1]/hook",
    "https://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
    "https://localhost/hook",  # a name that resolves to loopback
    "https://2130706433/hook",  # 127.0.0.1 written as a number
    "https://user:password@example.com/hook",
    "https://example.com/hook#fragment",
]


@sqlite_only
def test_ssrf_targets_are_refused_at_subscription_time(
    registry: Registry, make_key: KeyFactory
) -> None:
    app = create_app(registry, siwe_domain=SIWE_DOMAIN, webhook_settings=DEFAULT_SETTINGS)
    key = make_key("cardhub", "transfer")
    with TestClient(app) as client:
        for url in REFUSED_URLS:
            answer = client.post(
                "/v1/webhooks",
                json={"url": url, "event_types": ["anchor.final"]},
                headers=bearer(key),
            )
            assert answer.status_code == 400, (url, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.json()["type"].endswith("/webhook-target-refused"), url
        assert client.get("/v1/webhooks", headers=bearer(key)).json()["items"] == []


@sqlite_only
@pytest.mark.parametrize(
    "url",
    [
        "https://example.com:0/hook",  # parsed as port 0, once taken for the default 443
        "https://93.184.216.34:0/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]:0/hook",
        "https://example.com:65536/hook",
        "https://example.com:99999/hook",
    ],
)
def test_a_port_nothing_can_answer_on_is_refused_at_subscription(
    registry: Registry, make_key: KeyFactory, url: str
) -> None:
    with pytest.raises(PortRefused):
        parse_target(url, WebhookPolicy())
    app = create_app(registry, siwe_domain=SIWE_DOMAIN, webhook_settings=DEFAULT_SETTINGS)
    key = make_key("cardhub", "transfer")
    with TestClient(app) as client:
        answer = client.post(
            "/v1/webhooks", json={"url": url, "event_types": ["anchor.final"]}, headers=bearer(key)
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert "port" in answer.json()["detail"]
        assert client.get("/v1/webhooks", headers=bearer(key)).json()["items"] == []
    # The default ports stay the scheme's.
    assert parse_target("https://example.com/hook", WebhookPolicy()).port == 443
    assert parse_target("https://example.com:8443/hook", WebhookPolicy()).port == 8443


@pytest.mark.parametrize(
    "address",
    ["10.1.2.3", "127.0.0.53", "169.254.169.254", "::1", "::ffff:10.0.0.1", "64:ff9b::a00:1"],
)
def test_a_refused_host_is_named_never_the_address_it_resolves_to(address: str) -> None:
    """Internal DNS is not for any key holder to read: the refusal names the host and the
    class of address (loopback, private...), never the address or what it embeds."""
    policy = WebhookPolicy()
    target = parse_target("https://hooks.internal.example/x", policy)
    resolved = ipaddress.ip_address(address)
    with pytest.raises(TargetRefused) as refused:
        check_addresses(target, [ipaddress.ip_address("93.184.216.34"), resolved], policy)
    detail = refused.value.detail
    assert "hooks.internal.example" in detail and "address" in detail
    assert address not in detail and str(resolved) not in detail
    for part in (resolved, getattr(resolved, "ipv4_mapped", None)):
        assert part is None or str(part) not in detail
    words = detail.replace("hooks.internal.example", "").replace("IPv6", "")
    assert not any(char.isdigit() for char in words), detail


@sqlite_only
def test_a_name_that_resolves_inside_is_refused_without_its_address(
    registry: Registry, make_key: KeyFactory
) -> None:
    app = create_app(registry, siwe_domain=SIWE_DOMAIN, webhook_settings=DEFAULT_SETTINGS)
    key = make_key("cardhub", "transfer")
    with TestClient(app) as client:
        answer = client.post(
            "/v1/webhooks",
            json={"url": "https://localhost/hook", "event_types": ["anchor.final"]},
            headers=bearer(key),
        )
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail == "the webhook host localhost resolves to a loopback address", detail


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "240.0.0.1",
        "192.0.2.1",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "fe80::1",
        "fd12:3456::1",
        "ff02::1",
        "64:ff9b::7f00:1",
        "2002:a00:1::1",
        "2001:db8::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), WebhookPolicy()) is not None


def test_public_addresses_and_the_loopback_switch() -> None:
    default, local = WebhookPolicy(), WebhookPolicy(allow_http=True, allow_loopback=True)
    for public in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8"):
        assert refusal(ipaddress.ip_address(public), default) is None
    # The development switch opens loopback only, never the other private ranges.
    for loopback in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert refusal(ipaddress.ip_address(loopback), local) is None
    for private in ("10.0.0.1", "169.254.169.254", "192.168.1.1", "fc00::1", "::ffff:10.0.0.1"):
        assert refusal(ipaddress.ip_address(private), local) is not None
    with pytest.raises(TargetRefused):
        parse_target("http://example.com/", default)
    assert parse_target("http://example.com/", local).port == 80


def one_attempt(
    registry: Registry, settings: WebhookSettings, claim: Claim
) -> tuple[int | None, str | None]:
    """What the worker's ``send_once`` makes of one attempt: (status, error)."""

    async def attempt() -> tuple[int | None, str | None]:
        service = WebhookService(registry, settings)
        async with _client(service, None) as client:
            return await send_once(client, service, claim)

    return asyncio.run(attempt())


def claim_for(url: str, secret: str) -> Claim:
    return Claim(
        delivery_id=1,
        msg_id="msg_test",
        subscription_id=1,
        attempt=1,
        url=url,
        secret=secret,
        payload='{"type":"anchor.final"}',
    )


@sqlite_only
def test_a_slow_receiver_times_out(
    registry: Registry, make_receiver: Callable[..., Receiver]
) -> None:
    receiver = make_receiver(delay=1.0)
    settings = WebhookSettings(allow_http=True, allow_loopback=True, total_timeout=0.3)
    began = time.monotonic()
    status, error = one_attempt(
        registry, settings, claim_for(receiver.url, encode_secret(bytes(32)))
    )
    assert status is None and error == "no answer within 0.3 s"
    assert time.monotonic() - began < 0.9


@sqlite_only
def test_the_target_is_checked_again_before_every_connection(
    registry: Registry, make_receiver: Callable[..., Receiver]
) -> None:
    """A target accepted once (DNS answered a public address then, or the policy changed) is
    resolved and checked again at each attempt; nothing is sent to a refused address."""
    receiver = make_receiver()
    secret = encode_secret(bytes(32))
    claim = claim_for(receiver.url.replace("127.0.0.1", "localhost"), secret)

    status, error = one_attempt(registry, WebhookSettings(allow_http=True), claim)
    assert status is None and error is not None and "loopback" in error
    assert receiver.requests == []
    # Allowed: the worker connects to the address it checked and names the host it was given.
    status, error = one_attempt(registry, TEST_SETTINGS, claim)
    assert (status, error) == (200, None)
    (request,) = receiver.requests
    assert request.headers["host"] == f"localhost:{receiver.server.server_port}"
    verify_webhook(secret, request.headers, request.body)


def test_resolution_pins_an_address() -> None:
    policy = WebhookPolicy(allow_http=True, allow_loopback=True)
    resolved = asyncio.run(resolve(parse_target("http://localhost:9/x", policy), policy, timeout=1))
    assert resolved.address.is_loopback
    assert resolved.pinned_url.host == str(resolved.address)
    assert resolved.target.host_header == "localhost:9"


# -- tenants, scopes, secrets ---------------------------------------------------------------------


def test_another_platforms_subscription_is_not_found(
    hooks: TestClient, make_key: KeyFactory, make_receiver: Callable[..., Receiver]
) -> None:
    a, b = make_key("cardhub", "transfer"), make_key("keyshop", "transfer")
    created = subscribe(hooks, a, make_receiver().url)
    missing = created["id"] + 10**6
    for method, suffix in (("GET", ""), ("GET", "/deliveries"), ("DELETE", "")):
        theirs = hooks.request(method, f"/v1/webhooks/{created['id']}{suffix}", headers=bearer(b))
        absent = hooks.request(method, f"/v1/webhooks/{missing}{suffix}", headers=bearer(b))
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["detail"].replace(str(created["id"]), "<id>") == absent.json()[
            "detail"
        ].replace(str(missing), "<id>")
    assert hooks.get("/v1/webhooks", headers=bearer(b)).json()["items"] == []
    # A's subscription survived B's DELETE.
    assert hooks.get(f"/v1/webhooks/{created['id']}", headers=bearer(a)).status_code == 200
    # Managing webhooks takes the transfer scope.
    verify_only = make_key("cardhub", "verify")
    assert hooks.get("/v1/webhooks", headers=bearer(verify_only)).status_code == 403
    assert hooks.get("/v1/webhooks").status_code == 401


def test_the_secret_is_sealed_and_never_logged(
    hooks: TestClient,
    registry: Registry,
    make_key: KeyFactory,
    code_good: CodeGood,
    make_receiver: Callable[..., Receiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = make_key("cardhub", "transfer")
    receiver = make_receiver(statuses=[500])
    created = subscribe(hooks, key, receiver.url)
    sell(hooks, key, code_good, {"creator": True}, "agent-1")
    receiver.wait_for(2)
    settled(hooks, key, created["id"])
    secret = created["secret"]
    key_b64 = secret.removeprefix("whsec_")
    assert "webhook" in caplog.text  # the worker did log its attempts
    assert secret not in caplog.text and key_b64 not in caplog.text
    with read_transaction(registry.engine) as conn:
        sealed = conn.execute(
            select(subscriptions_t.c.secret_sealed).where(subscriptions_t.c.id == created["id"])
        ).scalar_one()
    assert secret.encode() not in bytes(sealed) and key_b64.encode() not in bytes(sealed)


# -- the receiver's side: verify_webhook ----------------------------------------------------------


def test_verify_webhook_checks_time_signature_and_headers() -> None:
    secret, other = encode_secret(b"\x01" * 32), encode_secret(b"\x02" * 32)
    body, now = b'{"type":"anchor.final"}', 1_790_000_000
    headers = webhook_headers(secret, "msg_1", now, body)
    verify_webhook(secret, headers, body, now=now)
    verify_webhook(secret, headers, body, now=now + 300)
    # A rotation: several signatures, one of them ours.
    rotated = {**headers, "webhook-signature": "v1,AAAA v2,xyz " + headers["webhook-signature"]}
    verify_webhook(secret, rotated, body, now=now)
    # Header names in any case.
    verify_webhook(secret, httpx2.Headers(headers), body, now=now)
    for bad_headers, bad_body, at in (
        (headers, body, now + 301),  # stale
        (headers, body, now - 301),  # from the future
        (webhook_headers(other, "msg_1", now, body), body, now),  # another secret
        (headers, body + b" ", now),
        ({k: v for k, v in headers.items() if k != "webhook-id"}, body, now),
        ({**headers, "webhook-timestamp": "soon"}, body, now),
        ({**headers, "webhook-signature": "v1,not-base64!"}, body, now),
    ):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(secret, bad_headers, bad_body, now=at)
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_c2hvcnQ=", headers, body, now=now)  # a 5-byte key
