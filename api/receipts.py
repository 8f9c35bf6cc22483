"""The transfer answers on the wire: a transfer receipt and a hand-over authorization as JSON."""

from __future__ import annotations

from typing import Any

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


__all__ = ["handover_out", "receipt_out"]
