"""A product's face value: the amount printed on its cards, set by its creator (migration 0028).

Not part of any signed or logged record: it is the creator's statement of what a card is
worth, which the ``below-face-value`` laundering rule (``readmodels.launderrules``) compares
resale prices with. Only the creator's signed-in session sets it (never a field of a signed
registration that a relayer could change on the way), and it may be changed or cleared later;
the risk worker reads it with the goods it first meets (``readmodels.marketreads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, update

from registry.db import read_transaction, write_transaction
from registry.errors import InvalidInput
from registry.rebates import product_id
from registry.records import checksum
from registry.registration import products_t

#: The column is a BIGINT: a face value is an amount of minor units, never near this.
MAX_FACE_VALUE: Final = 2**63 - 1


@dataclass(frozen=True)
class FaceValue:
    """A face value in minor units of ``currency`` (an upper-case code, as transfer prices')."""

    value: int
    currency: str

    def __post_init__(self) -> None:
        if not 0 < self.value <= MAX_FACE_VALUE:
            raise InvalidInput(f"a face value is an integer from 1 to {MAX_FACE_VALUE}")
        code = self.currency
        if not (1 <= len(code) <= 16 and code.isascii() and code.isalnum() and code.isupper()):
            raise InvalidInput("a currency is an upper-case code of 1 to 16 characters, e.g. CNY")


@dataclass(frozen=True)
class ProductFaceValue:
    creator: bytes
    product: str
    face: FaceValue | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "creator": checksum(self.creator),
            "product": self.product,
            "face_value": None if self.face is None else str(self.face.value),
            "currency": None if self.face is None else self.face.currency,
        }


def read_face_value(conn: Connection, creator: bytes, product: str) -> ProductFaceValue:
    """The product's face value (None: none given); ``UnknownProduct`` (404) if no product."""
    c = products_t.c
    found = product_id(conn, creator, product)
    row = conn.execute(select(c.face_value, c.face_currency).where(c.id == found)).one()
    face = None if row.face_value is None else FaceValue(int(row.face_value), row.face_currency)
    return ProductFaceValue(creator, product, face)


def write_face_value(
    conn: Connection, creator: bytes, product: str, face: FaceValue | None
) -> ProductFaceValue:
    """Set (or, with None, clear) the product's face value; ``UnknownProduct`` if none."""
    found = product_id(conn, creator, product)
    conn.execute(
        update(products_t)
        .where(products_t.c.id == found)
        .values(
            face_value=None if face is None else face.value,
            face_currency=None if face is None else face.currency,
        )
    )
    return ProductFaceValue(creator, product, face)


def face_value(engine: Engine, creator: bytes, product: str) -> ProductFaceValue:
    with read_transaction(engine) as conn:
        return read_face_value(conn, creator, product)


def set_face_value(
    engine: Engine, creator: bytes, product: str, face: FaceValue | None
) -> ProductFaceValue:
    """The use case: one transaction."""
    with write_transaction(engine) as conn:
        return write_face_value(conn, creator, product, face)


__all__ = [
    "MAX_FACE_VALUE",
    "FaceValue",
    "ProductFaceValue",
    "face_value",
    "read_face_value",
    "set_face_value",
    "write_face_value",
]
