"""Platforms' attestation signing keys (issue 18 item 4): every one enrolled, newest in force."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class PlatformKeyRow(SQLModel, table=True):
    """One enrolled attestation key of a platform (``registry.platformkeys``): an Ethereum
    address whose secp256k1 key signs the platform's real-name attestations. The platform's
    newest row is the key in force; an older one stays, as the key of the attestations logged
    while it was in force (they carry it)."""

    __tablename__ = "platform_keys"
    __table_args__ = (Index("ix_platform_keys_platform", "platform", "id"),)

    id: int | None = Field(default=None, sa_column=id_column())
    platform: str = Field(sa_column=Column(String(64), nullable=False))
    #: The key's 20-byte address.
    address: bytes = Field(sa_column=blob_column())
    enrolled_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: Who enrolled it: "operator" (the CLI) or "platform" (its API key and a proof of
    #: possession).
    enrolled_by: str = Field(sa_column=Column(String(16), nullable=False))


__all__ = ["PlatformKeyRow"]
