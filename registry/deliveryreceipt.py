"""The buyer's delivery receipt (issue 17 item 3): its document, hash, signed message and JSON.

When an order is delivered the registry signs a receipt for the buyer's platform: this good
(type and fingerprint), the facts about it as of the delivery (registered by its creator, not
revoked, not consumed, held by the seller, how often it changed hands or was delivered
before), the platform that delivered it, when, the DELIVERY entry's leaf index and payload
hash, and the buyer as the order's salted commitment (never the buyer's reference or salt,
never the code). One type for the registry that signs it (``registry.receiptstore``), the
server that answers with it and the kit that checks it offline
(``verifier.deliveryreceipt``).

The signing is the project's EIP-712 with the registry key, as the transfer receipt and the
order's state changes: ``DeliveryReceipt(orderId, goodType, fingerprint, logIndex,
deliveryHash, receiptHash, timestamp)``, where ``deliveryHash`` is the DELIVERY entry's
payload hash (the log proves it) and ``receiptHash`` = SHA-256(``"tracemark/delivery-receipt/
v1\\0"`` || RFC 8785 JSON of the document), the same tagged-hash style as an order change.

NOTE: pure (no ORM, no web framework): a platform and the offline verifier parse receipts
with this. A later layout is a new ``RECEIPT_FORMAT``, never an edit of this one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import rfc8785

from registry.deliverypayload import DeliveryPayload
from registry.eip712 import Domain, parse_address, typed_data
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, fingerprint_hex
from registry.payloads import _hex, _keys

RECEIPT_FORMAT: Final = "tracemark-delivery-receipt/v1"
"""The name of the receipt document's layout, inside it: a reader refuses any other."""
PRIMARY_TYPE: Final = "DeliveryReceipt"
"""The EIP-712 primary type the registry signs a delivery receipt as (``STRUCT_TYPES``)."""
_HASH_TAG: Final = b"tracemark/delivery-receipt/v1\0"

#: Random bytes in a receipt id: 128 bits, so that enumerating ids is hopeless (2^128 tries
#: for one hit among a billion receipts is still ~2^98), in 22 base64url characters.
RECEIPT_ID_BYTES: Final = 16
RECEIPT_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{22}$"
_RECEIPT_ID: Final = re.compile(RECEIPT_ID_PATTERN)


def is_receipt_id(text: str) -> bool:
    """Whether ``text`` has the shape of a receipt id (22 base64url characters)."""
    return isinstance(text, str) and _RECEIPT_ID.match(text) is not None


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise InvalidInput(f"a receipt's {what} is a non-negative integer")
    return value


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"a receipt's {what} is true or false")
    return value


@dataclass(frozen=True, slots=True)
class ReceiptFacts:
    """What the log (and the holding it implies) said about the good as of its delivery:
    every count is of the good's entries before the DELIVERY's leaf."""

    #: The good's creator (EIP-55), who registered it, and the REGISTER entry's leaf.
    creator: str
    registered_leaf: int
    #: A conflicting registration of the same good by someone else (CONFLICT entries).
    conflicts: int
    revoked: bool
    #: Consumed by a final sale (a code redeemed or sold to its end user) before.
    consumed: bool
    #: The order's seller held it at delivery (the delivery's own check).
    held_by_seller: bool
    #: Transfers before (the chain of custody from the creator to the seller).
    transfers_before: int
    #: Deliveries for other orders before (a refunded order's good delivered again).
    earlier_deliveries: int

    @property
    def never_sold_before(self) -> bool:
        """ "Authentic and never sold before": registered without conflict, not revoked, not
        consumed, held by the seller, and never delivered to another buyer."""
        return (
            self.conflicts == 0
            and not self.revoked
            and not self.consumed
            and self.held_by_seller
            and self.earlier_deliveries == 0
        )

    def document(self) -> dict[str, Any]:
        return {
            "creator": self.creator,
            "registered_leaf": self.registered_leaf,
            "conflicts": self.conflicts,
            "revoked": self.revoked,
            "consumed": self.consumed,
            "held_by_seller": self.held_by_seller,
            "transfers_before": self.transfers_before,
            "earlier_deliveries": self.earlier_deliveries,
            "never_sold_before": self.never_sold_before,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ReceiptFacts:
        _keys("a receipt's facts", document, set(cls.document_keys()), set())
        facts = cls(
            creator=parse_address(document["creator"], what="a receipt's creator"),
            registered_leaf=_count(document["registered_leaf"], "registered_leaf"),
            conflicts=_count(document["conflicts"], "conflicts"),
            revoked=_flag(document["revoked"], "revoked"),
            consumed=_flag(document["consumed"], "consumed"),
            held_by_seller=_flag(document["held_by_seller"], "held_by_seller"),
            transfers_before=_count(document["transfers_before"], "transfers_before"),
            earlier_deliveries=_count(document["earlier_deliveries"], "earlier_deliveries"),
        )
        # The summary is derived: one that disagrees with the facts is a forgery or a bug.
        if document["never_sold_before"] is not facts.never_sold_before:
            raise InvalidInput("a receipt's never_sold_before does not follow from its facts")
        return facts

    @staticmethod
    def document_keys() -> tuple[str, ...]:
        return (
            "creator",
            "registered_leaf",
            "conflicts",
            "revoked",
            "consumed",
            "held_by_seller",
            "transfers_before",
            "earlier_deliveries",
            "never_sold_before",
        )


def receipt_document(
    delivery: DeliveryPayload, leaf_index: int, facts: ReceiptFacts
) -> dict[str, Any]:
    """The signed receipt document: what the buyer is told, all of it bound by the hash."""
    return {
        "format": RECEIPT_FORMAT,
        "receipt": {
            "order": delivery.order_id,
            "leaf_index": leaf_index,
            "delivery_hash": "0x" + delivery.payload_hash().hex(),
            "good_type": int(delivery.good_type),
            "fingerprint": fingerprint_hex(delivery.fingerprint),
            "platform": delivery.platform,
            "buyer_commitment": "0x" + delivery.buyer_commitment.hex(),
            "delivered_at": delivery.delivered_at,
            "facts": facts.document(),
        },
        "registry": delivery.registry,
        "domain": delivery.domain.as_dict(),
    }


def receipt_hash(document: Mapping[str, Any]) -> bytes:
    """SHA-256 of the tagged RFC 8785 JSON of a receipt document (``receiptHash``)."""
    return hashlib.sha256(_HASH_TAG + rfc8785.dumps(dict(document))).digest()


def receipt_message(document: Mapping[str, Any]) -> dict[str, object]:
    """The EIP-712 ``DeliveryReceipt`` message for a receipt document."""
    body = document["receipt"]
    return {
        "orderId": body["order"],
        "goodType": body["good_type"],
        "fingerprint": bytes.fromhex(body["fingerprint"][2:]),
        "logIndex": body["leaf_index"],
        "deliveryHash": bytes.fromhex(body["delivery_hash"][2:]),
        "receiptHash": receipt_hash(document),
        "timestamp": body["delivered_at"],
    }


@dataclass(frozen=True)
class DeliveryReceipt:
    """A delivery receipt as signed: its id, document, the DELIVERY payload it is about, and
    the registry's signature. ``from_json`` checks that its parts agree; whether the
    signature holds under a trusted key is ``verifier.deliveryreceipt``'s question."""

    receipt_id: str
    document: dict[str, Any]
    delivery: DeliveryPayload
    facts: ReceiptFacts
    signature: bytes
    signer: str

    @property
    def order_id(self) -> int:
        return int(self.document["receipt"]["order"])

    @property
    def leaf_index(self) -> int:
        return int(self.document["receipt"]["leaf_index"])

    @property
    def good_type(self) -> GoodType:
        return self.delivery.good_type

    @property
    def fingerprint(self) -> bytes:
        return self.delivery.fingerprint

    @property
    def domain(self) -> Domain:
        return self.delivery.domain

    def receipt_hash(self) -> bytes:
        return receipt_hash(self.document)

    def message(self) -> dict[str, object]:
        return receipt_message(self.document)

    def typed_data(self) -> dict[str, Any]:
        """The signed message as EIP-712 typed-data JSON (what a wallet would show)."""
        return typed_data(PRIMARY_TYPE, self.message(), self.domain)

    def to_json(self) -> dict[str, Any]:
        """The receipt's JSON (``DeliveryReceiptOut`` without the links the server adds)."""
        return {
            "receipt_id": self.receipt_id,
            "document": self.document,
            "receipt_hash": "0x" + self.receipt_hash().hex(),
            "delivery": self.delivery.document(),
            "signature": "0x" + self.signature.hex(),
            "signer": self.signer,
            "typed_data": self.typed_data(),
        }

    @classmethod
    def build(
        cls,
        receipt_id: str,
        delivery: DeliveryPayload,
        leaf_index: int,
        facts: ReceiptFacts,
        signature: bytes,
        signer: str,
    ) -> DeliveryReceipt:
        document = receipt_document(delivery, leaf_index, facts)
        return cls(receipt_id, document, delivery, facts, signature, signer)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeliveryReceipt:
        """Parse a receipt's JSON strictly: the document must be exactly the one its DELIVERY
        payload, leaf index and facts make, so nothing can be shown beside what is signed.
        Raises ``InvalidInput``. Links and ``typed_data`` are derived and not read."""
        if not isinstance(data, Mapping):
            raise InvalidInput("a delivery receipt is a JSON object")
        for key in ("receipt_id", "document", "delivery", "signature", "signer"):
            if key not in data:
                raise InvalidInput(f"a delivery receipt has no {key}")
        receipt_id = data["receipt_id"]
        if not is_receipt_id(receipt_id):
            raise InvalidInput("a receipt id is 22 base64url characters")
        document = data["document"]
        if not isinstance(document, Mapping):
            raise InvalidInput("a receipt's document is an object")
        _keys("a receipt document", document, {"format", "receipt", "registry", "domain"}, set())
        if document["format"] != RECEIPT_FORMAT:
            raise InvalidInput(
                f"a receipt of format {document['format']!r}; only {RECEIPT_FORMAT!r} is known"
            )
        body = document["receipt"]
        if not isinstance(body, Mapping):
            raise InvalidInput("a receipt's receipt is an object")
        _keys(
            "a receipt",
            body,
            {
                "order",
                "leaf_index",
                "delivery_hash",
                "good_type",
                "fingerprint",
                "platform",
                "buyer_commitment",
                "delivered_at",
                "facts",
            },
            set(),
        )
        delivery_doc = data["delivery"]
        if not isinstance(delivery_doc, Mapping):
            raise InvalidInput("a receipt's delivery is the DELIVERY payload document")
        delivery = DeliveryPayload.from_document(delivery_doc)
        facts = ReceiptFacts.from_document(body["facts"])
        leaf_index = _count(body["leaf_index"], "leaf_index")
        expected = receipt_document(delivery, leaf_index, facts)
        if dict(document) != expected:
            raise InvalidInput(
                "the receipt's document is not the one its DELIVERY payload, leaf and facts "
                "make (order, good, platform, buyer, time, delivery hash, registry, domain)"
            )
        signature = _hex(data["signature"], "a receipt's signature")
        signer = parse_address(data["signer"], what="a receipt's signer")
        return cls(receipt_id, expected, delivery, facts, signature, signer)


__all__ = [
    "PRIMARY_TYPE",
    "RECEIPT_FORMAT",
    "RECEIPT_ID_BYTES",
    "RECEIPT_ID_PATTERN",
    "DeliveryReceipt",
    "ReceiptFacts",
    "is_receipt_id",
    "receipt_document",
    "receipt_hash",
    "receipt_message",
]
