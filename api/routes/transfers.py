"""A platform's transfers: report a hand-over or sale, consent to a hand-over, read receipts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from api.deps import GOOD_TYPES, Context, TransferPlatform
from api.errors import problem_response
from api.pagination import Cursor, decode_cursor, next_cursor
from api.receipts import handover_out, receipt_out
from api.tlogproofs import tlog_proof_response
from readmodels.tlogproofs import build_leaf_tlog_proof
from registry.edges import HASH32_PATTERN
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import parse_fingerprint
from registry.handover import HandoverRequest
from registry.transferrequests import Party, TransferRequest
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    GoodTypeName,
    HandoverIn,
    HandoverOut,
    Page,
    PartyIn,
    ReceiptOut,
    TransferIn,
)

router = APIRouter(tags=["platforms"])


def _party(value: PartyIn, default_platform: str, role: str, *, authorized: bool = False) -> Party:
    if value.creator:
        if value.platform is not None or value.reference is not None:
            raise InvalidInput(f"{role}: the creator is named by creator=true alone")
        return Party(None, None)
    if value.reference is None and not (authorized and value.platform is not None):
        # A seller named by a hand-over authorization may be its platform alone: the buying
        # platform need not learn the holder's reference.
        raise InvalidInput(f"{role}: give a reference (or creator=true)")
    return Party(value.platform or default_platform, value.reference)


@router.post(
    "/v1/transfers",
    operation_id="record_transfer",
    response_model=ReceiptOut,
    status_code=201,
    summary="Report a hand-over or sale; get the royalty split and a signed receipt.",
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the original receipt"},
        403: problem_response(
            "The seller is on another platform that did not consent (not-the-holder), or the "
            "hand-over authorization is unknown, used, expired or not for this sale"
        ),
        409: problem_response("Double sale (the seller is not the holder), revoked or consumed"),
    },
)
def record_transfer(
    body: TransferIn,
    ctx: Context,
    principal: TransferPlatform,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
    ] = None,
) -> Response:
    assert principal.platform is not None
    request = TransferRequest(
        platform=principal.platform,
        good_type=GOOD_TYPES[body.good_type],
        fingerprint=parse_fingerprint(body.fingerprint),
        seller=_party(
            body.seller, principal.platform, "seller", authorized=body.authorization is not None
        ),
        buyer=_party(body.buyer, principal.platform, "buyer"),
        price=None if body.price is None else int(body.price),
        currency=body.currency,
        final=body.final,
        idempotency_key=idempotency_key,
        authorization=body.authorization,
    )
    receipt = ctx.registry.transfer(request)
    return JSONResponse(receipt_out(receipt), status_code=200 if receipt.replayed else 201)


@router.post(
    "/v1/transfers/authorizations",
    operation_id="authorize_handover",
    response_model=HandoverOut,
    status_code=201,
    summary="Consent, once, that another platform may move a good your platform holds.",
    responses={
        403: problem_response("Your platform does not hold the good under that reference"),
    },
)
def authorize_handover(
    body: HandoverIn,
    ctx: Context,
    principal: TransferPlatform,
) -> Response:
    assert principal.platform is not None
    issued = ctx.registry.authorize_handover(
        HandoverRequest(
            platform=principal.platform,
            good_type=GOOD_TYPES[body.good_type],
            fingerprint=parse_fingerprint(body.fingerprint),
            reference=body.reference,
            buyer_platform=body.buyer_platform,
            seconds=body.expires_in,
        )
    )
    # NOTE: the token is in this answer only; only its hash is stored, and it is never logged.
    return JSONResponse(
        handover_out(issued), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/v1/transfers/{transfer_id}",
    operation_id="get_transfer",
    response_model=ReceiptOut,
    summary="One of your platform's transfers, as its receipt.",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def get_transfer(
    transfer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    ctx: Context,
    principal: TransferPlatform,
    receipt_format: Annotated[
        Literal["receipt", "tlog-proof"],
        Query(
            alias="format",
            description="receipt (JSON), or tlog-proof: its TRANSFER entry as a "
            "c2sp.org/tlog-proof@v1 text file, checked by `tracemark verify`.",
        ),
    ] = "receipt",
) -> Response:
    try:
        receipt = ctx.registry.receipt(transfer_id)
    except NotFound:
        receipt = None
    if receipt is None or receipt.platform != principal.platform:
        # The same answer for "not yours" and "does not exist" (THREATS 36).
        raise NotFound(f"no transfer {transfer_id} of yours")
    if receipt_format == "tlog-proof":
        proof = build_leaf_tlog_proof(ctx.registry, receipt.leaf_index)
        return tlog_proof_response(proof, f"transfer-{transfer_id}")
    return JSONResponse(receipt_out(receipt))


@router.get(
    "/v1/transfers",
    operation_id="list_transfers",
    response_model=Page[ReceiptOut],
    summary="Your platform's transfers, oldest first (cursor-paginated).",
)
def list_transfers(
    ctx: Context,
    principal: TransferPlatform,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    good_type: GoodTypeName | None = None,
    fingerprint: Annotated[str | None, Query(pattern=HASH32_PATTERN)] = None,
) -> Response:
    assert principal.platform is not None
    after = decode_cursor(cursor)
    good = None
    if fingerprint is not None:
        if good_type is None:
            raise InvalidInput("filtering by fingerprint needs good_type too")
        good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    ids = ctx.registry.transfer_ids(principal.platform, after=after, limit=limit, good=good)
    items = [receipt_out(ctx.registry.receipt(i)) for i in ids]
    return JSONResponse({"items": items, "next_cursor": next_cursor(ids, limit)})


__all__ = ["router"]
