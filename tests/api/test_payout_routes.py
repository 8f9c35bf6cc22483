"""Payouts and balances through the real app (issue 17 item 7), on SQLite and PostgreSQL:
every refusal a problem+json that changes nothing, the typed client, JSON and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry import payouts
from registry.balances import CSV_HEADER
from registry.creator import CreatorKeys
from registry.eip712 import address_bytes
from registry.records import checksum
from registry.service import Registry
from tests.api.conftest import KeyFactory, bearer, sign_in
from tests.conftest import START, Clock
from tests.registry.test_payouts import AGENT, ALICE, add_line, snapshot
from verifier.client import TracemarkClient
from verifier.problems import ApiProblem
from verifier.schemas import payouts as payout_schemas

PROBLEM = "application/problem+json"


def body(lines: list[int], amount: int, **changes: Any) -> dict[str, Any]:
    return {
        "kind": "royalty",
        "recipient": checksum(ALICE),
        "amount": str(amount),
        "currency": "EUR",
        "reference": "SEPA-2026-0001",
        "paid_at": START,
        "lines": lines,
        **changes,
    }


def problem(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith(f"/{code}")


def test_a_payout_through_the_routes(
    client: TestClient, registry: Registry, make_key: KeyFactory
) -> None:
    shop = make_key("shop", "transfer")
    market = make_key("market", "transfer")
    engine = registry.engine
    lines = [add_line(engine, amount=70), add_line(engine, amount=30)]
    held = add_line(engine, status="held")
    owed = client.get("/v1/payouts/owed", headers=bearer(shop), params={"kind": "royalty"})
    assert [item["line_id"] for item in owed.json()["items"]] == [*lines]
    assert owed.json()["items"][0]["recipient"] == checksum(ALICE)

    before = snapshot(engine)
    problem(
        client.post("/v1/payouts", json=body(lines, 99), headers=bearer(shop)),
        422,
        "payout-refused",
    )
    problem(
        client.post("/v1/payouts", json=body([*lines, held], 101), headers=bearer(shop)),
        409,
        "line-not-payable",
    )
    problem(
        client.post("/v1/payouts", json=body(lines, 100), headers=bearer(market)),
        422,
        "payout-refused",
    )
    assert (
        client.post(
            "/v1/payouts", json=body(lines, 100), headers=bearer(make_key("v", "verify"))
        ).status_code
        == 403
    )
    bad = client.post("/v1/payouts", json=body(lines, 100, extra=1), headers=bearer(shop))
    assert bad.status_code in (400, 422) and bad.headers["content-type"] == PROBLEM
    assert snapshot(engine) == before

    key = {**bearer(shop), "Idempotency-Key": "pay-1"}
    first = client.post("/v1/payouts", json=body(lines, 100), headers=key)
    assert first.status_code == 201, first.text
    paid = first.json()
    assert paid["lines"] == lines and paid["amount"] == "100" and not paid["replayed"]
    again = client.post("/v1/payouts", json=body(lines, 100), headers=key)
    assert again.status_code == 200 and again.json()["replayed"]
    assert again.json()["payout_id"] == paid["payout_id"]
    problem(
        client.post("/v1/payouts", json=body(lines, 100, reference="x"), headers=key),
        422,
        "idempotency-key-reused",
    )
    problem(
        client.post("/v1/payouts", json=body(lines, 100), headers=bearer(shop)),
        409,
        "line-already-paid",
    )

    assert client.get(f"/v1/payouts/{paid['payout_id']}", headers=bearer(shop)).json() == {**paid}
    problem(
        client.get(f"/v1/payouts/{paid['payout_id']}", headers=bearer(market)), 404, "not-found"
    )
    assert (
        client.get("/v1/payouts/owed", headers=bearer(shop), params={"kind": "royalty"}).json()[
            "items"
        ]
        == []
    )


def test_the_typed_client_pays_and_reads_balances(
    client: TestClient, registry: Registry, make_key: KeyFactory, clock: Clock
) -> None:
    shop = make_key("shop", "transfer")
    engine = registry.engine
    royalty = add_line(engine, amount=500, settled_at=START)
    rebate = add_line(engine, kind="rebate", amount=40, settled_at=START)
    clock.now = START + 31 * 86_400
    with TracemarkClient("http://testserver", api_key=shop, http_client=client) as platform:
        page = platform.owed_lines()
        assert [line.line_id for line in page.items] == [royalty, rebate]
        before = platform.platform_balances(period="all")
        assert [(b.kind, b.owed, b.overdue) for b in before.lines] == [
            ("rebate", "40", "40"),
            ("royalty", "500", "500"),
        ]
        paid = platform.record_payout(
            kind="rebate",
            payee=AGENT,
            amount=40,
            currency="EUR",
            reference="wx-77",
            paid_at=clock.now,
            lines=[rebate],
            idempotency_key="r-1",
        )
        assert paid.payee == AGENT and platform.payout(paid.payout_id) == paid
        with pytest.raises(ApiProblem) as refused:
            platform.record_payout(
                kind="royalty",
                recipient=checksum(ALICE),
                amount=499,
                currency="EUR",
                reference="wx-78",
                paid_at=clock.now,
                lines=[royalty],
            )
        assert refused.value.status == 422
        agents = platform.agent_balances(period="all")
        assert [(b.payee, b.owed, b.paid) for b in agents.lines] == [(AGENT, "0", "40")]
        text = platform.balances_csv("platform", period="all")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_HEADER
    assert [row[2:8] for row in rows[1:]] == [
        ["rebate", AGENT, "EUR", "0", "40", "0"],
        ["royalty", checksum(ALICE), "EUR", "500", "0", "500"],
    ]


def test_a_creator_reads_its_balances(
    client: TestClient, registry: Registry, creator: CreatorKeys, clock: Clock
) -> None:
    mine = address_bytes(creator.address)
    add_line(registry.engine, amount=12, creator=mine)
    add_line(registry.engine, amount=99)  # another creator's
    session = sign_in(client, creator, clock())
    answer = client.get(
        "/v1/creators/me/balances", headers=bearer(session), params={"period": "all"}
    )
    assert answer.status_code == 200, answer.text
    assert [(line["owed"], line["payee"]) for line in answer.json()["lines"]] == [
        ("12", checksum(ALICE))
    ]
    as_csv = client.get(
        "/v1/creators/me/balances", headers=bearer(session), params={"format": "csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == ",".join(CSV_HEADER)
    with TracemarkClient("http://testserver", token=session, http_client=client) as who:
        assert who.creator_balances(period="all").totals[0].owed == "12"
    assert client.get("/v1/creators/me/balances").status_code == 401


def test_the_clients_line_cap_is_the_registrys() -> None:
    assert payout_schemas.MAX_PAYOUT_LINES == payouts.MAX_PAYOUT_LINES
