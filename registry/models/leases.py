"""The singleton roles' leases (``registry.lease``, issue 16)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

import registry.models.columns  # noqa: F401  (the naming convention, before the table)


class RoleLease(SQLModel, table=True):
    """Who runs a singleton role (sequencer, anchoring, ...) and until when."""

    __tablename__ = "role_leases"

    role: str = Field(sa_column=Column(Text, primary_key=True))
    holder: str = Field(sa_column=Column(Text, nullable=False))
    #: The fencing token: one more at each taking; a holder's work checks it is still its own.
    token: int = Field(sa_type=BigInteger)
    #: The database's clock (ms) past which a standby may take the role over.
    expires_at_ms: int = Field(sa_type=BigInteger)
    renewed_at_ms: int = Field(sa_type=BigInteger)


__all__ = ["RoleLease"]
