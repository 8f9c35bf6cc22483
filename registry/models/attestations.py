"""Real-name attestations (issue 18 item 4): every one a platform made, newest wins."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, SmallInteger, String
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class RealNameAttestationRow(SQLModel, table=True):
    """One attestation (``registry.attestationstore``): a platform's seller, by its keyed
    reference hash, verified to a level at a time. The log holds the evidence (ATTESTATION
    entries); a seller's current level is its newest row. Nothing personal: no reference,
    no name, no ID or phone number."""

    __tablename__ = "realname_attestations"
    __table_args__ = (
        Index("ix_realname_attestations_seller", "platform", "seller_ref", "id"),
        # The replay guard of platforms' signatures (migration 0033): a (key, nonce) once.
        Index("uq_realname_attestations_signer_nonce", "signer", "nonce", unique=True),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    #: The attesting platform, which is the seller account's platform.
    platform: str = Field(sa_column=Column(String(64), nullable=False))
    #: ``ReferenceKeys.reference_hash(platform, reference)``: what TRANSFERs name it by.
    seller_ref: bytes = Field(sa_column=blob_column())
    #: ``registry.attestations.Level``: 0 none, 1 phone, 2 id-card, 3 face.
    level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    attested_at: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: The ATTESTATION entry that logged it.
    entry_id: int = Field(sa_column=Column(BigInteger, ForeignKey("entries.id"), nullable=False))
    leaf_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    #: The platform key that signed it and its nonce (null for those logged before 0033).
    signer: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


__all__ = ["RealNameAttestationRow"]
