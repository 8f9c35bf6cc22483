"""The client's calls for the buyer's delivery receipt (issue 17 item 3): the platform's copy
of an order's receipt, the public copy its short link names, and the public code check
against it (with the proof of work every public code check carries)."""

from __future__ import annotations

import json

from registry.deliveryreceipt import is_receipt_id
from registry.errors import InvalidInput
from verifier.pow import MAX_POW_BITS, POW_HEADER, body_binding, solve
from verifier.problems import UnexpectedAnswer
from verifier.schemas.deliveryreceipts import DeliveryReceiptOut, ReceiptCheckIn, ReceiptCheckOut
from verifier.transport import RegistryTransport


def _receipt_id(receipt_id: str) -> str:
    if not is_receipt_id(receipt_id):
        raise InvalidInput("a receipt id is 22 base64url characters")
    return receipt_id


class ReceiptCalls(RegistryTransport):
    """Delivery receipts; check one offline with ``verifier.deliveryreceipt``."""

    def delivery_receipt(self, order_id: int) -> DeliveryReceiptOut:
        """The signed receipt of a delivered order of your platform's (a transfer-scoped key)."""
        answer = self._send("GET", f"/v1/orders/{int(order_id)}/receipt")
        return self._model(DeliveryReceiptOut, answer)

    def delivery_receipt_by_id(self, receipt_id: str) -> DeliveryReceiptOut:
        """The receipt a short link ``/r/<id>`` names (no credential needed)."""
        answer = self._send("GET", f"/v1/receipts/{_receipt_id(receipt_id)}")
        return self._model(DeliveryReceiptOut, answer)

    def check_receipt_code(self, receipt: DeliveryReceiptOut, code: str) -> bool:
        """Whether ``code`` is the good ``receipt`` says was delivered: the code goes in the
        body only, with a proof of work for the binding a public lookup of that code under
        the receipt's creator carries (about 0.1-0.3 s of one core at the default
        difficulty). True for a match, False for no match."""
        body = ReceiptCheckIn(code=code)
        issued = json.loads(self._send("POST", "/v1/verify/challenge").body)
        if not isinstance(issued, dict) or not isinstance(issued.get("challenge"), str):
            raise UnexpectedAnswer("the registry's challenge is not {challenge, difficulty}")
        difficulty = issued.get("difficulty")
        if not isinstance(difficulty, int) or not 0 <= difficulty <= MAX_POW_BITS:
            raise UnexpectedAnswer("the registry asks an unreasonable proof of work")
        creator = receipt.document["receipt"]["facts"]["creator"]
        proof = solve(issued["challenge"], difficulty, body_binding("code", creator, None, code))
        answer = self._send(
            "POST",
            f"/v1/receipts/{_receipt_id(receipt.receipt_id)}/check",
            document=body.model_dump(),
            headers={POW_HEADER: proof},
        )
        return self._model(ReceiptCheckOut, answer).match


__all__ = ["ReceiptCalls"]
