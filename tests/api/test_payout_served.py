"""A payout that clears an order's lines, over HTTP on uvicorn (issue 17 item 7), on SQLite
and PostgreSQL: a platform opens, delivers and confirms an order through the typed client,
lists the lines it now owes, pays each recipient, and owes nothing more."""

from __future__ import annotations

import pytest

from anchoring.devchain import free_port
from api.apikeys import create_api_key
from api.app import create_app
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.test_settlement import PRICE, RECIPIENTS, ROYALTIES, SELLER, code
from tests.serving import serving
from verifier.client import ProblemConflict, TracemarkClient

__all__ = ["code"]  # the fixture, imported for its name


def test_a_served_order_settles_and_a_payout_clears_its_lines(
    registry: Registry, code: bytes, clock: Clock
) -> None:
    key, _ = create_api_key(registry.engine, "cardhub", ["transfer"], "payout test", clock())
    port = free_port()
    app = create_app(registry, telemetry_interval=0.05)
    with serving(app, port, name="payout-api") as url, TracemarkClient(url, api_key=key) as hub:
        order = hub.open_order(
            good_type="code",
            fingerprint=code,
            seller={"reference": SELLER.reference},
            buyer_reference="buyer-7",
            price=PRICE,
            currency="EUR",
            idempotency_key="open-1",
        )
        hub.deliver_order(order.order_id, fingerprint=code, idempotency_key="deliver-1")
        assert hub.owed_lines().items == []  # held: not owed yet
        hub.confirm_order(order.order_id, idempotency_key="confirm-1")
        owed = hub.owed_lines(kind="royalty").items
        assert sorted((line.recipient, int(line.amount)) for line in owed) == sorted(
            zip(RECIPIENTS, ROYALTIES, strict=True)
        )
        assert all(line.order_id == order.order_id for line in owed)
        for line in owed:
            paid = hub.record_payout(
                kind="royalty",
                recipient=line.recipient,
                amount=line.amount,
                currency="EUR",
                reference=f"SEPA-{line.line_id}",
                paid_at=clock(),
                lines=[line.line_id],
                idempotency_key=f"pay-{line.line_id}",
            )
            assert paid.lines == [line.line_id]
        with pytest.raises(ProblemConflict) as refused:
            hub.record_payout(
                kind="royalty",
                recipient=owed[0].recipient,
                amount=owed[0].amount,
                currency="EUR",
                reference="again",
                paid_at=clock(),
                lines=[owed[0].line_id],
            )
        assert refused.value.code == "line-already-paid"
        assert hub.owed_lines().items == []
        balances = hub.platform_balances(period="all")
        assert [(t.owed, t.paid, t.overdue) for t in balances.totals] == [
            ("0", str(sum(ROYALTIES)), "0")
        ]
