"""The platform's order calls of the client (issue 17): open, read, deliver, confirm,
dispute, resolve and cancel guaranteed-trade orders with a transfer-scoped API key; fetch an
order's dispute evidence (an auditor's key too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from registry.fingerprints import GoodType
from verifier.orderevidence import MAX_EVIDENCE_BYTES, OrderEvidence
from verifier.schemas import (
    DEFAULT_PAGE,
    DeliveryIn,
    DeliveryOut,
    GoodTypeName,
    OrderIn,
    OrderOut,
    OrderResolveIn,
    Page,
    PartyIn,
)
from verifier.transport import RegistryTransport, fingerprint_text, good_type_name, request_model


class OrderCalls(RegistryTransport):
    """A platform's orders: the good is reserved while one is open (``registry.orders``)."""

    def open_order(
        self,
        *,
        good_type: GoodType | GoodTypeName,
        fingerprint: bytes | str,
        seller: PartyIn | Mapping[str, Any],
        buyer_reference: str,
        price: int | str,
        currency: str,
        confirm_window: int | None = None,
        reservation_seconds: int | None = None,
        idempotency_key: str | None = None,
    ) -> OrderOut:
        """Open an order for a good your platform's seller holds (``{"reference": ...}``) or
        its creator sells first-hand (``{"creator": True}``); ``price`` in minor units of the
        ISO 4217 ``currency``. Send an ``idempotency_key`` to make a retry open it once."""
        fields: dict[str, Any] = {
            "good_type": good_type_name(good_type),
            "fingerprint": fingerprint_text(fingerprint),
            "seller": seller,
            "buyer_reference": buyer_reference,
            "price": str(price),
            "currency": currency,
        }
        if confirm_window is not None:
            fields["confirm_window"] = confirm_window
        if reservation_seconds is not None:
            fields["reservation_seconds"] = reservation_seconds
        request = request_model(OrderIn, fields, "the order's fields are invalid")
        return self._post(
            "/v1/orders",
            request.model_dump(mode="json"),
            OrderOut,
            idempotency_key=idempotency_key,
        )

    def order(self, order_id: int) -> OrderOut:
        """One of your platform's orders, with its signed state changes."""
        return self._model(OrderOut, self._send("GET", f"/v1/orders/{int(order_id)}"))

    def orders(self, cursor: str | None = None, limit: int = DEFAULT_PAGE) -> Page[OrderOut]:
        """One page of your platform's orders, oldest first (``next_cursor`` continues)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return self._model(Page[OrderOut], self._send("GET", "/v1/orders", params=params))

    def deliver_order(
        self,
        order_id: int,
        *,
        code: str | None = None,
        fingerprint: bytes | str | None = None,
        idempotency_key: str | None = None,
    ) -> DeliveryOut:
        """Deliver the code (or its fingerprint) for a reserved order: the registry checks it
        is the reserved good, unrevoked and unconsumed, and logs a DELIVERY entry."""
        fields: dict[str, Any] = {}
        if code is not None:
            fields["code"] = code
        if fingerprint is not None:
            fields["fingerprint"] = fingerprint_text(fingerprint)
        body = request_model(DeliveryIn, fields, "the delivery's fields are invalid")
        return self._post(
            f"/v1/orders/{int(order_id)}/deliver",
            body.model_dump(exclude_none=True),
            DeliveryOut,
            idempotency_key=idempotency_key,
        )

    def order_evidence(self, order_id: int) -> OrderEvidence:
        """A delivered order's dispute evidence (``tracemark-order-evidence/v1``), parsed
        strictly; check it with ``verifier.orderevidence.check_order_evidence`` and the chain,
        trusting nothing the server said (its summary included). Auditors and the order's
        parties' platforms may fetch it; anyone else gets the 404 of a missing order."""
        answer = self._send("GET", f"/v1/orders/{int(order_id)}/evidence", limit=MAX_EVIDENCE_BYTES)
        return OrderEvidence.parse(answer.body)

    def confirm_order(self, order_id: int, *, idempotency_key: str | None = None) -> OrderOut:
        """The buyer confirms a delivered order."""
        return self._change(order_id, "confirm", None, idempotency_key)

    def dispute_order(self, order_id: int, *, idempotency_key: str | None = None) -> OrderOut:
        """The buyer disputes a delivered order within its confirmation window."""
        return self._change(order_id, "dispute", None, idempotency_key)

    def resolve_order(
        self,
        order_id: int,
        outcome: Literal["release", "refund"],
        *,
        redeemed: bool = False,
        idempotency_key: str | None = None,
    ) -> OrderOut:
        """Resolve a disputed order: ``release`` or ``refund`` (``redeemed``: the buyer
        redeemed the code anyway, so it is consumed)."""
        body = request_model(
            OrderResolveIn, {"outcome": outcome, "redeemed": redeemed}, "the outcome is invalid"
        )
        return self._change(order_id, "resolve", body.model_dump(), idempotency_key)

    def cancel_order(self, order_id: int, *, idempotency_key: str | None = None) -> OrderOut:
        """Cancel an order not delivered yet; its good is free again."""
        return self._change(order_id, "cancel", None, idempotency_key)

    def _change(
        self, order_id: int, action: str, body: dict[str, Any] | None, key: str | None
    ) -> OrderOut:
        return self._post(
            f"/v1/orders/{int(order_id)}/{action}", body, OrderOut, idempotency_key=key
        )


__all__ = ["OrderCalls"]
