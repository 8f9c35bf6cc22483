"""The DELIVERY entry's payload (issue 17 item 2): a checked delivery for an order, attested by
the registry.

CONSENSUS-CRITICAL, as ``registry.payloads``: the leaf's ``payload_hash`` is SHA-256 of the
RFC 8785 JSON of ``document()``; ``from_document`` accepts only what ``document()`` writes
back byte for byte. It commits to the order (its id and the hash of its signed opening
change), the platform that delivered, the buyer's salted commitment (never the buyer), the
price and currency the buyer paid, and when; never the code, the buyer's reference or salt.
A later layout is a new ``DELIVERY_FORMAT``, never an edit of this one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from registry.eip712 import Domain, parse_address
from registry.errors import InvalidInput
from registry.fingerprints import FINGERPRINT_SIZE, GoodType, to_good_type
from registry.leaf import EntryKind
from registry.payloads import Payload, _amount, _hex, _keys

DELIVERY_FORMAT: Final = "tracemark-delivery/v1"
"""The name of this document's layout, inside it: a reader refuses any other."""

_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_HASH_SIZE: Final = 32


def _uint(value: object, what: str, maximum: int = 2**63 - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise InvalidInput(f"a delivery's {what} is an integer from 0 to {maximum}")
    return value


@dataclass(frozen=True, slots=True)
class DeliveryPayload(Payload):
    """A DELIVERY entry's payload: which order the good was delivered for, and its terms."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.DELIVERY})

    order_id: int
    #: ``registry.orders.change_hash`` of the order's opening change (sequence 0): binds the
    #: entry to the order's signed, hash-chained changes.
    opened: bytes
    good_type: GoodType
    fingerprint: bytes
    platform: str
    #: The seller's platform, or None for the creator selling first-hand.
    seller_platform: str | None
    buyer_commitment: bytes
    price: int
    currency: str
    delivered_at: int
    registry: str
    domain: Domain

    def __post_init__(self) -> None:
        _uint(self.order_id, "order")
        _uint(self.delivered_at, "delivered_at", 2**64 - 1)
        _uint(self.price, "price", 2**128)
        object.__setattr__(self, "good_type", to_good_type(self.good_type))
        object.__setattr__(self, "registry", parse_address(self.registry, what="registry"))
        for name, size in (
            ("opened", _HASH_SIZE),
            ("fingerprint", FINGERPRINT_SIZE),
            ("buyer_commitment", _HASH_SIZE),
        ):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != size:
                raise InvalidInput(f"a delivery's {name} is {size} bytes")
        if not isinstance(self.platform, str) or not self.platform:
            raise InvalidInput("a delivery's platform is a name")
        if self.seller_platform is not None and (
            not isinstance(self.seller_platform, str) or not self.seller_platform
        ):
            raise InvalidInput("a delivery's seller_platform is a name or null")
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise InvalidInput("a delivery's currency is three upper-case letters")

    def document(self) -> dict[str, Any]:
        return {
            "format": DELIVERY_FORMAT,
            "delivery": {
                "order": self.order_id,
                "opened": "0x" + self.opened.hex(),
                "good_type": int(self.good_type),
                "fingerprint": "0x" + self.fingerprint.hex(),
                "platform": self.platform,
                "seller_platform": self.seller_platform,
                "buyer_commitment": "0x" + self.buyer_commitment.hex(),
                "price": str(self.price),
                "currency": self.currency,
                "delivered_at": self.delivered_at,
            },
            "registry": self.registry,
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys("a delivery payload", document, {"format", "delivery", "registry", "domain"}, set())
        if document["format"] != DELIVERY_FORMAT:
            raise InvalidInput(
                f"a delivery payload of format {document['format']!r}; "
                f"only {DELIVERY_FORMAT!r} is known"
            )
        delivery = document["delivery"]
        _keys(
            "a delivery",
            delivery,
            {
                "order",
                "opened",
                "good_type",
                "fingerprint",
                "platform",
                "seller_platform",
                "buyer_commitment",
                "price",
                "currency",
                "delivered_at",
            },
            set(),
        )
        parsed = cls(
            order_id=delivery["order"],
            opened=_hex(delivery["opened"], "a delivery's opened"),
            good_type=delivery["good_type"],
            fingerprint=_hex(delivery["fingerprint"], "a delivery's fingerprint"),
            platform=delivery["platform"],
            seller_platform=delivery["seller_platform"],
            buyer_commitment=_hex(delivery["buyer_commitment"], "a delivery's buyer_commitment"),
            price=_amount(delivery["price"], "a delivery's price", required=True),
            currency=delivery["currency"],
            delivered_at=delivery["delivered_at"],
            registry=document["registry"],
            domain=Domain.from_dict(document["domain"]),
        )
        return cls._canonical(parsed, document, canonical)


__all__ = ["DELIVERY_FORMAT", "DeliveryPayload"]
