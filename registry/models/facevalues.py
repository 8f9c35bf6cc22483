"""Every face value a creator set for a product, in order (migration 0034): what the
``below-face-value`` rule judges each sale by (the one in force when it was made)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from registry.models.columns import id_column


class FaceValueSettingRow(SQLModel, table=True):
    """One setting of a product's face value (``registry.facevalue``): a value and its
    currency, or a clearing (both None), from ``set_at`` on, until the product's next row.

    Append-only: no row is changed or deleted (triggers refuse both, migration 0034), so a
    creator cannot move a face value back in time over sales already made."""

    __tablename__ = "face_value_history"
    __table_args__ = (Index("ix_face_value_history_product", "product_id", "id"),)

    id: int | None = Field(default=None, sa_column=id_column())
    product_id: int = Field(foreign_key="products.id")
    #: Minor units of ``face_currency``; None (with the currency): the face value cleared.
    face_value: int | None = Field(default=None, sa_type=BigInteger)
    face_currency: str | None = Field(default=None, max_length=16)
    #: The registry's clock when it was set: it judges the sales made after this second.
    set_at: int = Field(sa_type=BigInteger)
    #: The creator's address whose signed-in session set it; None: a value the product had
    #: when migration 0034 ran (counted from the migration on).
    set_by: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))


__all__ = ["FaceValueSettingRow"]
