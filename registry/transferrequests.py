"""A platform's transfer report: the parties, the request, and the refusals it can meet.

``registry.transfers`` checks and logs a ``TransferRequest``; this module holds what the
request is and why one is refused (the double sale, a consumed or revoked good, a reused
Idempotency-Key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import rfc8785

from registry.errors import Conflict, IdempotencyKeyReused, InvalidInput, TracemarkError
from registry.fingerprints import GoodType, fingerprint_hex
from registry.parties import MAX_REFERENCE_LENGTH, check_platform_id
from registry.royalty import MAX_PRICE

#: The hash a row gets from a reference: ``ReferenceKeys.reference_hash`` (keyed per platform).
Hasher = Callable[[str, str], bytes]

#: Longest hand-over token accepted (``registry.handover`` issues them): a bound on what a
#: request may make us hash.
MAX_TOKEN_LENGTH: Final = 128


def token_hash(token: str) -> bytes:
    """What is stored of a hand-over token, and what a request's hash covers of it."""
    return hashlib.sha256(token.encode("utf-8")).digest()


class DoubleSale(Conflict):
    """The seller is not the good's current holder: someone is selling what they do not hold."""

    code = "double-sale"

    def __init__(self, detail: str, earlier: dict[str, Any] | None) -> None:
        super().__init__(detail)
        self.earlier = earlier


class GoodConsumed(Conflict):
    """A single-use good was already sold to its end user."""

    code = "consumed"


class GoodRevoked(Conflict):
    """The creator revoked the good; it may not change hands."""

    code = "revoked"


class NotTheHolder(TracemarkError):
    """The seller is a party on another platform, and that platform did not consent (403):
    only the holding platform may report its sale, or a buyer presenting its authorization."""

    code = "not-the-holder"
    http_status = 403
    diagnostics = "Ask the holding platform for a hand-over authorization, and present it."


class AuthorizationRefused(NotTheHolder):
    """The hand-over authorization presented is unknown, used, expired, or for another good,
    buyer or seller (403)."""

    code = "authorization-refused"
    diagnostics = "Ask the holding platform for a new authorization for this very sale."


@dataclass(frozen=True)
class Party:
    """A seller or buyer. ``platform=None`` names the good's creator as the party.

    ``reference=None`` on a platform is allowed only for a seller named by a hand-over
    authorization (the buyer need not learn the holder's reference): ``TransferRequest``
    checks that.
    """

    platform: str | None
    reference: str | None

    def __post_init__(self) -> None:
        if self.platform is None:
            if self.reference is not None:
                raise InvalidInput("the creator is a party without a reference")
            return
        check_platform_id(self.platform)
        if self.reference is not None and not 1 <= len(self.reference) <= MAX_REFERENCE_LENGTH:
            raise InvalidInput(f"a party's reference has 1 to {MAX_REFERENCE_LENGTH} characters")

    @property
    def is_creator(self) -> bool:
        return self.platform is None

    def ref_hash(self, hasher: Hasher) -> bytes | None:
        """The stored form of the reference (None for the creator or an unnamed seller)."""
        if self.platform is None or self.reference is None:
            return None
        return hasher(self.platform, self.reference)


@dataclass(frozen=True)
class TransferRequest:
    """What a platform reports: the good, seller and buyer, the price, and finality."""

    platform: str
    good_type: GoodType
    fingerprint: bytes
    seller: Party
    buyer: Party
    price: int | None = None
    currency: str | None = None
    final: bool = False
    idempotency_key: str | None = None
    #: A hand-over authorization the seller's platform issued to this (the buying) platform.
    authorization: str | None = None

    def __post_init__(self) -> None:
        check_platform_id(self.platform)
        if self.buyer.is_creator or self.buyer.reference is None:
            raise InvalidInput("the buyer must be a party on a platform, with its reference")
        if self.authorization is not None:
            if self.seller.is_creator:
                raise InvalidInput(
                    "a hand-over authorization is for a good held on a platform, not by its creator"
                )
            if self.buyer.platform != self.platform:
                raise InvalidInput(
                    "with a hand-over authorization the buyer is a party on your own platform"
                )
            if not 1 <= len(self.authorization) <= MAX_TOKEN_LENGTH:
                raise InvalidInput(f"an authorization has 1 to {MAX_TOKEN_LENGTH} characters")
        elif not self.seller.is_creator and self.seller.reference is None:
            raise InvalidInput("seller: give a reference (or creator=true, or an authorization)")
        if (self.price is None) != (self.currency is None):
            raise InvalidInput("give a price together with its currency, or neither")
        if self.price is not None and not 0 <= self.price <= MAX_PRICE:
            raise InvalidInput(f"a price is an integer from 0 to {MAX_PRICE} (minor units)")
        if self.currency is not None and not (
            1 <= len(self.currency) <= 16 and self.currency.isascii() and self.currency.isupper()
        ):
            raise InvalidInput("a currency is an upper-case code of 1 to 16 characters, e.g. EUR")

    def request_hash(self) -> bytes:
        """The request as the platform sent it (references included), to spot a reused key."""
        document: dict[str, Any] = {
            "platform": self.platform,
            "good_type": int(self.good_type),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "seller": [self.seller.platform, self.seller.reference],
            "buyer": [self.buyer.platform, self.buyer.reference],
            "price": None if self.price is None else str(self.price),
            "currency": self.currency,
            "final": self.final,
        }
        if self.authorization is not None:  # absent otherwise: older requests hash as before
            document["authorization"] = token_hash(self.authorization).hex()
        return hashlib.sha256(rfc8785.dumps(document)).digest()


__all__ = [
    "MAX_TOKEN_LENGTH",
    "AuthorizationRefused",
    "DoubleSale",
    "GoodConsumed",
    "GoodRevoked",
    "Hasher",
    "IdempotencyKeyReused",
    "NotTheHolder",
    "Party",
    "TransferRequest",
    "token_hash",
]
