"""A verify answer's ``holder.reserved`` and the transfer path say the same of a good (issue 17):
a platform that reads ``reserved: false`` can sell it, one that reads ``true`` cannot. The case
that set them apart: an order delivered and past its confirmation deadline, before the sweep
applies its auto-confirm (its reservation lapsed, its sale stands). Real SQLite and PostgreSQL,
through the routes; no sweep runs here."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_order_routes import open_order
from tests.conftest import Clock

#: The openings' windows (``test_order_routes.order_body``): confirmation, reservation.
WINDOW = 3_600
HOLD = 600


def reserved_to_verify(client: TestClient, key: str, good: CodeGood) -> bool:
    answer = client.post(
        "/v1/verify", json={"good_type": "code", "fingerprint": good.hex}, headers=bearer(key)
    )
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["holder"]["reserved"])


def sale_refused_as_reserved(client: TestClient, key: str, good: CodeGood) -> bool:
    """The creator's first-hand sale of the good on another platform: refused as reserved, or
    recorded (anything else fails the test)."""
    sale: dict[str, Any] = {
        "good_type": "code",
        "fingerprint": good.hex,
        "seller": {"creator": True},
        "buyer": {"reference": "someone-else"},
    }
    answer = client.post("/v1/transfers", json=sale, headers=bearer(key))
    if answer.status_code == 409 and answer.json()["type"].endswith("/reserved"):
        return True
    assert answer.status_code == 201, answer.text
    return False


@pytest.mark.parametrize(
    ("delivered", "wait", "reserved"),
    [
        (False, 0, True),  # reserved, in time
        (False, HOLD, False),  # never delivered, past its reservation: free at once
        (True, WINDOW - 1, True),  # delivered, in its confirmation window
        (True, WINDOW, True),  # delivered, past its deadline, not settled yet: sold
        (True, WINDOW + 3_600, True),  # and an hour later, still without a sweep
    ],
    ids=["reserved", "expired", "delivered", "delivered-past-deadline", "an-hour-past"],
)
def test_verify_says_reserved_exactly_when_a_transfer_is_refused_as_reserved(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    code_good: CodeGood,
    make_key: KeyFactory,
    delivered: bool,
    wait: int,
    reserved: bool,
) -> None:
    cardhub = make_key("cardhub", "verify", "transfer")
    keyshop = make_key("keyshop", "verify", "transfer")
    order_id = int(open_order(client, cardhub, code_good)["order_id"])
    if delivered:
        registry.deliver_order(order_id, platform="cardhub")
    clock.advance(wait)
    answered = reserved_to_verify(client, keyshop, code_good)
    # The verify path settles nothing: still unsettled when the transfer asks.
    again = reserved_to_verify(client, keyshop, code_good)
    refused = sale_refused_as_reserved(client, keyshop, code_good)
    assert (answered, again, refused) == (reserved, reserved, reserved)
    state = client.get(f"/v1/orders/{order_id}", headers=bearer(cardhub)).json()["state"]
    if not delivered and not reserved:
        # The sale went through: the good is no longer reserved to anyone.
        assert reserved_to_verify(client, keyshop, code_good) is False
    elif delivered and wait >= WINDOW:
        # Reading the order applied its auto-confirm: the good is the buyer's, not reserved.
        assert state == "auto_confirmed"
        assert reserved_to_verify(client, keyshop, code_good) is False
