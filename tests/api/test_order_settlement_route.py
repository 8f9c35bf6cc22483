"""Orders settle through the routes (issue 17): a confirmation records the sale and makes the
lines due, a refund reverses them, a refund of a redeemed code consumes it; through the real
app and the typed client, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.fingerprints import GoodType
from registry.holding import holdings_t
from registry.service import Registry
from registry.transferrequests import Party, TransferRequest
from registry.transfers import royalty_lines_t, transfers_t
from tests.api.conftest import POLICY, CodeGood, KeyFactory, bearer, sign_in
from tests.conftest import Clock
from verifier.client import TracemarkClient
from verifier.problems import ApiProblem
from verifier.schemas import StatementOut


def _resold(registry: Registry, good: CodeGood) -> None:
    """The code is held by a reseller on cardhub, so its sale owes the creator's royalty."""
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=good.fingerprint,
            seller=Party(None, None),
            buyer=Party("cardhub", "seller-9"),
        )
    )


def _rows(registry: Registry, table: Any, good: CodeGood) -> list[Any]:
    with registry.engine.connect() as conn:
        return conn.execute(
            select(table)
            .where(table.c.fingerprint == good.fingerprint)
            .order_by(*table.primary_key.columns)
        ).all()


def _open(platform: TracemarkClient, good: CodeGood, buyer: str) -> int:
    order = platform.open_order(
        good_type="code",
        fingerprint=good.fingerprint,
        seller={"platform": "cardhub", "reference": "seller-9"},
        buyer_reference=buyer,
        price=10_000,
        currency="EUR",
    )
    return order.order_id


def test_a_confirmation_through_the_route_records_the_sale_and_makes_the_lines_due(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    _resold(registry, code_good)
    key = make_key("cardhub", "verify", "transfer")
    with TracemarkClient("http://testserver", api_key=key, http_client=client) as platform:
        order_id = _open(platform, code_good, "buyer-1")
        delivered = client.post(
            f"/v1/orders/{order_id}/deliver", json={"code": code_good.code}, headers=bearer(key)
        )
        assert delivered.status_code == 200, delivered.text
        held = [r for r in _rows(registry, royalty_lines_t, code_good) if r.order_id]
        assert held and {r.status for r in held} == {"held"}
        assert platform.confirm_order(order_id).state == "confirmed"
    sale = _rows(registry, transfers_t, code_good)[-1]
    assert int(sale.price) == 10_000 and sale.final
    lines = [r for r in _rows(registry, royalty_lines_t, code_good) if r.order_id]
    assert [r.id for r in lines] == [r.id for r in held]
    assert {(r.status, int(r.transfer_id)) for r in lines} == {("due", int(sale.id))}
    holding = _rows(registry, holdings_t, code_good)[0]
    assert holding.consumed and int(holding.last_transfer_id) == int(sale.id)
    # A verify answer names the sale as the holder's, and the good no longer reserved.
    answer = client.post(
        "/v1/verify", json={"good_type": "code", "fingerprint": code_good.hex}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    holder = answer.json()["holder"]
    assert holder["since_transfer"] == int(sale.id) and holder["reserved"] is False


def test_refunds_through_the_typed_client_reverse_the_lines_and_redeemed_consumes(
    client: TestClient, registry: Registry, code_good: CodeGood, make_key: KeyFactory
) -> None:
    _resold(registry, code_good)
    key = make_key("cardhub", "transfer")
    with TracemarkClient("http://testserver", api_key=key, http_client=client) as platform:
        first = _open(platform, code_good, "buyer-1")
        registry.deliver_order(first, platform="cardhub")
        platform.dispute_order(first)
        with pytest.raises(ApiProblem) as refused:  # redeemed goes with a refund only
            platform.resolve_order(first, "release", redeemed=True)
        assert refused.value.status == 400
        assert platform.resolve_order(first, "refund").state == "refunded"
        lines = [r for r in _rows(registry, royalty_lines_t, code_good) if r.order_id == first]
        assert lines and {r.status for r in lines} == {"reversed"}
        assert _rows(registry, holdings_t, code_good)[0].holder_platform == "cardhub"
        assert not _rows(registry, holdings_t, code_good)[0].consumed
        sales = len(_rows(registry, transfers_t, code_good))

        second = _open(platform, code_good, "buyer-2")  # the seller still holds it
        registry.deliver_order(second, platform="cardhub")
        platform.dispute_order(second)
        refunded = platform.resolve_order(second, "refund", redeemed=True)
        assert refunded.state == "refunded"
    transfers = _rows(registry, transfers_t, code_good)
    assert len(transfers) == sales + 1
    assert transfers[-1].final and transfers[-1].price is None
    assert _rows(registry, holdings_t, code_good)[0].consumed
    lines = [r for r in _rows(registry, royalty_lines_t, code_good) if r.order_id == second]
    assert lines and {r.status for r in lines} == {"reversed"}


def test_the_creators_statement_shows_an_orders_royalty_held_then_owed(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    clock: Clock,
) -> None:
    _resold(registry, code_good)
    key = make_key("cardhub", "transfer")
    token = sign_in(client, code_good.creator, clock())
    recipient = POLICY.recipients[0].address
    with TracemarkClient("http://testserver", api_key=key, http_client=client) as platform:
        order_id = _open(platform, code_good, "buyer-1")
        registry.deliver_order(order_id, platform="cardhub")
        statement = client.get("/v1/creators/me/royalties", headers=bearer(token)).json()
        assert statement["totals"] == [] and statement["lines"] == []
        assert statement["held"] == [{"recipient": recipient, "currency": "EUR", "amount": "750"}]
        platform.confirm_order(order_id)
    statement = client.get("/v1/creators/me/royalties", headers=bearer(token)).json()
    assert statement["held"] == []
    assert statement["totals"] == [{"recipient": recipient, "currency": "EUR", "amount": "750"}]
    StatementOut.model_validate(statement)  # the typed client's schema reads it
