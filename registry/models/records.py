"""Signed records and what they enrol: signed messages, products, code keys, registry keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class SignedRecord(SQLModel, table=True):
    """One EIP-712 message a creator signed, with the domain it was signed under.

    UNIQUE (signer, nonce) is the replay guard (THREATS 17): nonce consumption and the
    entries it creates commit in one transaction, so of two concurrent submissions of the
    same nonce exactly one wins.
    """

    __tablename__ = "signed_records"
    __table_args__ = (Index("uq_signed_records_signer_nonce", "signer", "nonce", unique=True),)

    id: int | None = Field(default=None, sa_column=id_column())
    primary_type: str = Field(max_length=32)
    signer: bytes = Field(sa_column=blob_column())
    nonce: int = Field(sa_type=BigInteger)
    deadline: int = Field(sa_type=BigInteger)
    #: The canonical (RFC 8785) JSON document whose SHA-256 is the entries' payload hash:
    #: the signed message, the signature, the domain and the public documents (policy,
    #: metadata) that travel with it.
    payload: str = Field(sa_column=Column(Text, nullable=False))
    payload_hash: bytes = Field(sa_column=blob_column())
    created_at: datetime


class Product(SQLModel, table=True):
    """A creator's product line (creator, slug), e.g. a game's "30-day card"."""

    __tablename__ = "products"
    __table_args__ = (Index("uq_products_creator_slug", "creator", "slug", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    creator: bytes = Field(sa_column=blob_column())
    slug: str = Field(max_length=64)
    use: int = Field(sa_type=SmallInteger)
    first_record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    created_at: datetime
    #: The value printed on the card, in minor units of ``face_currency`` (migration 0028),
    #: the current one: every setting is kept in ``face_value_history`` (migration 0034), which
    #: the ``below-face-value`` laundering rule judges each sale by. Optional.
    face_value: int | None = Field(default=None, sa_type=BigInteger)
    face_currency: str | None = Field(default=None, max_length=16)


class CodeKey(SQLModel, table=True):
    """A creator's enrolled code key, AES-GCM encrypted under the master key.

    A creator may hold several (rotation, migration 0015): the newest live one is its
    current key, and a code lookup tries every live one. A retired key's row stays (its
    commitment and enrolment record are provenance) but its ``sealed_key`` is emptied.
    """

    __tablename__ = "code_keys"

    creator: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    key_commitment: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    #: 12-byte nonce || ciphertext || 16-byte tag; associated data binds it to the creator.
    #: Empty once the key is retired.
    sealed_key: bytes = Field(sa_column=blob_column())
    record_id: int = Field(sa_type=BigInteger, foreign_key="signed_records.id")
    created_at: datetime
    retired_at: datetime | None = None


class RegistryKey(SQLModel, table=True):
    """A key that signs (or signed) the registry's tree heads, with the sizes it covers.

    The first key signs heads from size 1; a hand-over at size N (a KEY_HANDOVER entry, the
    outgoing key's ``KeyHandover(newKey, treeSize=N)`` signature) ends it: heads of size < N
    verify under the old key, heads of size >= N only under the new one. The current key is
    the row whose ``until_size`` is NULL; the trust root the registry serves lists them all.
    """

    __tablename__ = "registry_keys"
    __table_args__ = (Index("uq_registry_keys_address", "address", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    address: bytes = Field(sa_column=blob_column())
    from_size: int = Field(sa_type=BigInteger)
    until_size: int | None = Field(default=None, sa_type=BigInteger)
    #: The outgoing key's EIP-712 ``KeyHandover`` signature (None for the first key).
    handover_signature: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    created_at: datetime


__all__ = [
    "CodeKey",
    "Product",
    "RegistryKey",
    "SignedRecord",
]
