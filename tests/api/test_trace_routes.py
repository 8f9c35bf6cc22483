"""``GET /v1/goods/{type}/{fp}/trace`` through the real app on SQLite and PostgreSQL: a code
verified on two platforms and sold through an agent to its end user, all over HTTP; who may
read its trace (an audit key, its own creator; 403 for a verify-only key, 404 for another
creator, exactly as for a missing good); the typed client; ``tracemark trace --api``."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.routes.trace import MERMAID_MEDIA_TYPE
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer, sign_in
from tests.api.test_cli_over_http import Server, server  # noqa: F401 - the live API fixture
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from verifier.client import TracemarkClient
from verifier.schemas import TraceOut, TraceTransferredOut, TraceVerifiedOut

PROBLEM = "application/problem+json"


def trace_path(good: CodeGood | str) -> str:
    fingerprint = good if isinstance(good, str) else good.hex
    return f"/v1/goods/code/{fingerprint}/trace"


def sell_through_an_agent(client: TestClient, make_key: KeyFactory, good: CodeGood) -> None:
    """Two platforms verify the code; cardhub sells it to an agent, who sells it on keyshop
    to a player (final: consumed). Everything over HTTP, as platforms do."""
    cardhub, keyshop = (
        make_key("cardhub", "verify", "transfer"),
        make_key("keyshop", "verify", "transfer"),
    )
    for key in (cardhub, keyshop):
        answer = client.post(
            "/v1/verify", json={"good_type": "code", "fingerprint": good.hex}, headers=bearer(key)
        )
        assert answer.status_code == 200, answer.text
    sales: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
        (cardhub, {"creator": True}, {"reference": "agent-7"}, {"price": "1000"}),
        (
            keyshop,
            {"platform": "cardhub", "reference": "agent-7"},
            {"reference": "player-1"},
            {"price": "2500", "final": True},
        ),
    ]
    for key, seller, buyer, terms in sales:
        if seller.get("platform") == "cardhub":  # cardhub consents to keyshop's sale (issue 12)
            consent = client.post(
                "/v1/transfers/authorizations",
                json={
                    "good_type": "code",
                    "fingerprint": good.hex,
                    "reference": "agent-7",
                    "buyer_platform": "keyshop",
                },
                headers=bearer(cardhub),
            )
            assert consent.status_code == 201, consent.text
            terms = {**terms, "authorization": consent.json()["authorization"]}
        body = {"good_type": "code", "fingerprint": good.hex, "seller": seller, "buyer": buyer}
        answer = client.post(
            "/v1/transfers", json={**body, **terms, "currency": "EUR"}, headers=bearer(key)
        )
        assert answer.status_code == 201, answer.text


def wait_for_verifications(client: TestClient, path: str, key: str, times: int) -> TraceOut:
    """Verifications are telemetry written behind the requests: wait for them to land."""
    deadline = time.monotonic() + 10
    while True:
        answer = client.get(path, headers=bearer(key))
        assert answer.status_code == 200, answer.text
        trace = TraceOut.model_validate_json(answer.content)
        if trace.counts.verifications >= times or time.monotonic() > deadline:
            return trace
        time.sleep(0.05)


def test_an_auditor_follows_a_code_from_its_creator_to_its_end_user(
    client: TestClient, registry: Registry, make_key: KeyFactory, code_good: CodeGood
) -> None:
    sell_through_an_agent(client, make_key, code_good)
    audit = make_key("regulator", "audit")
    trace = wait_for_verifications(client, trace_path(code_good), audit, times=2)

    assert trace.creator == code_good.creator.address
    assert [e.kind for e in trace.events] == [
        "registered",
        "verified",
        "verified",
        "transferred",
        "transferred",
    ]
    assert {e.platform for e in trace.events if isinstance(e, TraceVerifiedOut)} == {
        "cardhub",
        "keyshop",
    }
    first, final = (e for e in trace.events if isinstance(e, TraceTransferredOut))
    agent = f"cardhub:{registry.reference_hash('cardhub', 'agent-7').hex()[:8]}"
    player = f"keyshop:{registry.reference_hash('keyshop', 'player-1').hex()[:8]}"
    assert (first.seller.label, first.buyer.label, first.price) == ("creator", agent, "1000")
    assert (final.seller.label, final.buyer.label, final.final) == (agent, player, True)
    assert [(s.bps, s.amount) for s in final.royalties] == [(750, "187")]
    assert trace.status == "consumed" and trace.holder.label == player

    mermaid = client.get(trace_path(code_good), params={"format": "mermaid"}, headers=bearer(audit))
    assert mermaid.status_code == 200
    assert mermaid.headers["content-type"] == MERMAID_MEDIA_TYPE
    text = mermaid.text
    assert text.startswith("graph LR\n")
    for hop in (agent, f"end user {player}", "1. cardhub: 1000 EUR", "2. keyshop: 2500 EUR"):
        assert hop in text

    # The typed client reads the same trace.
    with TracemarkClient("http://testserver", api_key=audit, http_client=client) as auditor:
        assert auditor.trace("code", code_good.fingerprint) == TraceOut.model_validate_json(
            client.get(trace_path(code_good), headers=bearer(audit)).content
        )
        assert auditor.trace_mermaid("code", code_good.hex) == text


def _normalised(answer: httpx2.Response, fingerprint: str) -> tuple[Any, ...]:
    body = answer.json()
    body["detail"] = body["detail"].replace(fingerprint, "<fp>")
    return answer.status_code, answer.headers["content-type"], body, sorted(answer.headers)


def test_who_may_read_a_trace(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    make_key: KeyFactory,
    make_creator: CreatorFactory,
    code_good: CodeGood,
) -> None:
    path = trace_path(code_good)
    owner = sign_in(client, code_good.creator, clock())
    other: CreatorKeys = make_creator()
    registry.register(registration(other, clock()))  # a creator with goods of their own
    stranger = sign_in(client, other, clock())

    assert client.get(path, headers=bearer(make_key("regulator", "audit"))).status_code == 200
    answer = client.get(path, headers=bearer(owner))
    assert answer.status_code == 200, answer.text
    assert TraceOut.model_validate_json(answer.content).creator == code_good.creator.address

    refused = client.get(path, headers=bearer(make_key("cardhub", "verify", "transfer")))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/forbidden")
    anonymous = client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    # Another creator learns exactly what asking about a good nobody registered tells.
    missing = "0x" + "ab" * 32
    theirs = client.get(path, headers=bearer(stranger))
    nobodys = client.get(trace_path(missing), headers=bearer(stranger))
    assert theirs.status_code == 404
    assert _normalised(theirs, code_good.hex) == _normalised(nobodys, missing)
    mermaid = client.get(path, params={"format": "mermaid"}, headers=bearer(stranger))
    assert mermaid.status_code == 404

    assert client.get(path, params={"format": "svg"}, headers=bearer(owner)).status_code == 422
    for malformed in ("0x" + "00" * 31, "not-hex"):
        answer = client.get(trace_path(malformed), headers=bearer(owner))
        assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the routes run on both above
def test_the_trace_command_over_http_never_prints_the_key(
    server: Server,  # noqa: F811 - the fixture imported above
    make_creator: CreatorFactory,
) -> None:
    creator = make_creator()
    registry = server.registry
    request = registration(creator, registry.clock())
    registry.register(request)
    registry.sequence_all()
    fingerprint = "0x" + bytes(request.signed.message["fingerprint"]).hex()
    from api.apikeys import create_api_key

    key, _ = create_api_key(registry.engine, "regulator", ["audit"], "cli", registry.clock())
    weak, _ = create_api_key(registry.engine, "cardhub", ["verify"], "cli", registry.clock())
    runner = CliRunner()
    args = ["trace", "--type", "file", "--fingerprint", fingerprint, "--api", server.url]

    def run(api_key: str | None, *extra: str) -> Any:
        env = {"TRACEMARK_API_KEY": api_key, "TRACEMARK_API_URL": None, "COLUMNS": "200"}
        result = runner.invoke(cli_app, [*args, *extra], env=env)
        assert api_key is None or api_key not in result.stdout + result.stderr
        return result

    shown = run(key, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert TraceOut.model_validate_json(shown.stdout).creator == creator.address
    mermaid = run(key, "--mermaid")
    assert mermaid.exit_code == 0 and mermaid.stdout.startswith("graph LR\n")
    table = run(key)
    assert table.exit_code == 0 and "registered" in table.stdout
    for refused in (run(weak), run(None)):
        assert refused.exit_code == 13, refused.stderr
        assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
