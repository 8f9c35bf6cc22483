"""Guaranteed-trade orders (issue 17): the order, the good's reservation, the state changes."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class Order(SQLModel, table=True):
    """A platform's order for a good its seller holds (``registry.orders`` has the states).

    The seller is ``(platform, keyed hash of its reference)`` as in transfers, or the creator
    (no platform). The buyer is kept twice, never in clear: the keyed hash a transfer will
    name (``registry.parties``), and a salted commitment a receipt can show the buyer
    (``registry.orders.buyer_commitment``). UNIQUE (platform, idempotency_key): a retried
    opening opens once.
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("uq_orders_platform_idempotency_key", "platform", "idempotency_key", unique=True),
        Index("ix_orders_platform_id", "platform", "id"),
        Index("ix_orders_good_type_fingerprint", "good_type", "fingerprint"),
        Index("ix_orders_seller_platform_seller_ref", "seller_platform", "seller_ref"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    #: The platform that opened the order (an API key's platform id); it alone acts on it.
    platform: str = Field(max_length=64)
    good_type: int = Field(sa_type=SmallInteger)
    fingerprint: bytes = Field(sa_column=blob_column())
    seller_platform: str | None = Field(default=None, max_length=64)
    seller_ref: bytes | None = Field(default=None, sa_type=LargeBinary)
    buyer_platform: str = Field(max_length=64)
    buyer_ref: bytes = Field(sa_column=blob_column())
    buyer_commitment: bytes = Field(sa_column=blob_column())
    buyer_salt: bytes = Field(sa_column=blob_column())
    #: Integer minor units as decimal text (as transfers: up to 2**256 - 1); ISO 4217 code.
    price: str = Field(max_length=80)
    currency: str = Field(max_length=3)
    #: Seconds the buyer has, once the good is delivered, to confirm or dispute.
    confirm_window: int = Field(sa_type=Integer)
    #: ``registry.orders.State`` value.
    state: str = Field(max_length=16)
    #: The number of the last state change (0: the opening): a change is conditional on it.
    sequence: int = Field(sa_type=Integer)
    created_at: int = Field(sa_type=BigInteger)
    reserved_until: int = Field(sa_type=BigInteger)
    delivered_at: int | None = Field(default=None, sa_type=BigInteger)
    #: ``delivered_at + confirm_window``: past it, the order is auto-confirmed.
    confirm_deadline: int | None = Field(default=None, sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)
    idempotency_key: str | None = Field(default=None, max_length=128)
    #: SHA-256 of the opening as the platform sent it, to tell a retry from a reused key.
    request_hash: bytes = Field(sa_column=blob_column())


class OrderReservation(SQLModel, table=True):
    """The one open order a good is reserved for: the primary key is the good, so of two
    orders racing for one good exactly one row goes in (the other's INSERT fails).

    ``expires_at``: when the reservation lapses by itself (the reservation's end while
    reserved, the confirmation deadline once delivered); NULL while disputed (only a
    resolution ends it). A lapsed row is settled lazily (the order expired or auto-confirmed
    and the row deleted) by whoever meets it next, and by the sweep.
    """

    __tablename__ = "order_reservations"
    __table_args__ = (
        Index("uq_order_reservations_order_id", "order_id", unique=True),
        Index("ix_order_reservations_expires_at", "expires_at"),
    )

    good_type: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    fingerprint: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    order_id: int = Field(sa_type=BigInteger, foreign_key="orders.id")
    platform: str = Field(max_length=64)
    expires_at: int | None = Field(default=None, sa_type=BigInteger)


class OrderChange(SQLModel, table=True):
    """One state change of an order, as the registry recorded and signed it.

    ``change_hash`` is SHA-256 over the change's canonical JSON, which names the previous
    change's hash: the changes of an order are a chain. ``signature`` is the registry's
    EIP-712 ``OrderStateChange`` over it. UNIQUE (order_id, sequence): two racing changes of
    one order cannot both be recorded; UNIQUE (order_id, idempotency_key): a retried change
    is found, not made twice.
    """

    __tablename__ = "order_changes"
    __table_args__ = (
        Index("uq_order_changes_order_id_sequence", "order_id", "sequence", unique=True),
        Index(
            "uq_order_changes_order_id_idempotency_key",
            "order_id",
            "idempotency_key",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    order_id: int = Field(sa_type=BigInteger, foreign_key="orders.id")
    sequence: int = Field(sa_type=Integer)
    event: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    #: "platform:<id>" for a platform's request, "registry" for a timeout it applied.
    actor: str = Field(max_length=80)
    at: int = Field(sa_type=BigInteger)
    change_hash: bytes = Field(sa_column=blob_column())
    signature: bytes = Field(sa_column=blob_column())
    signer: bytes = Field(sa_column=blob_column())
    idempotency_key: str | None = Field(default=None, max_length=128)


__all__ = ["Order", "OrderChange", "OrderReservation"]
