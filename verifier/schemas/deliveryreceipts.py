"""Wire schemas of the buyer's delivery receipt (issue 17 item 3): the receipt, and the
public page's check of a code against it."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from registry.edges import AddressText, Hex32
from verifier.schemas.fields import HexBytes, Strict


class DeliveryReceiptOut(Strict):
    """The registry's signed receipt of a delivery, for the buyer (``registry.deliveryreceipt``).

    ``document`` is what is signed (through ``receipt_hash``, in the EIP-712
    ``DeliveryReceipt`` shown as ``typed_data``): the order, the DELIVERY entry's leaf and
    payload hash, the good, the platform that delivered it, the buyer's salted commitment
    (never the buyer), the time, and the good's facts as of delivery. ``delivery`` is the
    DELIVERY entry's payload (its RFC 8785 SHA-256 is ``document.receipt.delivery_hash``).
    Never a code. Check it offline with ``verifier.deliveryreceipt.check_delivery_receipt``,
    with the good's proof bundle (``proof``) for what the log and the chain prove.
    """

    receipt_id: str
    #: The public page of this receipt (``/r/<receipt_id>``), and its QR code (SVG).
    link: str
    qr: str
    #: The good's proof bundle: the DELIVERY entry and its history, to check on the chain.
    proof: str
    document: dict[str, Any]
    receipt_hash: Hex32
    delivery: dict[str, Any]
    signature: HexBytes
    signer: AddressText
    typed_data: dict[str, Any]


class ReceiptCheckIn(Strict):
    """The code the buyer received, to compare with the delivered good (never stored, logged
    or echoed). Carries a proof of work for ``["tracemark/verify-pow/v1", "code", creator,
    null, code]``: the body a public code lookup of that code under the receipt's creator
    would bind, so a guess costs the same work either way."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ReceiptCheckOut(Strict):
    """Whether the code is the delivered good, and nothing else (not why it is not)."""

    match: bool


__all__ = ["DeliveryReceiptOut", "ReceiptCheckIn", "ReceiptCheckOut"]
