"""A product's face value: the amount printed on its cards, set by its creator (migration 0028).

Not part of any signed or logged record: it is the creator's statement of what a card is
worth, which the ``below-face-value`` laundering rule (``readmodels.launderrules``) compares
resale prices with. Only the creator's signed-in session sets it (never a field of a signed
registration that a relayer could change on the way), and it may be changed or cleared later.

Each setting (or clearing) is also kept, with the registry's time, in the append-only
``face_value_history`` (migration 0034), in the same transaction: a sale is judged by the face
value in force when it was made, never by one set afterwards (a creator cannot make earlier
resales of its cards "below face value" retroactively). The risk worker reads that history
with the goods it first meets (``readmodels.marketreads``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, select, update

from registry.db import read_transaction, write_transaction
from registry.errors import InvalidInput
from registry.models import FaceValueSettingRow
from registry.rebates import product_id
from registry.records import checksum
from registry.registration import products_t

face_value_history_t: Table = FaceValueSettingRow.__table__  # type: ignore[attr-defined]

#: The column is a BIGINT: a face value is an amount of minor units, never near this.
MAX_FACE_VALUE: Final = 2**63 - 1

#: Most settings a read of a product's history answers (its newest). Threat: settings are
#: made by hand, but nothing stops a script from making thousands, and the history keeps
#: every one: an answer (and the client's parse of it) stays bounded.
MAX_FACE_HISTORY: Final = 1000


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


@dataclass(frozen=True)
class FaceValueSetting:
    """One row of a product's face value history: ``face`` (None: cleared) from ``set_at`` on;
    ``set_by``: the creator whose session set it (None: carried over by migration 0034)."""

    set_at: int
    face: FaceValue | None
    set_by: bytes | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "set_at": self.set_at,
            "face_value": None if self.face is None else str(self.face.value),
            "currency": None if self.face is None else self.face.currency,
            "set_by": None if self.set_by is None else checksum(self.set_by),
        }


@dataclass(frozen=True)
class FaceValueHistory:
    """A product's face value and its settings, read together: ``settings`` the newest
    ``MAX_FACE_HISTORY`` at most, oldest first; ``truncated``: older ones were left out."""

    current: ProductFaceValue
    settings: list[FaceValueSetting]
    truncated: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.current.as_dict(),
            "history": [setting.as_dict() for setting in self.settings],
            "history_truncated": self.truncated,
        }


def write_face_value(
    conn: Connection, creator: bytes, product: str, face: FaceValue | None, *, now: int
) -> ProductFaceValue:
    """Set (or, with None, clear) the product's face value from ``now`` on, and keep the
    setting in its history; ``UnknownProduct`` if none. Flushes only."""
    found = product_id(conn, creator, product)
    value = None if face is None else face.value
    currency = None if face is None else face.currency
    conn.execute(
        update(products_t)
        .where(products_t.c.id == found)
        .values(face_value=value, face_currency=currency)
    )
    conn.execute(
        face_value_history_t.insert().values(
            product_id=found, face_value=value, face_currency=currency, set_at=now, set_by=creator
        )
    )
    return ProductFaceValue(creator, product, face)


def read_face_history(
    conn: Connection, creator: bytes, product: str, *, newest: int | None = None
) -> list[FaceValueSetting]:
    """The product's face value settings, oldest first, in the order ``below-face-value``
    reads them (``set_at``, then a second's in the order they were made): all, or the
    ``newest`` ones; ``UnknownProduct`` if no product."""
    c = face_value_history_t.c
    found = product_id(conn, creator, product)
    query = select(c.set_at, c.face_value, c.face_currency, c.set_by).where(c.product_id == found)
    if newest is None:
        rows = list(conn.execute(query.order_by(c.set_at, c.id)))
    else:
        rows = list(conn.execute(query.order_by(c.set_at.desc(), c.id.desc()).limit(newest)))
        rows.reverse()
    return [
        FaceValueSetting(
            int(r.set_at),
            None if r.face_value is None else FaceValue(int(r.face_value), r.face_currency),
            None if r.set_by is None else bytes(r.set_by),
        )
        for r in rows
    ]


def face_value(engine: Engine, creator: bytes, product: str) -> ProductFaceValue:
    with read_transaction(engine) as conn:
        return read_face_value(conn, creator, product)


def set_face_value(
    engine: Engine, creator: bytes, product: str, face: FaceValue | None, *, now: int
) -> ProductFaceValue:
    """The use case: one transaction (the product's value and its history row together);
    ``now`` is the registry's clock, the one transfers are dated by."""
    with write_transaction(engine) as conn:
        return write_face_value(conn, creator, product, face, now=now)


def face_history(engine: Engine, creator: bytes, product: str) -> list[FaceValueSetting]:
    with read_transaction(engine) as conn:
        return read_face_history(conn, creator, product)


def face_value_history(engine: Engine, creator: bytes, product: str) -> FaceValueHistory:
    """The product's face value and its newest ``MAX_FACE_HISTORY`` settings, in one read
    transaction; ``UnknownProduct`` if no product."""
    with read_transaction(engine) as conn:
        current = read_face_value(conn, creator, product)
        settings = read_face_history(conn, creator, product, newest=MAX_FACE_HISTORY + 1)
    truncated = len(settings) > MAX_FACE_HISTORY
    return FaceValueHistory(current, settings[-MAX_FACE_HISTORY:], truncated)


__all__ = [
    "MAX_FACE_HISTORY",
    "MAX_FACE_VALUE",
    "FaceValue",
    "FaceValueHistory",
    "FaceValueSetting",
    "ProductFaceValue",
    "face_history",
    "face_value",
    "face_value_history",
    "face_value_history_t",
    "read_face_history",
    "read_face_value",
    "set_face_value",
    "write_face_value",
]
