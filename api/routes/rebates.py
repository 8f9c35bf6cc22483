"""Upline rebates (返点, issue 17 item 6): a platform's distributor tree, rebate policies per
product (set by the product's creator or by a platform for its own tree) and the agents'
statements. Platforms use their transfer-scoped key (the tree and the rebates are part of the
sales it reports); creators their signed-in session, as for their distribution policy.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Context, Creator, TransferPlatform
from api.errors import problem_response
from registry.agents import AgentChange, AgentView, payee_of
from registry.eip712 import address_bytes
from registry.errors import InvalidInput
from registry.rebates import CREATOR_SETTER, platform_setter
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
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

router = APIRouter(tags=["rebates"])
logger = logging.getLogger("tracemark.api.rebates")

ProductSlug = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
CreatorAddress = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
PayeeQuery = Annotated[
    str | None,
    Query(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?:[0-9a-f]{64}$", max_length=129),
]
AfterQuery = Annotated[
    str | None,
    Query(
        pattern=r"^[0-9a-f]{64}$",
        description="The hex of the last agent of the previous page; absent for the first",
    ),
]

_CONFLICT = problem_response("The move would close a cycle or make a chain deeper than 16")
_NO_PRODUCT = problem_response("The creator has no such product")
_REFUSED = problem_response("The policy is invalid (invalid-rebate-policy)")


def _agent(view: AgentView) -> dict[str, object]:
    return view.as_dict()


def _change(platform: str, change: AgentChange) -> dict[str, object]:
    def payee(agent: bytes | None) -> str | None:
        return None if agent is None else payee_of(platform, agent)

    return {
        "previous_upline": payee(change.previous_upline),
        "upline": payee(change.upline),
        "at": change.at,
    }


@router.put(
    "/v1/rebates/agents",
    operation_id="place_agents",
    response_model=AgentsOut,
    summary="Place agents of your platform under their uplines (your distributor tree).",
    responses={409: _CONFLICT},
)
def place_agents(body: AgentsIn, ctx: Context, principal: TransferPlatform) -> Response:
    assert principal.platform is not None
    views = ctx.registry.place_agents(
        principal.platform, [(a.agent, a.upline) for a in body.agents]
    )
    logger.info("platform %s placed %d agents", principal.platform, len(views))
    return JSONResponse({"agents": [_agent(v) for v in views]})


@router.get(
    "/v1/rebates/agents",
    operation_id="list_agents",
    response_model=Page[AgentOut],
    summary="Your distributor tree's agents (payees and uplines), in payee order.",
)
def list_agents(
    ctx: Context,
    principal: TransferPlatform,
    after: AfterQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert principal.platform is not None
    views = ctx.registry.agents_page(
        principal.platform, after=None if after is None else bytes.fromhex(after), limit=limit
    )
    last = views[-1].agent.hex() if len(views) == limit else None
    return JSONResponse({"items": [_agent(v) for v in views], "next_cursor": last})


@router.post(
    "/v1/rebates/agents/lookup",
    operation_id="lookup_agent",
    response_model=AgentDetailOut,
    summary="One of your agents by your reference: its payee, uplines and history.",
    responses={404: problem_response("No such agent in your tree")},
)
def lookup_agent(body: AgentLookupIn, ctx: Context, principal: TransferPlatform) -> Response:
    assert principal.platform is not None
    view, chain, history = ctx.registry.agent(principal.platform, body.agent)
    return JSONResponse(
        {
            "agent": _agent(view),
            "uplines": [payee_of(principal.platform, a) for a in chain],
            "history": [_change(principal.platform, c) for c in history],
        }
    )


def _policies(ctx: Context, creator: str, product: str, platform: str | None) -> dict[str, Any]:
    found = ctx.registry.rebate_policies(
        creator=address_bytes(creator), product=product, platform=platform
    )
    mine = found.get(platform_setter(platform)) if platform is not None else None
    theirs = found.get(CREATOR_SETTER)
    return {
        "creator_policy": None if theirs is None else theirs.as_dict(),
        "platform_policy": None if mine is None else mine.as_dict(),
        "applies": "creator" if theirs is not None else "platform" if mine is not None else None,
    }


def _set_policy(
    ctx: Context, creator: str, product: str, setter: str, body: RebatePolicyIn
) -> Response:
    # The creator's routes and a platform's differ only in who sets (CREATOR_SETTER or the
    # platform's setter); the registry checks and stores both the same way.
    policy = ctx.registry.set_rebate_policy(
        creator=address_bytes(creator), product=product, setter=setter, levels=body.levels
    )
    return JSONResponse(policy.as_dict())


def _remove_policy(ctx: Context, creator: str, product: str, setter: str) -> Response:
    ctx.registry.remove_rebate_policy(
        creator=address_bytes(creator), product=product, setter=setter
    )
    return Response(status_code=204)


@router.get(
    "/v1/rebates/policies/{creator}/{product}",
    operation_id="get_rebate_policies",
    response_model=RebatePoliciesOut,
    summary="The creator's and your platform's rebate policies for a product, and which applies.",
    responses={404: _NO_PRODUCT},
)
def get_rebate_policies(
    creator: CreatorAddress, product: ProductSlug, ctx: Context, principal: TransferPlatform
) -> Response:
    assert principal.platform is not None
    return JSONResponse(_policies(ctx, creator, product, principal.platform))


@router.put(
    "/v1/rebates/policies/{creator}/{product}",
    operation_id="set_platform_rebate_policy",
    response_model=RebatePolicyOut,
    summary="Set your platform's rebate policy for a product (sales in your tree; the "
    "creator's own policy, if any, wins).",
    responses={404: _NO_PRODUCT, 422: _REFUSED},
)
def set_platform_rebate_policy(
    creator: CreatorAddress,
    product: ProductSlug,
    body: RebatePolicyIn,
    ctx: Context,
    principal: TransferPlatform,
) -> Response:
    assert principal.platform is not None
    return _set_policy(ctx, creator, product, platform_setter(principal.platform), body)


@router.delete(
    "/v1/rebates/policies/{creator}/{product}",
    operation_id="remove_platform_rebate_policy",
    status_code=204,
    summary="Remove your platform's rebate policy for a product.",
    responses={404: problem_response("No such product, or no policy of yours for it")},
)
def remove_platform_rebate_policy(
    creator: CreatorAddress, product: ProductSlug, ctx: Context, principal: TransferPlatform
) -> Response:
    assert principal.platform is not None
    return _remove_policy(ctx, creator, product, platform_setter(principal.platform))


@router.get(
    "/v1/creators/me/products/{product}/rebates",
    operation_id="get_my_rebate_policy",
    response_model=RebatePoliciesOut,
    summary="Your rebate policy for one of your products (it applies in every platform's tree).",
    responses={404: _NO_PRODUCT},
)
def get_my_rebate_policy(product: ProductSlug, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    return JSONResponse(_policies(ctx, creator.creator, product, None))


@router.put(
    "/v1/creators/me/products/{product}/rebates",
    operation_id="set_my_rebate_policy",
    response_model=RebatePolicyOut,
    summary="Set what each level above the final seller earns on sales of your product.",
    responses={404: _NO_PRODUCT, 422: _REFUSED},
)
def set_my_rebate_policy(
    product: ProductSlug, body: RebatePolicyIn, ctx: Context, creator: Creator
) -> Response:
    assert creator.creator is not None
    answer = _set_policy(ctx, creator.creator, product, CREATOR_SETTER, body)
    logger.info("creator %s set a %d-level rebate policy", creator.creator, len(body.levels))
    return answer


@router.delete(
    "/v1/creators/me/products/{product}/rebates",
    operation_id="remove_my_rebate_policy",
    status_code=204,
    summary="Remove your rebate policy for a product (platforms' own policies then apply).",
    responses={404: problem_response("No such product, or no policy for it")},
)
def remove_my_rebate_policy(product: ProductSlug, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    return _remove_policy(ctx, creator.creator, product, CREATOR_SETTER)


@router.get(
    "/v1/rebates/statement",
    operation_id="get_rebate_statement",
    response_model=AgentStatementOut,
    summary="What your agents are owed (due lines), held and reversed, per agent and period "
    "(JSON or CSV).",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def rebate_statement(
    ctx: Context,
    principal: TransferPlatform,
    payee: PayeeQuery = None,
    since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    until: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    period: Literal["day", "month", "all"] = "month",
    format: Literal["json", "csv"] = "json",
) -> Response:
    assert principal.platform is not None
    end = until if until is not None else ctx.registry.clock() + 1
    if since > end:
        raise InvalidInput("since must not be after until")
    statement = ctx.registry.rebate_statement(
        principal.platform, payee=payee, since=since, until=end, period=period
    )
    if format == "csv":
        return StreamingResponse(
            statement.csv_rows(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="rebates.csv"'},
        )
    return JSONResponse(
        {
            "platform": statement.platform,
            "payee": statement.payee,
            "since": statement.since,
            "until": statement.until,
            "period": statement.period,
            "lines": [
                {
                    "period": line.period,
                    "payee": line.payee,
                    "currency": line.currency,
                    "owed": str(line.due),
                    "held": str(line.held),
                    "reversed": str(line.reversed),
                    "due_lines": line.due_lines,
                    "held_lines": line.held_lines,
                    "reversed_lines": line.reversed_lines,
                }
                for line in statement.lines
            ],
            "totals": statement.totals(),
        }
    )


__all__ = ["router"]
