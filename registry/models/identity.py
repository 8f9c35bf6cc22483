"""Creators' proven web identities, as the registry last checked them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel


class CreatorIdentityRow(SQLModel, table=True):
    """A creator's proven web domain and name as last checked (``registry.identity``): the
    fast read behind verify answers. The log holds the evidence (CREATOR_IDENTITY entries);
    this row is the newest of them, ``verified`` or ``lapsed``."""

    __tablename__ = "creator_identities"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    domain: str = Field(max_length=260)
    name: str = Field(max_length=64)
    #: "verified" or "lapsed".
    status: str = Field(max_length=16)
    checked_at: int = Field(sa_type=BigInteger)
    #: Where the statement was fetched (https://<domain>/.well-known/tracemark-creator.json).
    url: str = Field(sa_type=Text)
    #: The CREATOR_IDENTITY entry that recorded this check.
    entry_id: int = Field(sa_type=BigInteger, foreign_key="entries.id")


__all__ = [
    "CreatorIdentityRow",
]
