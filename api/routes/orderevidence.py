"""``GET /v1/orders/{id}/evidence`` (issue 17 item 5): an order's dispute evidence
(``tracemark-order-evidence/v1``), which verifies offline with the chain and a pinned trust
root (``tracemark verify``, ``verifier.orderevidence``).

Who may fetch it: auditors (a platform key with the audit scope) and the order's parties'
platforms (a transfer-scoped key of the order's platform, its seller's platform or its
buyer's platform). Anyone else with a platform key of those scopes gets the very 404 a missing
order gets (THREATS 36: no oracle for which order ids exist); a key of neither scope, or a
creator's session, 403, and no credentials 401, whatever the id.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.auth import require_any_scope
from api.deps import Context, Principal
from api.errors import problem_response
from readmodels.orderevidence import build_order_evidence
from registry.errors import NotFound
from registry.orderviews import OrderView

router = APIRouter(tags=["orders"])

OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]

#: The scopes that may ask at all: an auditor's, or a party's platform's (401 without a
#: key, 403 with neither scope, whatever the id).
EvidenceReader = Annotated[Principal, Depends(require_any_scope("audit", "transfer"))]


def _visible(order: OrderView, platform: str | None, scopes: frozenset[str]) -> bool:
    if "audit" in scopes:
        return True
    parties = {order.platform, order.seller_platform, order.buyer_platform}
    return "transfer" in scopes and platform in parties


@router.get(
    "/v1/orders/{order_id}/evidence",
    operation_id="get_order_evidence",
    summary="An order's dispute evidence (tracemark-order-evidence/v1): its signed changes, "
    "its delivery and the good's whole history, with a summary; check it offline.",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        403: problem_response("A key with neither the audit nor the transfer scope"),
        404: problem_response(
            "No order of that id that you may see: the same answer whether or not it exists"
        ),
        409: problem_response("The order was never delivered: no evidence yet (not-delivered)"),
    },
)
def order_evidence(order_id: OrderId, ctx: Context, principal: EvidenceReader) -> Response:
    # One answer for "none" and "not yours", made here, never the reader's own text.
    hidden = NotFound("no order of that id whose evidence you may see")
    try:
        order = ctx.registry.order(order_id)
    except NotFound:
        raise hidden from None
    if not _visible(order, principal.platform, principal.scopes):
        raise hidden
    evidence = build_order_evidence(ctx.registry, order)
    return Response(
        evidence.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="order-{order_id}-evidence.json"'},
    )


__all__ = ["router"]
