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


class FaceValueSettingOut(Strict):
    """One setting of the product's face value, as the registry kept it (append-only): from
    ``set_at`` (Unix seconds, the registry's clock) on, sales are judged by it."""

    set_at: int
    #: Null: the face value was cleared (later sales are not judged).
    face_value: Amount | None
    currency: Currency | None
    #: The creator whose session made it; null: carried over when the history began
    #: (migration 0034), from that time on.
    set_by: AddressText | None


class FaceValueHistoryOut(FaceValueOut):
    """The face value and when each value was set: a sale is judged by the one in force at
    its time, never by one set afterwards."""

    #: Oldest first; the newest 1,000 settings at most.
    history: list[FaceValueSettingOut]
    #: True: older settings were left out.
    history_truncated: bool
