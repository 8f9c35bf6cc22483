"""The registry's rebate use cases (issue 17 item 6), mixed into ``registry.service.Registry``.

Each method owns its transaction (STYLE 8); the rules are ``registry.agents`` (the tree),
``registry.rebates`` (policies, the rebates of a sale) and ``registry.rebatestatements``.
References arrive in clear from the platform and are hashed here under its key at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from registry import agents, rebates
from registry.db import read_transaction, write_transaction
from registry.errors import InvalidInput, NotFound
from registry.parties import MAX_REFERENCE_LENGTH, ReferenceKeys, check_platform_id
from registry.rebates import CREATOR_SETTER, RebatePolicyView, platform_setter
from registry.rebatestatements import AgentStatement, agent_statement
from registry.statements import Period


class UnknownAgent(NotFound):
    """No agent with that reference in the platform's tree (404)."""

    code = "unknown-agent"


class NoRebatePolicy(NotFound):
    """No rebate policy by that setter for that product (404)."""

    code = "no-rebate-policy"


def _reference(reference: str) -> str:
    if not isinstance(reference, str) or not 1 <= len(reference) <= MAX_REFERENCE_LENGTH:
        raise InvalidInput(f"a reference is 1 to {MAX_REFERENCE_LENGTH} characters")
    return reference


class RebateDesk:
    """Place agents, set rebate policies, read statements."""

    # Provided by ``Registry``.
    engine: Engine
    clock: Callable[[], int]
    _reference_keys: ReferenceKeys

    def _agent_hash(self, platform: str, reference: str) -> bytes:
        return self._reference_keys.reference_hash(platform, _reference(reference))

    def place_agents(
        self, platform: str, moves: Sequence[tuple[str, str | None]]
    ) -> list[agents.AgentView]:
        """Put each agent (a reference on ``platform``) under its upline (None: a root), in
        order and all or nothing; ``AgentCycle`` / ``TreeTooDeep`` (409) change nothing."""
        check_platform_id(platform)
        hashed = [
            (self._agent_hash(platform, a), None if u is None else self._agent_hash(platform, u))
            for a, u in moves
        ]
        with write_transaction(self.engine) as conn:
            return agents.set_uplines(conn, platform, hashed, now=self.clock())

    def agent(
        self, platform: str, reference: str
    ) -> tuple[agents.AgentView, list[bytes], list[agents.AgentChange]]:
        """The agent, its uplines nearest first and its history; ``UnknownAgent`` if none."""
        check_platform_id(platform)
        agent = self._agent_hash(platform, reference)
        with read_transaction(self.engine) as conn:
            view = agents.agent_view(conn, platform, agent)
            if view is None:
                raise UnknownAgent(f"platform {platform} has no such agent in its tree")
            return (
                view,
                agents.uplines(conn, platform, agent),
                agents.agent_history(conn, platform, agent),
            )

    def agents_page(
        self, platform: str, *, after: bytes | None, limit: int
    ) -> list[agents.AgentView]:
        with read_transaction(self.engine) as conn:
            return agents.list_agents(conn, platform, after=after, limit=limit)

    def set_rebate_policy(
        self, *, creator: bytes, product: str, setter: str, levels: object
    ) -> RebatePolicyView:
        with write_transaction(self.engine) as conn:
            return rebates.set_policy(
                conn,
                creator=creator,
                product=product,
                setter=setter,
                levels=levels,
                now=self.clock(),
            )

    def remove_rebate_policy(self, *, creator: bytes, product: str, setter: str) -> None:
        with write_transaction(self.engine) as conn:
            if not rebates.remove_policy(conn, creator=creator, product=product, setter=setter):
                raise NoRebatePolicy(f"no rebate policy by {setter} for product {product!r}")

    def rebate_policies(
        self, *, creator: bytes, product: str, platform: str | None
    ) -> dict[str, RebatePolicyView]:
        """The creator's policy for the product, and ``platform``'s own if one is named."""
        setters = (
            (CREATOR_SETTER,)
            if platform is None
            else (
                CREATOR_SETTER,
                platform_setter(platform),
            )
        )
        with read_transaction(self.engine) as conn:
            return rebates.policies(conn, creator=creator, product=product, setters=setters)

    def rebate_statement(
        self, platform: str, *, payee: str | None, since: int, until: int, period: Period
    ) -> AgentStatement:
        with read_transaction(self.engine) as conn:
            return agent_statement(
                conn, platform, payee=payee, since=since, until=until, period=period
            )


__all__ = ["NoRebatePolicy", "RebateDesk", "UnknownAgent"]
