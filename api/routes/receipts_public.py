"""The buyer's delivery receipt (issue 17 item 3): the platform's copy, the public copy its
short link names, and the public page's check of a code against it.

- ``GET /v1/orders/{id}/receipt``: the order's platform (transfer scope), as the deliver
  answer gave it.
- ``GET /v1/receipts/{receipt_id}``: anyone holding the link; the id (128 random bits) is
  the capability, not the order id.
- ``POST /v1/receipts/{receipt_id}/check``: is this code the delivered good? The code travels
  in the body only (never a URL), is hashed under the creator's live code keys as a verify
  hashes it, and is never stored, logged or echoed. It costs exactly what an anonymous code
  lookup costs (``api.routes.verify``): a proof of work bound to the code (the very binding
  a public lookup of that code under the receipt's creator carries: ``api.pow``), the
  address's ``code_lookup`` budget, everyone's ``code_lookup_all``, the per-code limit, and
  a failed-probe charge for a code that is not the delivered one. The answer is match or no
  match, nothing more (not whether the code is another good).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from api import pow, ratelimit
from api.context import ApiContext
from api.deps import Caller, Context, TransferPlatform
from api.errors import problem_response
from api.pow import POW_HEADER, ProofOfWorkRequired
from api.receipts import delivery_receipt_out
from registry.deliveryreceipt import RECEIPT_ID_PATTERN, DeliveryReceipt
from verifier.schemas.deliveryreceipts import DeliveryReceiptOut, ReceiptCheckIn, ReceiptCheckOut

router = APIRouter(tags=["receipts"])

ReceiptId = Annotated[str, Path(pattern=RECEIPT_ID_PATTERN)]
_UNKNOWN = problem_response("No receipt of that id")


@router.get(
    "/v1/orders/{order_id}/receipt",
    operation_id="get_delivery_receipt",
    response_model=DeliveryReceiptOut,
    summary="The buyer's signed delivery receipt of a delivered order (its short link, QR).",
    responses={404: problem_response("No delivered order of that id was opened by you")},
)
def order_receipt(
    order_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    ctx: Context,
    principal: TransferPlatform,
    request: Request,
) -> Response:
    assert principal.platform is not None
    receipt = ctx.registry.delivery_receipt(order_id, platform=principal.platform)
    return JSONResponse(delivery_receipt_out(receipt, str(request.base_url)))


@router.get(
    "/v1/receipts/{receipt_id}",
    operation_id="get_receipt",
    response_model=DeliveryReceiptOut,
    summary="A delivery receipt by its short link's id (public: the id is the capability).",
    responses={404: _UNKNOWN},
)
def public_receipt(
    receipt_id: ReceiptId, ctx: Context, principal: Caller, request: Request
) -> Response:
    receipt = ctx.registry.delivery_receipt_by_id(receipt_id)
    return JSONResponse(
        delivery_receipt_out(receipt, str(request.base_url)), headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/v1/receipts/{receipt_id}/check",
    operation_id="check_receipt_code",
    response_model=ReceiptCheckOut,
    summary="Is this code the good the receipt says was delivered? (match or no match)",
    responses={
        400: problem_response("Invalid request, or a proof of work that does not hold"),
        404: _UNKNOWN,
        428: problem_response(
            "No proof of work (POST /v1/verify/challenge, solved for this code: see the body)"
        ),
        429: problem_response("Rate limited (Retry-After says when to come back)"),
    },
    openapi_extra={
        "parameters": [
            {
                "name": POW_HEADER,
                "in": "header",
                "required": True,
                "description": "<challenge>.<nonce>: POST /v1/verify/challenge solved for the "
                'binding of {"good_type": "code", "creator": <the receipt\'s creator>, '
                '"code": <the code>} (as a public code lookup)',
                "schema": {"type": "string", "maxLength": 128},
            }
        ]
    },
)
def check_receipt_code(
    receipt_id: ReceiptId,
    body: ReceiptCheckIn,
    ctx: Context,
    principal: Caller,
    request: Request,
) -> Response:
    receipt = ctx.registry.delivery_receipt_by_id(receipt_id)
    match = _matches(ctx, request, principal.address_key, receipt, body.code)
    return JSONResponse({"match": match}, headers={"Cache-Control": "no-store"})


def _matches(
    ctx: ApiContext, request: Request, key: str, receipt: DeliveryReceipt, code: str
) -> bool:
    """The public code lookup's charges, then the code under the creator's live keys
    compared with the delivered fingerprint (``api.routes.verify._verify_code``'s steps)."""
    creator = receipt.facts.creator
    if ctx.proof_of_work is None:
        raise ProofOfWorkRequired("this registry issues no challenges: code checks need a key")
    binding = pow.body_binding("code", creator, None, code)
    ctx.proof_of_work.check(request.headers.get(POW_HEADER), binding)
    # The public tier's two budgets and the probe budget, before any read, as one check_all
    # (one round trip to a shared limiter), in verify's order.
    ctx.limiter.check_all(
        [
            ratelimit.Check(ratelimit.CODE_LOOKUP, key),
            ratelimit.Check(ratelimit.CODE_LOOKUP_ALL, ratelimit.EVERYONE),
            ratelimit.probe_budget(key),
        ]
    )
    fingerprinters = ctx.fingerprinters(bytes.fromhex(creator[2:]))
    if not fingerprinters:
        ctx.limiter.record_probe_failure(key)
        return False
    # One bucket a code, whatever key it is tried under (as verify).
    first = fingerprinters[0].fingerprint(code)
    ctx.limiter.check(ratelimit.FINGERPRINT, first.hex())
    candidates = {first, *(f.fingerprint(code) for f in fingerprinters[1:])}
    if receipt.fingerprint in candidates:
        return True
    ctx.limiter.record_probe_failure(key)
    return False


__all__ = ["router"]
