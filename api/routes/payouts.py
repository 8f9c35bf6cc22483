"""Payouts and balances (issue 17 item 7): a platform records what it paid against the lines
it owes; creators, platforms and their agents read owed, paid and overdue (JSON or CSV).

The rules are ``registry.payouts`` and the reads ``registry.balances``. Platforms use their
transfer-scoped key (a payout is a report about their sales, as orders are); a creator reads
its royalties' balances with its session.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from api.deps import Context, Creator, TransferPlatform
from api.errors import problem_response
from api.pagination import Cursor, decode_cursor, next_cursor
from registry.balances import Balances, BalanceScope
from registry.eip712 import address_bytes, checksum_address
from registry.fingerprints import GoodType, fingerprint_hex
from registry.payouts import PayoutRequest
from registry.statements import Period
from verifier.schemas import DEFAULT_PAGE, MAX_PAGE, Page
from verifier.schemas.payouts import BalancesOut, LineKind, OwedLineOut, Payee, PayoutIn, PayoutOut

router = APIRouter(tags=["payouts"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]
Since = Annotated[int, Query(ge=0, le=2**63 - 1, description="Lines due from (Unix seconds)")]
Until = Annotated[
    int | None, Query(ge=0, le=2**63 - 1, description="Lines due before (default: now)")
]
PeriodQuery = Annotated[Literal["day", "month", "all"], Query(description="Group by")]
Format = Annotated[Literal["json", "csv"], Query(description="JSON or CSV")]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def _answer(balances: Balances, format: str, name: str) -> Response:
    if format == "csv":
        return StreamingResponse(
            balances.csv_rows(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return JSONResponse(balances.as_dict())


def _balances(
    ctx: Context, scope: BalanceScope, since: int, until: int | None, period: Period, format: str
) -> Response:
    end = until if until is not None else ctx.registry.clock() + 1
    found = ctx.registry.balances(scope, since=since, until=end, period=period)
    return _answer(found, format, "balances")


@router.post(
    "/v1/payouts",
    operation_id="record_payout",
    response_model=PayoutOut,
    status_code=201,
    summary="Record a payment your platform made against due royalty or rebate lines it owes.",
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the original payout"},
        409: problem_response(
            "A line is held or reversed (line-not-payable), or already paid by a payout "
            "(line-already-paid): nothing was recorded"
        ),
        422: problem_response(
            "A line is not one your platform owes, is owed to another payee or in another "
            "currency, or the amount is not the lines' exact sum (payout-refused): nothing "
            "was recorded"
        ),
    },
)
def record_payout(
    body: PayoutIn,
    ctx: Context,
    principal: TransferPlatform,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    assert principal.platform is not None
    payout = ctx.registry.record_payout(
        PayoutRequest(
            platform=principal.platform,
            kind=body.kind,
            recipient=None if body.recipient is None else address_bytes(body.recipient),
            payee=body.payee,
            amount=int(body.amount),
            currency=body.currency,
            reference=body.reference,
            paid_at=body.paid_at,
            line_ids=tuple(body.lines),
            idempotency_key=idempotency_key,
        )
    )
    return JSONResponse(payout.as_dict(), status_code=200 if payout.replayed else 201)


@router.get(
    "/v1/payouts/owed",
    operation_id="list_owed_lines",
    response_model=Page[OwedLineOut],
    summary="The due lines your platform owes and has not paid, oldest first (cursor pages).",
)
def list_owed_lines(
    ctx: Context,
    principal: TransferPlatform,
    kind: LineKind | None = None,
    recipient: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
    payee: Annotated[Payee | None, Query()] = None,
    currency: Annotated[str | None, Query(pattern=r"^[0-9]*[A-Z][A-Z0-9]*$", max_length=16)] = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert principal.platform is not None
    lines = ctx.registry.owed_lines(
        principal.platform,
        after=decode_cursor(cursor),
        limit=limit,
        kind=kind,
        recipient=None if recipient is None else address_bytes(recipient),
        payee=payee,
        currency=currency,
    )
    items = [
        {
            "line_id": line.line_id,
            "kind": line.kind,
            "recipient": None if line.recipient is None else checksum_address(line.recipient),
            "payee": line.payee,
            "currency": line.currency,
            "amount": str(line.amount),
            "due_at": line.due_at,
            "order_id": line.order_id,
            "good_type": GoodType(line.good_type).name.lower(),
            "fingerprint": fingerprint_hex(line.fingerprint),
        }
        for line in lines
    ]
    return JSONResponse(
        {"items": items, "next_cursor": next_cursor([line.line_id for line in lines], limit)}
    )


@router.get(
    "/v1/payouts/balances",
    operation_id="get_platform_balances",
    response_model=BalancesOut,
    summary="What your platform owes: owed, paid and overdue per period, payee and currency.",
    responses=_CSV,
)
def platform_balances(
    ctx: Context,
    principal: TransferPlatform,
    kind: LineKind | None = None,
    payee: Annotated[Payee | None, Query()] = None,
    since: Since = 0,
    until: Until = None,
    period: PeriodQuery = "month",
    format: Format = "json",
) -> Response:
    assert principal.platform is not None
    scope = BalanceScope(platform=principal.platform, kind=kind, payee=payee)
    return _balances(ctx, scope, since, until, period, format)


@router.get(
    "/v1/payouts/agent-balances",
    operation_id="get_agent_balances",
    response_model=BalancesOut,
    summary="What your agents are owed in rebates (by any platform): owed, paid, overdue.",
    responses=_CSV,
)
def agent_balances(
    ctx: Context,
    principal: TransferPlatform,
    payee: Annotated[Payee | None, Query(description="One agent only")] = None,
    since: Since = 0,
    until: Until = None,
    period: PeriodQuery = "month",
    format: Format = "json",
) -> Response:
    assert principal.platform is not None
    scope = BalanceScope(agents_of=principal.platform, payee=payee)
    return _balances(ctx, scope, since, until, period, format)


@router.get(
    "/v1/payouts/{payout_id}",
    operation_id="get_payout",
    response_model=PayoutOut,
    summary="One of your platform's payouts, with the lines it paid.",
    responses={404: problem_response("No payout of that id was recorded by your platform")},
)
def get_payout(
    payout_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    ctx: Context,
    principal: TransferPlatform,
) -> Response:
    assert principal.platform is not None
    payout = ctx.registry.payout(payout_id, platform=principal.platform)
    return JSONResponse(payout.as_dict())


@router.get(
    "/v1/creators/me/balances",
    operation_id="get_my_balances",
    response_model=BalancesOut,
    summary="Your royalties: owed, paid and overdue per period, platform and recipient.",
    responses=_CSV,
)
def my_balances(
    ctx: Context,
    creator: Creator,
    since: Since = 0,
    until: Until = None,
    period: PeriodQuery = "month",
    format: Format = "json",
) -> Response:
    assert creator.creator is not None
    scope = BalanceScope(creator=address_bytes(creator.creator))
    return _balances(ctx, scope, since, until, period, format)


__all__ = ["router"]
