"""The API's tables: platforms and their API keys, SIWE nonces, idempotent replies, jobs.

Conventions as in ``registry/models.py``: bytes as bytes, times as Unix seconds (BIGINT) from
the registry's injected clock, ``ID_TYPE`` keys, the shared naming convention. The per-request
API-key lookup goes through Core on ``ApiKey.__table__`` (``api/auth.py``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text
from sqlmodel import Field, SQLModel

from registry.models import ID_TYPE

#: Longest platform id (a slug the operator chooses): the width of the registry's
#: ``transfers.platform`` columns, which hold these ids.
PLATFORM_ID_MAX = 64


class Platform(SQLModel, table=True):
    """A partner platform (marketplace, reseller, agent), named by the operator."""

    __tablename__ = "platforms"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)


class ApiKey(SQLModel, table=True):
    """A platform's API key, stored only as the SHA-256 of the whole key (THREATS 37).

    ``prefix`` (``tm_live_`` and the first characters of the key) is what listings show and
    what an operator names a key by; it is not enough to use the key.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("uq_api_keys_key_hash", "key_hash", unique=True),
        Index("ix_api_keys_platform_id", "platform_id"),
        Index("ix_api_keys_prefix", "prefix"),
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    platform_id: str = Field(foreign_key="platforms.id", sa_type=Text)
    prefix: str = Field(sa_column=Column(Text, nullable=False))
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Space-separated, sorted: "transfer verify".
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    label: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)
    revoked_at: int | None = Field(default=None, sa_type=BigInteger)


class SiweNonce(SQLModel, table=True):
    """A Sign-In with Ethereum nonce the registry issued; ``used_at`` is set exactly once."""

    __tablename__ = "siwe_nonces"
    __table_args__ = (Index("ix_siwe_nonces_expires_at", "expires_at"),)

    nonce: str = Field(sa_column=Column(Text, primary_key=True))
    issued_at: int = Field(sa_type=BigInteger)
    expires_at: int = Field(sa_type=BigInteger)
    used_at: int | None = Field(default=None, sa_type=BigInteger)


class IdempotencyKey(SQLModel, table=True):
    """The stored reply to a request sent with an ``Idempotency-Key``, per principal."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)

    principal: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    #: SHA-256 of the request as first sent: a retry must match it (else 422).
    request_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status_code: int = Field(sa_type=Integer)
    body: str = Field(sa_column=Column(Text, nullable=False))
    media_type: str = Field(sa_column=Column(Text, nullable=False))
    created_at: int = Field(sa_type=BigInteger)


class Job(SQLModel, table=True):
    """A long-running request (a bulk upload) that a client polls."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_owner_created_at", "owner", "created_at"),)

    id: str = Field(sa_column=Column(Text, primary_key=True))
    owner: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(sa_column=Column(Text, nullable=False))
    total: int | None = Field(default=None, sa_type=BigInteger)
    processed: int = Field(default=0, sa_type=BigInteger)
    result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


__all__ = ["PLATFORM_ID_MAX", "ApiKey", "IdempotencyKey", "Job", "Platform", "SiweNonce"]
