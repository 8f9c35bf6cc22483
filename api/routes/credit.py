"""Credit scores (信用分, issue 18 item 1): a platform's, and a seller's on a platform.

Public like a verify answer (a market's buyers choose sellers by them): any caller, within
its rate limits. Each answer carries its inputs, the formula's version and the time it was
read as of, so anyone can recompute it (``registry.credit``; from an evidence export with
``tracemark credit recompute``). A seller is named by its keyed reference hash, the form
evidence exports carry; the reference itself is never asked for or shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.apikeys import parse_platform_id
from api.deps import Caller, Context
from registry.creditfacts import read_credit
from registry.creditscores import REFRESH_EVERY, read_platform_scores
from registry.db import read_transaction
from registry.service import Registry
from verifier.schemas.credit import CreditOut, PlatformCreditsOut

router = APIRouter(tags=["credit"])

PlatformId = Annotated[str, Path(max_length=64)]
SellerHash = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$")]


def _credit(registry: Registry, platform: str, seller_ref: bytes | None) -> dict[str, object]:
    with read_transaction(registry.engine) as conn:
        return read_credit(
            conn,
            platform,
            seller_ref,
            as_of=registry.clock(),
            overdue_after=registry.payout_overdue_seconds,
        )


def _platform_scores(registry: Registry) -> dict[str, object]:
    with read_transaction(registry.engine) as conn:
        return {"items": read_platform_scores(conn), "refreshed_every": REFRESH_EVERY}


@router.get(
    "/v1/credit/platforms",
    operation_id="list_platform_credit",
    response_model=PlatformCreditsOut,
    summary="Every platform's credit score as last refreshed (each with its inputs, as_of).",
)
async def platform_credits(ctx: Context, caller: Caller) -> JSONResponse:
    # The kept scores (registry.creditscores), not an aggregate per platform per request.
    document = await run_in_threadpool(_platform_scores, ctx.registry)
    return JSONResponse(PlatformCreditsOut.model_validate(document).model_dump(mode="json"))


@router.get(
    "/v1/credit/platforms/{platform}",
    operation_id="get_platform_credit",
    response_model=CreditOut,
    summary="A platform's credit score (credit/v2), with its inputs, to recompute.",
)
async def platform_credit(platform: PlatformId, ctx: Context, caller: Caller) -> JSONResponse:
    document = await run_in_threadpool(_credit, ctx.registry, parse_platform_id(platform), None)
    return JSONResponse(CreditOut.model_validate(document).model_dump(mode="json"))


@router.get(
    "/v1/credit/platforms/{platform}/sellers/{seller}",
    operation_id="get_seller_credit",
    response_model=CreditOut,
    summary="A seller's credit score on a platform, by its keyed reference hash.",
)
async def seller_credit(
    platform: PlatformId, seller: SellerHash, ctx: Context, caller: Caller
) -> JSONResponse:
    document = await run_in_threadpool(
        _credit, ctx.registry, parse_platform_id(platform), bytes.fromhex(seller[2:])
    )
    return JSONResponse(CreditOut.model_validate(document).model_dump(mode="json"))


__all__ = ["router"]
