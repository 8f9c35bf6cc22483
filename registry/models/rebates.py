"""Upline rebates (issue 17 item 6): platforms' distributor trees and rebate policies."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String
from sqlmodel import Field, SQLModel

from registry.models.columns import blob_column, id_column


class RebateTree(SQLModel, table=True):
    """One row per platform that keeps a distributor tree: every change of the tree locks
    it first, so two changes racing (A under B, B under A) are serial and no cycle slips in."""

    __tablename__ = "rebate_trees"

    platform: str = Field(sa_column=Column(String(64), primary_key=True))
    agents: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


class RebateAgent(SQLModel, table=True):
    """An agent (a sub-site, an agent tier) of a platform and its upline, now.

    ``agent`` and ``upline`` are keyed hashes of the platform's references
    (``registry.parties.ReferenceKeys``), the same hash an order names its seller by; the
    registry never holds a reference in clear. ``upline`` NULL: a root (the top of a chain).
    """

    __tablename__ = "rebate_agents"
    __table_args__ = (Index("ix_rebate_agents_platform_upline", "platform", "upline"),)

    platform: str = Field(sa_column=Column(String(64), primary_key=True))
    agent: bytes = Field(sa_column=Column(LargeBinary, primary_key=True))
    upline: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    created_at: int = Field(sa_type=BigInteger)
    updated_at: int = Field(sa_type=BigInteger)


class RebateAgentChange(SQLModel, table=True):
    """Every change of an agent's upline, with its time: the tree's history (append-only)."""

    __tablename__ = "rebate_agent_changes"
    __table_args__ = (
        Index("ix_rebate_agent_changes_platform_agent_id", "platform", "agent", "id"),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    platform: str = Field(max_length=64)
    agent: bytes = Field(sa_column=blob_column())
    #: The upline before the change (NULL: a root, or the agent was new) and after it.
    previous_upline: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    upline: bytes | None = Field(default=None, sa_column=blob_column(nullable=True))
    at: int = Field(sa_type=BigInteger)


class RebatePolicy(SQLModel, table=True):
    """What each level above the final seller earns on a sale of a product, in bps.

    ``setter`` is ``creator`` (the product's creator, for every platform's tree) or
    ``platform:<id>`` (that platform, for sales in its own tree). UNIQUE (product, setter):
    one policy per setter and product. ``levels``: bps of level 1, 2, ..., space-separated.
    """

    __tablename__ = "rebate_policies"
    __table_args__ = (
        Index("uq_rebate_policies_product_id_setter", "product_id", "setter", unique=True),
    )

    id: int | None = Field(default=None, sa_column=id_column())
    product_id: int = Field(foreign_key="products.id")
    setter: str = Field(max_length=80)
    levels: str = Field(max_length=128)
    updated_at: int = Field(sa_type=BigInteger)


__all__ = ["RebateAgent", "RebateAgentChange", "RebatePolicy", "RebateTree"]
