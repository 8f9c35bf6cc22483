"""The rebate calls of the client (issue 17 item 6): a platform's distributor tree, rebate
policies (the platform's with its transfer-scoped key, the creator's with its session) and
the agents' statements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

from verifier.creatorcalls import MAX_CSV_BYTES, Period
from verifier.schemas import (
    DEFAULT_PAGE,
    AgentDetailOut,
    AgentLookupIn,
    AgentOut,
    AgentsIn,
    AgentsOut,
    AgentStatementOut,
    Page,
    RebatePoliciesOut,
    RebatePolicyIn,
    RebatePolicyOut,
)
from verifier.transport import RegistryTransport, request_model


class RebateCalls(RegistryTransport):
    """Upline rebates: place agents, set and read policies, read statements."""

    def place_agents(self, placements: Sequence[tuple[str, str | None]]) -> AgentsOut:
        """Put each ``(agent, upline)`` (your references; upline None: a root) in your tree,
        in order, all or nothing. The answer's payees, in the same order, are how lines and
        statements name them."""
        body = request_model(
            AgentsIn,
            {"agents": [{"agent": a, "upline": u} for a, u in placements]},
            "the agents are invalid",
        )
        answer = self._send("PUT", "/v1/rebates/agents", document=body.model_dump(mode="json"))
        return self._model(AgentsOut, answer)

    def agents(self, after: str | None = None, limit: int = DEFAULT_PAGE) -> Page[AgentOut]:
        """A page of your tree's agents; pass the previous page's ``next_cursor`` as ``after``."""
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        return self._model(Page[AgentOut], self._send("GET", "/v1/rebates/agents", params=params))

    def agent(self, reference: str) -> AgentDetailOut:
        """One of your agents by your reference: payee, uplines (nearest first), history."""
        body = request_model(AgentLookupIn, {"agent": reference}, "the reference is invalid")
        return self._post("/v1/rebates/agents/lookup", body.model_dump(), AgentDetailOut)

    def rebate_policies(self, creator: str, product: str) -> RebatePoliciesOut:
        """The creator's and your platform's policies for the product, and which applies."""
        answer = self._send("GET", f"/v1/rebates/policies/{creator}/{product}")
        return self._model(RebatePoliciesOut, answer)

    def set_rebate_policy(
        self, creator: str, product: str, levels: Sequence[int]
    ) -> RebatePolicyOut:
        """Your platform's policy for the product: bps per level above the seller."""
        return self._put_policy(f"/v1/rebates/policies/{creator}/{product}", levels)

    def remove_rebate_policy(self, creator: str, product: str) -> None:
        self._send("DELETE", f"/v1/rebates/policies/{creator}/{product}")

    def my_rebate_policy(self, product: str) -> RebatePoliciesOut:
        """The signed-in creator's policy for its product."""
        answer = self._send("GET", f"/v1/creators/me/products/{product}/rebates")
        return self._model(RebatePoliciesOut, answer)

    def set_my_rebate_policy(self, product: str, levels: Sequence[int]) -> RebatePolicyOut:
        """The signed-in creator's policy for its product (wins over platforms' own)."""
        return self._put_policy(f"/v1/creators/me/products/{product}/rebates", levels)

    def _put_policy(self, path: str, levels: Sequence[int]) -> RebatePolicyOut:
        # A platform's policy and a creator's are the same body under two paths.
        body = request_model(RebatePolicyIn, {"levels": list(levels)}, "the levels are invalid")
        return self._model(RebatePolicyOut, self._send("PUT", path, document=body.model_dump()))

    def remove_my_rebate_policy(self, product: str) -> None:
        self._send("DELETE", f"/v1/creators/me/products/{product}/rebates")

    @overload
    def rebate_statement(
        self,
        *,
        payee: str | None = None,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["json"] = "json",
    ) -> AgentStatementOut: ...

    @overload
    def rebate_statement(
        self,
        *,
        payee: str | None = None,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["csv"],
    ) -> str: ...

    def rebate_statement(
        self,
        *,
        payee: str | None = None,
        since: int = 0,
        until: int | None = None,
        period: Period = "month",
        format: Literal["json", "csv"] = "json",
    ) -> AgentStatementOut | str:
        """Your agents' rebates (or one ``payee``'s): owed (due lines), held and reversed, per
        period; the CSV text with ``format="csv"``."""
        params: dict[str, str | int] = {"since": since, "period": period, "format": format}
        if until is not None:
            params["until"] = until
        if payee is not None:
            params["payee"] = payee
        if format == "csv":
            answer = self._send("GET", "/v1/rebates/statement", params=params, limit=MAX_CSV_BYTES)
            return answer.body.decode("utf-8")
        return self._model(
            AgentStatementOut, self._send("GET", "/v1/rebates/statement", params=params)
        )


__all__ = ["RebateCalls"]
