"""Receipts on the wire: a transfer receipt, a hand-over authorization and a buyer's delivery
receipt (issue 17) as JSON; shared by the routes, the pages and the webhooks."""

from __future__ import annotations

from typing import Any

from registry.deliveryreceipt import DeliveryReceipt
from registry.fingerprints import fingerprint_hex
from registry.handover import IssuedAuthorization
from registry.receipts import TransferReceipt


def receipt_out(receipt: TransferReceipt) -> dict[str, Any]:
    """The receipt as ``ReceiptOut`` (the platform's answer and the webhook event's body)."""
    return receipt.to_json()


def handover_out(issued: IssuedAuthorization) -> dict[str, Any]:
    """The issued authorization as ``HandoverOut`` (the token is in this answer only)."""
    return {
        "authorization_id": issued.authorization_id,
        "authorization": issued.token,
        "good_type": issued.good_type.name.lower(),
        "fingerprint": fingerprint_hex(issued.fingerprint),
        "buyer_platform": issued.buyer_platform,
        "expires_at": issued.expires_at,
    }


def receipt_link(base_url: str, receipt_id: str) -> str:
    """A delivery receipt's public page: ``<base>/r/<id>``."""
    return base_url.rstrip("/") + "/r/" + receipt_id


def delivery_receipt_out(receipt: DeliveryReceipt, base_url: str) -> dict[str, Any]:
    """A delivery receipt as ``DeliveryReceiptOut``: the signed parts and the links beside them."""
    link = receipt_link(base_url, receipt.receipt_id)
    good = receipt.good_type.name.lower()
    return {
        "receipt_id": receipt.receipt_id,
        "link": link,
        "qr": link + "/qr.svg",
        "proof": f"/v1/goods/{good}/{fingerprint_hex(receipt.fingerprint)}/proof",
        **{k: v for k, v in receipt.to_json().items() if k != "receipt_id"},
    }


__all__ = ["delivery_receipt_out", "handover_out", "receipt_link", "receipt_out"]
