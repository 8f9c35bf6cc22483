"""Credit scores as the risk worker last computed them (``registry.creditscores``): what a
verify answer shows of the current holder's credit without an aggregate per request."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, String, Text
from sqlmodel import Field, SQLModel


class CreditPlatformRow(SQLModel, table=True):
    """A platform's ``credit/v1`` score (``CreditOut`` as JSON), rewritten when it changes."""

    __tablename__ = "credit_platforms"

    platform: str = Field(sa_column=Column(String(64), primary_key=True))
    #: JSON: the score's document (``registry.creditfacts.credit_document``).
    document: str = Field(sa_type=Text)
    #: The refresh that last wrote it (Unix seconds; the document's ``as_of``).
    written_at: int = Field(sa_type=BigInteger)


class CreditSellerRow(SQLModel, table=True):
    """A seller's score on a platform, keyed by the seller's keyed reference hash (the form
    ``holdings.holder_ref`` and ``transfers.seller_ref`` carry)."""

    __tablename__ = "credit_sellers"

    platform: str = Field(sa_column=Column(String(64), primary_key=True))
    seller_ref: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    document: str = Field(sa_type=Text)
    written_at: int = Field(sa_type=BigInteger)
