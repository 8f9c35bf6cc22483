"""Upline rebates (issue 17 item 6): a platform's distributor tree, rebate policies per
product, and the agents' statements. Agents travel as references in requests (hashed by the
registry at once, never kept) and as payees ``<platform>:<64 hex>`` in answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from registry.edges import AddressText
from verifier.schemas.fields import Amount, Reference, Slug, Strict

#: How a line names an agent: its platform and the hex of the keyed hash of its reference.
Payee = Annotated[
    str,
    StringConstraints(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?:[0-9a-f]{64}$", max_length=129
    ),
]
Levels = Annotated[list[Annotated[int, Field(ge=1, le=10_000)]], Field(min_length=1, max_length=16)]


class AgentPlacementIn(Strict):
    #: Your reference to the agent (a sub-site's or agent's account on your platform).
    agent: Reference
    #: Your reference to its upline; null makes it a root. An upline not yet placed is
    #: added as a root.
    upline: Reference | None


class AgentsIn(Strict):
    """Agents to place, in order, all or nothing: a cycle or a chain deeper than 16 is a
    409 that changes nothing."""

    agents: list[AgentPlacementIn] = Field(min_length=1, max_length=1000)


class AgentOut(Strict):
    payee: Payee
    upline: Payee | None
    #: Number of uplines above the agent (null in listings, where it is not computed).
    depth: int | None
    created_at: int
    updated_at: int


class AgentsOut(Strict):
    #: The agents placed, in the request's order: map each payee to your own account.
    agents: list[AgentOut]


class AgentLookupIn(Strict):
    agent: Reference


class AgentChangeOut(Strict):
    previous_upline: Payee | None
    upline: Payee | None
    at: int


class AgentDetailOut(Strict):
    agent: AgentOut
    #: Its uplines, nearest (level 1) first.
    uplines: list[Payee]
    #: Every change of its upline, oldest first.
    history: list[AgentChangeOut]


class RebatePolicyIn(Strict):
    """The bps of the price each level above the final seller earns: level 1 (the seller's
    upline) first; 1-16 levels of 1-10,000 bps, together at most 10,000."""

    levels: Levels


class RebatePolicyOut(Strict):
    creator: AddressText
    product: Slug
    #: ``creator`` or ``platform:<id>``.
    setter: str
    levels: list[int]
    total_bps: int
    #: From this price (minor units) no level's part can round to zero.
    min_price: Amount
    updated_at: int


class RebatePoliciesOut(Strict):
    creator_policy: RebatePolicyOut | None
    #: Your platform's own policy for the product (platform routes only).
    platform_policy: RebatePolicyOut | None
    #: Which applies to sales in your tree: the creator's wins when both exist.
    applies: Literal["creator", "platform"] | None


class AgentStatementLineOut(Strict):
    period: str
    payee: Payee
    currency: str
    #: The due lines only: what is owed.
    owed: Amount
    #: Lines of orders not yet standing (not owed yet) and lines a refund reversed (never).
    held: Amount
    reversed: Amount
    due_lines: int
    held_lines: int
    reversed_lines: int


class AgentStatementTotalOut(Strict):
    payee: Payee
    currency: str
    owed: Amount
    held: Amount
    reversed: Amount


class AgentStatementOut(Strict):
    platform: str
    payee: Payee | None
    since: int
    until: int
    period: Literal["day", "month", "all"]
    lines: list[AgentStatementLineOut]
    totals: list[AgentStatementTotalOut]


__all__ = [
    "AgentChangeOut",
    "AgentDetailOut",
    "AgentLookupIn",
    "AgentOut",
    "AgentPlacementIn",
    "AgentStatementLineOut",
    "AgentStatementOut",
    "AgentStatementTotalOut",
    "AgentsIn",
    "AgentsOut",
    "Payee",
    "RebatePoliciesOut",
    "RebatePolicyIn",
    "RebatePolicyOut",
]
