"""A signed-in creator's own account (Sign-In with Ethereum session): code keys, first-hand
distribution, goods and royalty statements."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Context, Creator
from api.pagination import Cursor, decode_cursor, next_cursor
from registry.eip712 import address_bytes
from registry.fingerprints import fingerprint_hex
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    CodeKeysOut,
    DistributionIn,
    DistributionOut,
    GoodOut,
    Page,
    StatementOut,
)

router = APIRouter(tags=["creators"])
logger = logging.getLogger("tracemark.api.creators")


@router.get(
    "/v1/creators/me/code-keys",
    operation_id="list_my_code_keys",
    response_model=CodeKeysOut,
    summary="Your code keys (ids and dates, never a key), newest first; retired ones too.",
)
def list_my_code_keys(ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    keys = ctx.registry.code_keys_info(address_bytes(creator.creator))
    current = next((k.kid for k in keys if k.retired_at is None), None)
    items = [
        {
            "kid": k.kid,
            "key_commitment": "0x" + k.key_commitment.hex(),
            "created_at": k.created_at,
            "retired_at": k.retired_at,
            "current": k.kid == current,
        }
        for k in keys
    ]
    return JSONResponse({"creator": creator.creator, "keys": items})


@router.get(
    "/v1/creators/me/distribution",
    operation_id="get_my_distribution",
    response_model=DistributionOut,
    summary="Who may sell your goods first-hand: anyone, or only your named distributors.",
)
def get_my_distribution(ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    policy = ctx.registry.distribution(address_bytes(creator.creator))
    return JSONResponse(policy.as_dict())


@router.put(
    "/v1/creators/me/distribution",
    operation_id="set_my_distribution",
    response_model=DistributionOut,
    summary="Restrict first-hand sales of your goods to named platforms, or open them again.",
)
def set_my_distribution(body: DistributionIn, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    policy = ctx.registry.set_distribution(
        address_bytes(creator.creator), restricted=body.restricted, platforms=body.platforms
    )
    logger.info(
        "creator %s set first-hand distribution to %s (%d platforms)",
        creator.creator,
        "restricted" if policy.restricted else "open",
        len(policy.platforms),
    )
    return JSONResponse(policy.as_dict())


@router.get(
    "/v1/creators/me/goods",
    operation_id="list_my_goods",
    response_model=Page[GoodOut],
    summary="Your registered goods, oldest first (cursor-paginated).",
)
def list_my_goods(
    ctx: Context,
    creator: Creator,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert creator.creator is not None
    goods = ctx.registry.goods_of(
        address_bytes(creator.creator), after=decode_cursor(cursor), limit=limit
    )
    items = [
        {
            "good_type": g.good_type.name.lower(),
            "fingerprint": fingerprint_hex(g.fingerprint),
            "product": g.product,
            "leaf_index": g.leaf_index,
            "registered_at": g.registered_at,
            "batch_position": g.batch_position,
        }
        for g in goods
    ]
    return JSONResponse(
        {"items": items, "next_cursor": next_cursor([g.entry_id for g in goods], limit)}
    )


@router.get(
    "/v1/creators/me/royalties",
    operation_id="get_my_royalty_statement",
    response_model=StatementOut,
    summary="Royalties owed on your goods, per good, platform and period (JSON or CSV).",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def royalty_statement(
    ctx: Context,
    creator: Creator,
    since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    until: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    period: Literal["day", "month", "all"] = "month",
    format: Literal["json", "csv"] = "json",
) -> Response:
    assert creator.creator is not None
    end = until if until is not None else ctx.registry.clock() + 1
    statement = ctx.registry.royalty_statement(
        address_bytes(creator.creator), since=since, until=end, period=period
    )
    if format == "csv":
        return StreamingResponse(
            statement.csv_rows(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="royalties.csv"'},
        )
    return JSONResponse(
        {
            "creator": statement.creator,
            "since": statement.since,
            "until": statement.until,
            "period": statement.period,
            "lines": [
                {
                    "period": line.period,
                    "good_type": line.good_type,
                    "fingerprint": line.fingerprint,
                    "platform": line.platform,
                    "recipient": line.recipient,
                    "currency": line.currency,
                    "amount": str(line.amount),
                    "transfers": line.transfers,
                }
                for line in statement.lines
            ],
            "totals": statement.totals(),
            "held": statement.held,
        }
    )


__all__ = ["router"]
