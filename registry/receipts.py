"""The transfer receipt: the registry's EIP-712 ``TransferReceipt`` and its JSON document.

One type for the registry that signs it, the server that answers with it (and sends it in a
webhook event), and the kit that checks it offline (``verifier.client.verify_receipt``). Its
signed message is built in one place, ``receipt_message``.

NOTE: pure (no web3, no ORM, no web framework): a platform parses receipts with this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from registry.edges import (
    AddressText,
    BoundedBytes,
    DomainField,
    GoodTypeField,
    Hash32,
    MinorAmount,
)
from registry.eip712 import typed_data
from registry.fingerprints import GoodType

PRIMARY_TYPE = "TransferReceipt"
"""The EIP-712 primary type the registry signs a receipt as (``eip712.STRUCT_TYPES``)."""


def receipt_message(
    good_type: GoodType, fingerprint: bytes, leaf_index: int, transfer_hash: bytes, timestamp: int
) -> dict[str, object]:
    """The EIP-712 ``TransferReceipt`` message: what the registry signs for a transfer.

    NOTE: ``logIndex`` is the frozen struct's name for the TRANSFER entry's leaf index.
    """
    return {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        "logIndex": leaf_index,
        "transferHash": transfer_hash,
        "timestamp": timestamp,
    }


def party_document(platform: str | None, ref_hash: bytes | None) -> dict[str, Any]:
    """A party as the TRANSFER payload and the receipt name it."""
    if platform is None:
        return {"creator": True}
    assert ref_hash is not None
    return {"platform": platform, "reference_hash": "0x" + ref_hash.hex()}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoyaltyShare(_Frozen):
    """One recipient's part of a priced resale, split by the creator's signed policy.

    NOTE: not merged with the TRANSFER payload's ``registry.transferpayload.TransferShare`` (same
    fields, same JSON): this is the receipt's wire model, that a consensus-critical value with
    stricter parsing and other errors; the reason is written there.
    """

    recipient: AddressText
    bps: int
    amount: MinorAmount


class TransferReceipt(_Frozen):
    """The registry's signed word that it logged the transfer (EIP-712 ``TransferReceipt``).

    Only the message's five fields are signed; the rest (parties, price, royalties) are bound
    through ``transfer_hash``, the TRANSFER entry's payload hash, which the log proves.
    """

    # NOTE: the JSON keeps the name it was published with, ``log_index`` (the OpenAPI
    # document, receipts platforms keep): the attribute speaks the log's vocabulary.
    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True
    )

    transfer_id: int
    good_type: GoodTypeField
    fingerprint: Hash32
    #: The TRANSFER entry's leaf index (``logIndex`` in the signed message, ``log_index`` in
    #: the JSON).
    leaf_index: int = Field(validation_alias="log_index", serialization_alias="log_index")
    transfer_hash: Hash32
    timestamp: int
    signature: BoundedBytes
    signer: AddressText
    domain: DomainField
    platform: str
    seller: dict[str, Any]
    buyer: dict[str, Any]
    price: MinorAmount | None
    currency: str | None
    final: bool
    creator: AddressText
    royalties: list[RoyaltyShare]
    seller_amount: MinorAmount | None
    #: True when this answers a retried request (same Idempotency-Key and body).
    replayed: bool = False

    def message(self) -> dict[str, object]:
        """The signed EIP-712 message, rebuilt from this receipt's fields."""
        return receipt_message(
            self.good_type, self.fingerprint, self.leaf_index, self.transfer_hash, self.timestamp
        )

    def typed_data(self) -> dict[str, Any]:
        """The message as EIP-712 typed-data JSON under the receipt's domain (wallets show it)."""
        return typed_data(PRIMARY_TYPE, self.message(), self.domain)

    def to_json(self) -> dict[str, Any]:
        """The receipt as its JSON document (``ReceiptOut``): ``typed_data`` after ``domain``."""
        fields = self.model_dump(mode="json")
        document: dict[str, Any] = {}
        for key, value in fields.items():
            document[key] = value
            if key == "domain":
                document["typed_data"] = self.typed_data()
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> TransferReceipt:
        """Parse a receipt document; its ``typed_data`` is derived, so it is not read here
        (``verify_receipt`` compares it with ``typed_data()``). Raises ``ValidationError``."""
        return cls.model_validate({k: v for k, v in document.items() if k != "typed_data"})


__all__ = [
    "PRIMARY_TYPE",
    "RoyaltyShare",
    "TransferReceipt",
    "party_document",
    "receipt_message",
]
