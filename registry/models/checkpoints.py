"""The log's checkpoints (C2SP) and what each witness last cosigned for it (issue 15)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, Text
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column


class CheckpointRecord(SQLModel, table=True):
    """The checkpoint of a signed tree head: signed in the head's transaction, published once
    the witness quorum cosigned it (at once when no witness policy is configured)."""

    __tablename__ = "checkpoints"

    tree_size: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("tree_heads.tree_size"),
            primary_key=True,
            autoincrement=False,
        )
    )
    #: The note as the log signed it (``Note.to_bytes()``, the log's lines only).
    note: bytes = Field(sa_column=blob_column())
    #: The witnesses' cosignature lines that reached the quorum (NULL: none kept).
    cosignatures: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    signed_at: int = Field(sa_type=BigInteger)
    #: When it was published (served, anchored); NULL until the witness quorum is reached.
    published_at: int | None = Field(default=None, sa_type=BigInteger)


class CheckpointWitness(SQLModel, table=True):
    """A witness the registry asks, by its key (name and key id): the size it last cosigned
    (the ``old`` line of the next request) and its failures (the alarm, ``/readyz``)."""

    __tablename__ = "checkpoint_witnesses"

    key_name: str = Field(sa_column=Column(Text, primary_key=True))
    key_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    #: The size of the latest checkpoint it cosigned for this log (0: never).
    tree_size: int = Field(default=0, sa_type=BigInteger)
    cosigned_at: int | None = Field(default=None, sa_type=BigInteger)
    #: Failures since its last cosignature (0 when it answered the last request).
    failures: int = Field(default=0, sa_type=Integer)
    #: Every failure ever counted (a counter for dashboards).
    total_failures: int = Field(default=0, sa_type=BigInteger)
    last_error: str | None = Field(default=None, sa_type=Text)
    failed_at: int | None = Field(default=None, sa_type=BigInteger)


__all__ = ["CheckpointRecord", "CheckpointWitness"]
