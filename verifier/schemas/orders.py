"""Wire schemas of the orders' routes (issue 17): open an order, move it, read it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from registry.edges import AddressText, GoodTypeName, Hex32
from registry.orders import MAX_CONFIRM_WINDOW, MAX_RESERVATION_SECONDS
from verifier.schemas.deliveryreceipts import DeliveryReceiptOut
from verifier.schemas.fields import Amount, HexBytes, Reference, Strict
from verifier.schemas.platforms import PartyIn

#: An ISO 4217 currency code (three upper-case letters: EUR, CNY, USD).
Iso4217 = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

OrderState = Literal[
    "reserved",
    "delivered",
    "disputed",
    "confirmed",
    "auto_confirmed",
    "released",
    "refunded",
    "expired",
    "cancelled",
]


class OrderIn(Strict):
    """Open an order for a good your platform's seller holds (or its creator, first-hand):
    the good is reserved for it until it is delivered, or ``reservation_seconds`` pass."""

    good_type: GoodTypeName
    fingerprint: Hex32
    #: The holder on your platform (``reference``), or ``{"creator": true}``.
    seller: PartyIn
    #: Your own reference to the buyer: kept only as a keyed hash and a salted commitment.
    buyer_reference: Reference
    price: Amount
    currency: Iso4217
    #: Seconds the buyer has, once delivered, to confirm or dispute; then it auto-confirms.
    confirm_window: Annotated[int, Field(ge=60, le=MAX_CONFIRM_WINDOW)] = 7 * 86_400
    reservation_seconds: Annotated[int, Field(ge=60, le=MAX_RESERVATION_SECONDS)] = 30 * 60


class OrderResolveIn(Strict):
    """The platform's resolution of a disputed order: ``release`` (the sale stands: its
    transfer recorded, its lines due) or ``refund`` (its lines reversed, the good still the
    seller's; with ``redeemed``, the buyer redeemed the code anyway and it is consumed)."""

    outcome: Literal["release", "refund"]
    redeemed: bool = False


class DeliveryIn(Strict):
    """The code you delivered for the order (hashed to its fingerprint under its creator's
    code keys exactly as verify does; never stored or logged), or its fingerprint: one."""

    code: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    fingerprint: Hex32 | None = None


class OrderChangeOut(Strict):
    """One state change, as the registry signed it (EIP-712 ``OrderStateChange`` over
    ``order_id``, ``sequence``, ``change_hash`` and ``at``)."""

    sequence: int
    event: str
    from_state: OrderState | None
    to_state: OrderState
    #: "platform:<id>", or "registry" for a timeout it applied.
    actor: str
    at: int
    change_hash: Hex32
    signature: HexBytes
    signer: AddressText


class OrderOut(Strict):
    order_id: int
    platform: str
    good_type: GoodTypeName
    fingerprint: Hex32
    #: None when the seller is the good's creator.
    seller_platform: str | None
    buyer_platform: str
    #: SHA-256 commitment to the buyer (``registry.orders.buyer_commitment``) and its salt.
    buyer_commitment: Hex32
    buyer_salt: HexBytes
    price: Amount
    currency: str
    confirm_window: int
    state: OrderState
    #: Whether the good is still reserved for the order (reserved, delivered, disputed).
    open: bool
    created_at: int
    reserved_until: int
    delivered_at: int | None
    confirm_deadline: int | None
    updated_at: int
    changes: list[OrderChangeOut]
    #: True when this answers a retry (same Idempotency-Key) of a request already done.
    replayed: bool


class DeliveryEntryOut(Strict):
    """The DELIVERY entry logged for the order (``registry.deliverypayload``)."""

    leaf_index: int
    payload_hash: Hex32
    #: The entry's payload document: its RFC 8785 SHA-256 is ``payload_hash``.
    payload: dict[str, Any]


class DeliveryOut(Strict):
    """The delivered order, its DELIVERY entry in the log, and the buyer's signed receipt
    (issue 17 item 3: ``GET /v1/orders/{id}/receipt`` gives it again)."""

    order: OrderOut
    delivery: DeliveryEntryOut
    receipt: DeliveryReceiptOut | None = None


__all__ = [
    "DeliveryEntryOut",
    "DeliveryIn",
    "DeliveryOut",
    "Iso4217",
    "OrderChangeOut",
    "OrderIn",
    "OrderOut",
    "OrderResolveIn",
    "OrderState",
]
