"""A product's face value (issue 18 item 2): what its cards are worth, which the
``below-face-value`` laundering rule compares resale prices with."""

from __future__ import annotations

from registry.edges import AddressText
from verifier.schemas.fields import Amount, Currency, Slug, Strict


class FaceValueIn(Strict):
    """The amount printed on the product's cards, in minor units of ``currency`` (as transfer
    prices: fen, cents); compared only with prices in the same currency."""

    face_value: Amount
    currency: Currency


class FaceValueOut(Strict):
    creator: AddressText
    product: Slug
    #: Null: the creator gave none (the rule then says nothing about the product's goods).
    face_value: Amount | None
    currency: Currency | None
