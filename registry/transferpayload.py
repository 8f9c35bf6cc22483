"""The TRANSFER entry's payload: the sale the registry logged, its royalty shares, who attests it.

CONSENSUS-CRITICAL, as ``registry.payloads`` (whose ``Payload`` it is): the leaf's
``payload_hash`` is SHA-256 of the RFC 8785 JSON of ``TransferPayload.document()``, and the
receipt's ``transferHash`` is that hash (``registry.receipts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from registry.eip712 import Domain, parse_address
from registry.errors import InvalidInput
from registry.fingerprints import FINGERPRINT_SIZE, GoodType, to_good_type
from registry.leaf import EntryKind
from registry.payloads import Payload, _amount, _hex, _keys


def _party(document: object, what: str) -> dict[str, Any]:
    # registry.receipts.party_document: the creator, or a platform and the keyed hash of the
    # platform's reference for the holder.
    if document == {"creator": True}:
        return {"creator": True}
    _keys(what, document, {"platform", "reference_hash"}, set())
    assert isinstance(document, Mapping)
    platform, reference = document["platform"], document["reference_hash"]
    if not isinstance(platform, str) or not platform:
        raise InvalidInput(f"{what}'s platform is a name")
    if not isinstance(reference, str) or len(reference) != 66 or not reference.startswith("0x"):
        raise InvalidInput(f"{what}'s reference_hash is 0x and 64 hex digits")
    return {"platform": platform, "reference_hash": reference}


@dataclass(frozen=True, slots=True)
class TransferShare:
    """One royalty recipient's part of a priced resale, as the TRANSFER payload states it.

    NOTE: the receipt's ``registry.receipts.RoyaltyShare`` holds the same three fields with
    the same JSON, but is not merged with this: this is a consensus-critical value (the
    recipient checksummed, strict non-negative ints, ``InvalidInput``), that is the receipt's
    wire model (address text kept as sent, pydantic's lax ints, ``ValidationError``). One
    type would change either the bytes a payload parse accepts or what a receipt parse raises.
    """

    recipient: str
    bps: int
    amount: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient", parse_address(self.recipient, what="recipient"))
        for name in ("bps", "amount"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"a royalty share's {name} is a non-negative integer")

    def document(self) -> dict[str, Any]:
        return {"recipient": self.recipient, "bps": self.bps, "amount": str(self.amount)}


@dataclass(frozen=True, slots=True)
class TransferPayload(Payload):
    """A TRANSFER entry's payload: the sale the registry logged, its royalty split and who
    attests it; its payload hash is the receipt's ``transferHash`` (``registry.receipts``)."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.TRANSFER})

    good_type: GoodType
    fingerprint: bytes
    creator: str
    platform: str
    seller: Mapping[str, Any]
    buyer: Mapping[str, Any]
    price: int | None
    currency: str | None
    final: bool
    previous_transfer: int | None
    shares: tuple[TransferShare, ...]
    seller_amount: int | None
    registry: str
    domain: Domain

    def __post_init__(self) -> None:
        object.__setattr__(self, "good_type", to_good_type(self.good_type))
        if not isinstance(self.fingerprint, bytes) or len(self.fingerprint) != FINGERPRINT_SIZE:
            raise InvalidInput(f"a transfer's fingerprint is {FINGERPRINT_SIZE} bytes")
        object.__setattr__(self, "creator", parse_address(self.creator, what="creator"))
        object.__setattr__(self, "registry", parse_address(self.registry, what="registry"))
        object.__setattr__(self, "seller", _party(self.seller, "the seller"))
        object.__setattr__(self, "buyer", _party(self.buyer, "the buyer"))
        object.__setattr__(self, "shares", tuple(self.shares))
        if not isinstance(self.platform, str) or not self.platform:
            raise InvalidInput("a transfer's platform is a name")
        if self.currency is not None and not isinstance(self.currency, str):
            raise InvalidInput("a transfer's currency is a code or null")
        if not isinstance(self.final, bool):
            raise InvalidInput("a transfer's final is true or false")
        for name in ("price", "seller_amount", "previous_transfer"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                raise InvalidInput(f"a transfer's {name} is a non-negative integer or null")

    def document(self) -> dict[str, Any]:
        return {
            "transfer": {
                "good_type": int(self.good_type),
                "fingerprint": "0x" + self.fingerprint.hex(),
                "creator": self.creator,
                "platform": self.platform,
                "seller": dict(self.seller),
                "buyer": dict(self.buyer),
                "price": None if self.price is None else str(self.price),
                "currency": self.currency,
                "final": self.final,
                "previous_transfer": self.previous_transfer,
            },
            "royalty": {
                "shares": [share.document() for share in self.shares],
                "seller_amount": None if self.seller_amount is None else str(self.seller_amount),
            },
            "registry": self.registry,
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys("a transfer payload", document, {"transfer", "royalty", "registry", "domain"}, set())
        transfer, royalty = document["transfer"], document["royalty"]
        _keys(
            "a transfer",
            transfer,
            {
                "good_type",
                "fingerprint",
                "creator",
                "platform",
                "seller",
                "buyer",
                "price",
                "currency",
                "final",
                "previous_transfer",
            },
            set(),
        )
        _keys("a transfer's royalty", royalty, {"shares", "seller_amount"}, set())
        shares = royalty["shares"]
        if not isinstance(shares, list):
            raise InvalidInput("a transfer's royalty shares are a list")
        for share in shares:
            _keys("a royalty share", share, {"recipient", "bps", "amount"}, set())
        parsed = cls(
            good_type=transfer["good_type"],
            fingerprint=_hex(transfer["fingerprint"], "a transfer's fingerprint"),
            creator=transfer["creator"],
            platform=transfer["platform"],
            seller=transfer["seller"],
            buyer=transfer["buyer"],
            price=_amount(transfer["price"], "a transfer's price"),
            currency=transfer["currency"],
            final=transfer["final"],
            previous_transfer=transfer["previous_transfer"],
            shares=tuple(
                TransferShare(
                    share["recipient"],
                    share["bps"],
                    _amount(share["amount"], "a share's amount", required=True),
                )
                for share in shares
            ),
            seller_amount=_amount(royalty["seller_amount"], "the seller's amount"),
            registry=document["registry"],
            domain=Domain.from_dict(document["domain"]),
        )
        return cls._canonical(parsed, document, canonical)


__all__ = ["TransferPayload", "TransferShare"]
