"""Royalty policies (who gets how many basis points of a resale) and integer-exact splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from registry.canonicaljson import canonical_json
from registry.eip712 import ZERO_ADDRESS, parse_address
from registry.errors import InvalidInput, InvalidRoyaltyPolicy, describe_validation

BPS_DENOMINATOR: Final = 10_000
"""Basis points in a whole: 10,000 bps = 100 % of the price."""

MAX_RECIPIENTS: Final = 16
"""Most recipients one policy may name.

Every priced transfer computes and stores one royalty row per recipient; the bound keeps a
policy from turning each resale into unbounded work and storage (THREATS 40).
"""

MAX_LABEL_LENGTH: Final = 64
"""Longest recipient label, in characters: a name for statements, not a document."""

MAX_PRICE: Final = 2**256 - 1
"""Largest price, in the smallest unit of its currency: what a Solidity uint256 can pay out."""


class RoyaltyRecipient(BaseModel):
    """One payee of a policy: an EVM address and its share in basis points."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: StrictStr
    bps: Annotated[StrictInt, Field(ge=1, le=BPS_DENOMINATOR)]
    label: Annotated[StrictStr, Field(min_length=1, max_length=MAX_LABEL_LENGTH)] | None = None

    @field_validator("address")
    @classmethod
    def _checksummed_address(cls, value: str) -> str:
        # Pydantic turns ValueError into a ValidationError; our InvalidInput would escape it.
        try:
            address = parse_address(value)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None
        if address == ZERO_ADDRESS:
            raise ValueError("the zero address cannot receive royalties (they would be burnt)")
        return address


class RoyaltyPolicy(BaseModel):
    """A creator's royalty policy, fixed at registration; no recipients means no royalty."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    recipients: tuple[RoyaltyRecipient, ...] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _exact_version(cls, value: object) -> object:
        # Literal[1] alone would let True and 1.0 through (they compare equal to 1).
        if type(value) is not int:
            raise ValueError("must be the integer 1")
        return value

    @field_validator("recipients", mode="before")
    @classmethod
    def _bounded(cls, value: object) -> object:
        # Checked before the items are validated, so a huge list costs nothing.
        if isinstance(value, list | tuple) and len(value) > MAX_RECIPIENTS:
            raise ValueError(f"a policy names at most {MAX_RECIPIENTS} recipients")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RoyaltyPolicy:
        addresses = [recipient.address for recipient in self.recipients]
        if len(set(addresses)) != len(addresses):
            raise ValueError("a recipient address appears more than once")
        if self.total_bps > BPS_DENOMINATOR:
            raise ValueError(
                f"recipients' bps sum to {self.total_bps}, more than {BPS_DENOMINATOR} (100 %)"
            )
        return self

    @property
    def total_bps(self) -> int:
        """The basis points all recipients together take of a priced resale."""
        return sum(recipient.bps for recipient in self.recipients)

    @classmethod
    def parse(cls, obj: object) -> RoyaltyPolicy:
        """Validate a policy from JSON-like data, raising ``InvalidRoyaltyPolicy`` on error."""
        if isinstance(obj, RoyaltyPolicy):
            return obj
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise InvalidRoyaltyPolicy(
                "invalid royalty policy: " + describe_validation(exc)
            ) from None


def policy_document(policy: RoyaltyPolicy) -> dict[str, object]:
    """The canonical JSON form of a policy: checksummed addresses, no null fields.

    Recipients keep the creator's order: it is the order they see and sign.
    """
    recipients: list[dict[str, object]] = []
    for recipient in policy.recipients:
        entry: dict[str, object] = {"address": recipient.address, "bps": recipient.bps}
        if recipient.label is not None:
            entry["label"] = recipient.label
        recipients.append(entry)
    return {"version": policy.version, "recipients": recipients}


def policy_hash(policy: RoyaltyPolicy) -> bytes:
    """SHA-256 of the RFC 8785 JSON of ``policy_document``: the ``royaltyPolicy`` signed."""
    return hashlib.sha256(canonical_json(policy_document(policy))).digest()


@dataclass(frozen=True, slots=True)
class RoyaltySplit:
    """How one price divides: each recipient's royalty, in policy order, and the seller's rest."""

    price: int
    royalties: tuple[tuple[str, int], ...]
    seller_amount: int
    total_royalty: int

    def __post_init__(self) -> None:
        if self.total_royalty != sum(amount for _, amount in self.royalties):
            raise InvalidInput("total_royalty must be the sum of the royalties")
        if self.seller_amount < 0 or self.seller_amount + self.total_royalty != self.price:
            raise InvalidInput("royalties and seller_amount must sum to the price")


def split(price: int, policy: RoyaltyPolicy) -> RoyaltySplit:
    """Split ``price`` (an integer in the currency's smallest unit) under ``policy``.

    The published remainder rule: each recipient gets floor(price * bps / 10,000); the seller
    gets everything else, so the parts always sum exactly to the price and the rounding dust
    (less than one unit per recipient) goes to the seller. Integer arithmetic only, so every
    implementation gets the same answer; a recipient may get 0 on a tiny price and still
    appears, so the split lines up with the policy.
    """
    if not isinstance(price, int) or isinstance(price, bool):
        raise InvalidInput("a price must be an integer amount of the currency's smallest unit")
    if not 0 <= price <= MAX_PRICE:
        raise InvalidInput(f"a price must be from 0 to {MAX_PRICE}")
    royalties = tuple(
        (recipient.address, price * recipient.bps // BPS_DENOMINATOR)
        for recipient in policy.recipients
    )
    total = sum(amount for _, amount in royalties)
    return RoyaltySplit(
        price=price, royalties=royalties, seller_amount=price - total, total_royalty=total
    )


__all__ = [
    "BPS_DENOMINATOR",
    "MAX_LABEL_LENGTH",
    "MAX_PRICE",
    "MAX_RECIPIENTS",
    "RoyaltyPolicy",
    "RoyaltyRecipient",
    "RoyaltySplit",
    "policy_document",
    "policy_hash",
    "split",
]
