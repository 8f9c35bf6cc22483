"""Guaranteed trade (担保交易, issue 17): an order's states, the table that moves them, its terms.

A platform opens an order for a good its seller holds; while the order is open the good is
*reserved* (``registry.reservations``): no other order, and no transfer, may take it. The
order then moves only by the table below, one ``(state, event) -> state`` at a time
(``next_state``); anything not in the table is ``InvalidTransition`` (409) and changes
nothing. The storage that applies a change (conditional on the order's state and change
number, recorded, hash-chained and signed) is ``registry.orderstore``.

    state       event         next state      who
    reserved    deliver       delivered       the order's platform (issue 17 item 2)
    reserved    cancel        cancelled       the order's platform
    reserved    expire        expired         the registry, past ``reserved_until``
    delivered   confirm       confirmed       the order's platform, for its buyer
    delivered   dispute       disputed        the order's platform, before the deadline
    delivered   auto_confirm  auto_confirmed  the registry, past ``confirm_deadline``
    disputed    release       released        the order's platform (resolution)
    disputed    refund        refunded        the order's platform (resolution)

Open states (the good stays reserved): reserved, delivered, disputed. Every other state is
final. The timed events (expire, auto_confirm) are never asked for: they are applied by
whoever meets an order past its time (lazily) and by the sweep.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import rfc8785

from registry.errors import Conflict, InvalidInput
from registry.fingerprints import GoodType, fingerprint_hex
from registry.royalty import MAX_PRICE
from registry.transferrequests import Party


class State(StrEnum):
    RESERVED = "reserved"
    DELIVERED = "delivered"
    DISPUTED = "disputed"
    CONFIRMED = "confirmed"
    AUTO_CONFIRMED = "auto_confirmed"
    RELEASED = "released"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Event(StrEnum):
    DELIVER = "deliver"
    CANCEL = "cancel"
    EXPIRE = "expire"
    CONFIRM = "confirm"
    DISPUTE = "dispute"
    AUTO_CONFIRM = "auto_confirm"
    RELEASE = "release"
    REFUND = "refund"


#: The whole state machine. ARCHITECTURE "Orders and guaranteed trade" shows the same table.
TRANSITIONS: Final[dict[tuple[State, Event], State]] = {
    (State.RESERVED, Event.DELIVER): State.DELIVERED,
    (State.RESERVED, Event.CANCEL): State.CANCELLED,
    (State.RESERVED, Event.EXPIRE): State.EXPIRED,
    (State.DELIVERED, Event.CONFIRM): State.CONFIRMED,
    (State.DELIVERED, Event.DISPUTE): State.DISPUTED,
    (State.DELIVERED, Event.AUTO_CONFIRM): State.AUTO_CONFIRMED,
    (State.DISPUTED, Event.RELEASE): State.RELEASED,
    (State.DISPUTED, Event.REFUND): State.REFUNDED,
}

#: States in which the good stays reserved for the order.
OPEN_STATES: Final = frozenset({State.RESERVED, State.DELIVERED, State.DISPUTED})

#: Events only the registry applies, when an order's time has passed.
TIMED_EVENTS: Final = frozenset({Event.EXPIRE, Event.AUTO_CONFIRM})

#: The event recorded as an order's first change (sequence 0): it has no previous state.
OPENED: Final = "open"

#: Bounds of what a platform may ask (seconds).
MAX_RESERVATION_SECONDS: Final = 7 * 86_400
DEFAULT_RESERVATION_SECONDS: Final = 30 * 60
MAX_CONFIRM_WINDOW: Final = 90 * 86_400
DEFAULT_CONFIRM_WINDOW: Final = 7 * 86_400

#: EIP-712 primary type of a signed state change (``registry.eip712.STRUCT_TYPES``).
CHANGE_TYPE: Final = "OrderStateChange"

_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")


class InvalidTransition(Conflict):
    """The order is not in a state the asked event applies to (the table in
    ``registry.orders``); nothing was changed."""

    code = "invalid-transition"
    diagnostics = "Read the order's state; only the moves in the state table apply to it."

    def __init__(self, detail: str, state: State) -> None:
        super().__init__(detail)
        self.state = state


class GoodReserved(Conflict):
    """The good is reserved for an open order: it may not be sold, or reserved again, until
    that order ends."""

    code = "reserved"
    diagnostics = "Wait until the order that reserved the good ends (expires, or is resolved)."


def next_state(state: State, event: Event) -> State:
    """The state ``event`` moves an order in ``state`` to; ``InvalidTransition`` if none."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        moves = ", ".join(allowed) if allowed else "nothing: the order is closed"
        raise InvalidTransition(
            f"an order that is {state.value} cannot take '{event.value}' (it can take: {moves})",
            state,
        ) from None


def buyer_commitment(salt: bytes, platform: str, reference: str) -> bytes:
    """SHA-256 over a fresh salt and the buyer's (platform, reference): a receipt can show it
    to the buyer, who opens it with the salt; without the salt no guess can be tested."""
    return hashlib.sha256(
        b"tracemark/order-buyer/v1\0"
        + salt
        + platform.encode("utf-8")
        + b"\0"
        + reference.encode("utf-8")
    ).digest()


@dataclass(frozen=True)
class OrderRequest:
    """A platform's opening of an order: the good, its seller, the buyer, price and times."""

    platform: str
    good_type: GoodType
    fingerprint: bytes
    #: A party on the opening platform (the holder), or the creator for a first-hand sale.
    seller: Party
    #: A party on the opening platform, with its reference.
    buyer: Party
    price: int
    currency: str
    confirm_window: int = DEFAULT_CONFIRM_WINDOW
    reservation_seconds: int = DEFAULT_RESERVATION_SECONDS
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if self.buyer.platform != self.platform or self.buyer.reference is None:
            raise InvalidInput("the buyer is a party on your own platform, with its reference")
        if not self.seller.is_creator and self.seller.reference is None:
            raise InvalidInput("seller: give a reference (or creator=true)")
        if not 0 <= self.price <= MAX_PRICE:
            raise InvalidInput(f"a price is an integer from 0 to {MAX_PRICE} (minor units)")
        if not _CURRENCY.match(self.currency):
            raise InvalidInput("a currency is an ISO 4217 code: three upper-case letters")
        if not 60 <= self.confirm_window <= MAX_CONFIRM_WINDOW:
            raise InvalidInput(f"a confirmation window is 60 to {MAX_CONFIRM_WINDOW} seconds")
        if not 60 <= self.reservation_seconds <= MAX_RESERVATION_SECONDS:
            raise InvalidInput(f"a reservation lasts 60 to {MAX_RESERVATION_SECONDS} seconds")

    def request_hash(self) -> bytes:
        """The opening as the platform sent it (references included), to spot a reused key."""
        document: dict[str, Any] = {
            "platform": self.platform,
            "good_type": int(self.good_type),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "seller": [self.seller.platform, self.seller.reference],
            "buyer": [self.buyer.platform, self.buyer.reference],
            "price": str(self.price),
            "currency": self.currency,
            "confirm_window": self.confirm_window,
            "reservation_seconds": self.reservation_seconds,
        }
        return hashlib.sha256(rfc8785.dumps(document)).digest()


def change_document(
    *,
    order_id: int,
    sequence: int,
    event: str,
    from_state: State | None,
    to_state: State,
    actor: str,
    at: int,
    previous: bytes | None,
    good_type: int,
    fingerprint: bytes,
) -> dict[str, Any]:
    """What one state change says, as hashed and signed (``change_hash``)."""
    return {
        "v": 1,
        "order": order_id,
        "sequence": sequence,
        "event": event,
        "from": None if from_state is None else from_state.value,
        "to": to_state.value,
        "actor": actor,
        "at": at,
        "previous": None if previous is None else "0x" + previous.hex(),
        "good_type": good_type,
        "fingerprint": fingerprint_hex(fingerprint),
    }


def change_hash(document: dict[str, Any]) -> bytes:
    return hashlib.sha256(b"tracemark/order-change/v1\0" + rfc8785.dumps(document)).digest()


__all__ = [
    "CHANGE_TYPE",
    "DEFAULT_CONFIRM_WINDOW",
    "DEFAULT_RESERVATION_SECONDS",
    "MAX_CONFIRM_WINDOW",
    "MAX_RESERVATION_SECONDS",
    "OPENED",
    "OPEN_STATES",
    "TIMED_EVENTS",
    "TRANSITIONS",
    "Event",
    "GoodReserved",
    "InvalidTransition",
    "OrderRequest",
    "State",
    "buyer_commitment",
    "change_document",
    "change_hash",
    "next_state",
]
