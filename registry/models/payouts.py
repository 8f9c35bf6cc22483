"""Payouts (issue 17 item 7): what a platform paid against the lines it owes, and for which."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class Payout(SQLModel, table=True):
    """One payment a platform reports having made to one payee: a royalty ``recipient`` (an
    address) or a rebate ``payee`` (an agent), in one currency, against ``due`` lines of
    ``royalty_lines`` it owes (``payout_lines``), whose amounts add up to ``amount`` exactly.

    ``reference`` is the platform's own payment reference (a bank or chain transaction id),
    kept as given. UNIQUE (platform, idempotency_key): a retried report records once.
    """

    __tablename__ = "payouts"
    __table_args__ = (
        Index("uq_payouts_platform_idempotency_key", "platform", "idempotency_key", unique=True),
        Index("ix_payouts_platform_id", "platform", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    #: The platform that paid (an API key's platform id): the lines' ``platform``.
    platform: str = Field(max_length=64)
    #: ``royalty`` (to ``recipient``) or ``rebate`` (to ``payee``), as the lines' ``kind``.
    kind: str = Field(max_length=16)
    recipient: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    payee: str | None = Field(default=None, max_length=160)
    #: Integer minor units as decimal text, as the lines' amounts.
    amount: str = Field(max_length=80)
    currency: str = Field(max_length=16)
    reference: str = Field(max_length=128)
    #: When the platform says it paid; ``created_at``: when it told the registry.
    paid_at: int = Field(sa_type=BigInteger)
    created_at: int = Field(sa_type=BigInteger)
    line_count: int = Field(sa_type=Integer)
    idempotency_key: str | None = Field(default=None, max_length=128)
    #: SHA-256 of the request, to tell a retry from a reused key.
    request_hash: bytes = Field(sa_column=blob_column())


class PayoutLine(SQLModel, table=True):
    """A line a payout paid. The line is the primary key: a line is paid once, in full, even
    by two payouts racing for it (the second's INSERT fails)."""

    __tablename__ = "payout_lines"
    __table_args__ = (Index("ix_payout_lines_payout_id", "payout_id"),)

    line_id: int = Field(
        sa_column=Column(
            BigInteger, ForeignKey("royalty_lines.id"), primary_key=True, autoincrement=False
        )
    )
    payout_id: int = Field(sa_type=BigInteger, foreign_key="payouts.id")


__all__ = ["Payout", "PayoutLine"]
