"""The buyer's delivery receipts (issue 17 item 3): one per delivered order."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column


class DeliveryReceiptRow(SQLModel, table=True):
    """The receipt the registry signed when the order was delivered
    (``registry.deliveryreceipt``), kept as signed so every reader gets the same bytes.

    ``receipt_id`` is the short link's id (128 random bits, base64url): a capability to read
    the receipt and check a code against it on the public page, never the order id.
    """

    __tablename__ = "delivery_receipts"
    __table_args__ = (Index("uq_delivery_receipts_receipt_id", "receipt_id", unique=True),)

    order_id: int = Field(
        sa_column=Column(BigInteger, ForeignKey("orders.id"), primary_key=True, autoincrement=False)
    )
    receipt_id: str = Field(sa_column=Column(String(32), nullable=False))
    #: The order's DELIVERY entry.
    leaf_index: int = Field(sa_type=BigInteger)
    #: The signed document, RFC 8785 JSON (``registry.deliveryreceipt.receipt_document``).
    document: bytes = Field(sa_column=blob_column())
    receipt_hash: bytes = Field(sa_column=blob_column())
    signature: bytes = Field(sa_column=blob_column())
    #: The registry key that signed it (20 bytes): the key for the DELIVERY's leaf.
    signer: bytes = Field(sa_column=blob_column())
    issued_at: int = Field(sa_type=BigInteger)
