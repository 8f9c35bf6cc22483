"""A platform's guaranteed-trade orders (issue 17): open one (reserving its good), read it,
confirm, dispute, resolve, cancel. The state table is ``registry.orders``.

Delivery (issue 17 item 2) checks the delivered code against the reserved good and logs a
DELIVERY entry (``registry.delivery``). Orders take the transfer scope: an order is a sale
the platform will report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from api.deps import GOOD_TYPES, ApiContext, Context, TransferPlatform
from api.errors import problem_response
from api.pagination import Cursor, decode_cursor, next_cursor
from api.receipts import delivery_receipt_out
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import fingerprint_hex, parse_fingerprint
from registry.leaf import EntryKind
from registry.orders import Event, OrderRequest
from registry.orderstore import OrderView
from registry.transferrequests import Party
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    DeliveryIn,
    DeliveryOut,
    OrderIn,
    OrderOut,
    OrderResolveIn,
    Page,
)

router = APIRouter(tags=["orders"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]
OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]

_NOT_YOURS = problem_response("No order of that id was opened by your platform")
_INVALID = problem_response(
    "The order's state does not take this event (invalid-transition): nothing was changed"
)


def order_out(order: OrderView) -> dict[str, Any]:
    """An order as ``OrderOut``."""
    return {
        "order_id": order.order_id,
        "platform": order.platform,
        "good_type": order.good_type.name.lower(),
        "fingerprint": fingerprint_hex(order.fingerprint),
        "seller_platform": order.seller_platform,
        "buyer_platform": order.buyer_platform,
        "buyer_commitment": "0x" + order.buyer_commitment.hex(),
        "buyer_salt": "0x" + order.buyer_salt.hex(),
        "price": str(order.price),
        "currency": order.currency,
        "confirm_window": order.confirm_window,
        "state": order.state.value,
        "open": order.open,
        "created_at": order.created_at,
        "reserved_until": order.reserved_until,
        "delivered_at": order.delivered_at,
        "confirm_deadline": order.confirm_deadline,
        "updated_at": order.updated_at,
        "changes": [
            {
                "sequence": c.sequence,
                "event": c.event,
                "from_state": c.from_state,
                "to_state": c.to_state,
                "actor": c.actor,
                "at": c.at,
                "change_hash": "0x" + c.change_hash.hex(),
                "signature": "0x" + c.signature.hex(),
                "signer": checksum_address(c.signer),
            }
            for c in order.changes
        ],
        "replayed": order.replayed,
    }


@router.post(
    "/v1/orders",
    operation_id="open_order",
    response_model=OrderOut,
    status_code=201,
    summary="Open a guaranteed-trade order: the good is reserved for it while it is open.",
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the original order"},
        403: problem_response(
            "The seller is a party on another platform (not-the-holder), or your platform "
            "may not sell the creator's goods first-hand (not-a-distributor)"
        ),
        404: problem_response("No such good is registered"),
        409: problem_response(
            "The good is reserved for another order (reserved), the seller does not hold it "
            "(double-sale), or it is revoked or consumed"
        ),
    },
)
def open_order(
    body: OrderIn,
    ctx: Context,
    principal: TransferPlatform,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    platform = principal.platform
    assert platform is not None
    if body.seller.creator:
        if body.seller.platform is not None or body.seller.reference is not None:
            raise InvalidInput("seller: the creator is named by creator=true alone")
        seller = Party(None, None)
    else:
        if body.seller.reference is None:
            raise InvalidInput("seller: give a reference (or creator=true)")
        seller = Party(body.seller.platform or platform, body.seller.reference)
    order = ctx.registry.open_order(
        OrderRequest(
            platform=platform,
            good_type=GOOD_TYPES[body.good_type],
            fingerprint=parse_fingerprint(body.fingerprint),
            seller=seller,
            buyer=Party(platform, body.buyer_reference),
            price=int(body.price),
            currency=body.currency,
            confirm_window=body.confirm_window,
            reservation_seconds=body.reservation_seconds,
            idempotency_key=idempotency_key,
        )
    )
    return JSONResponse(order_out(order), status_code=200 if order.replayed else 201)


@router.get(
    "/v1/orders/{order_id}",
    operation_id="get_order",
    response_model=OrderOut,
    summary="One of your platform's orders, with its signed state changes.",
    responses={404: _NOT_YOURS},
)
def get_order(order_id: OrderId, ctx: Context, principal: TransferPlatform) -> Response:
    return JSONResponse(order_out(_own(ctx, order_id, principal.platform)))


def _own(ctx: ApiContext, order_id: int, platform: str | None) -> OrderView:
    try:
        order: OrderView | None = ctx.registry.order(order_id)
    except NotFound:
        order = None
    if order is None or order.platform != platform:
        # The same answer for "not yours" and "does not exist" (THREATS 36).
        raise NotFound(f"no order {order_id} of yours")
    return order


@router.get(
    "/v1/orders",
    operation_id="list_orders",
    response_model=Page[OrderOut],
    summary="Your platform's orders, oldest first (cursor-paginated).",
)
def list_orders(
    ctx: Context,
    principal: TransferPlatform,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert principal.platform is not None
    ids = ctx.registry.order_ids(principal.platform, after=decode_cursor(cursor), limit=limit)
    items = [order_out(ctx.registry.order(i)) for i in ids]
    return JSONResponse({"items": items, "next_cursor": next_cursor(ids, limit)})


def _change(
    ctx: ApiContext,
    order_id: int,
    event: Event,
    platform: str | None,
    key: str | None,
    *,
    redeemed: bool = False,
) -> Response:
    assert platform is not None
    order = ctx.registry.change_order(
        order_id, event, platform=platform, idempotency_key=key, redeemed=redeemed
    )
    return JSONResponse(order_out(order))


@router.post(
    "/v1/orders/{order_id}/deliver",
    operation_id="deliver_order",
    response_model=DeliveryOut,
    summary="Deliver the code (or fingerprint) for a reserved order: checked, then logged.",
    responses={
        404: _NOT_YOURS,
        409: problem_response(
            "Refused, nothing changed: not the reserved good (not-the-reserved-good), revoked, "
            "consumed, sold elsewhere (double-sale), or the order is not reserved "
            "(invalid-transition)"
        ),
    },
)
def deliver_order(
    order_id: OrderId,
    body: DeliveryIn,
    ctx: Context,
    principal: TransferPlatform,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    platform = principal.platform
    assert platform is not None
    if (body.code is None) == (body.fingerprint is None):
        raise InvalidInput("give the delivered code or its fingerprint (one of them)")
    order = _own(ctx, order_id, platform)
    if body.fingerprint is not None:
        candidates = [parse_fingerprint(body.fingerprint)]
    else:
        # The code under each of its creator's live keys, as verify hashes it; never kept.
        creator = next(
            e.actor
            for e in ctx.registry.history(order.good_type, order.fingerprint)
            if e.kind is EntryKind.REGISTER
        )
        candidates = [f.fingerprint(body.code or "") for f in ctx.fingerprinters(creator)]
    done = ctx.registry.deliver(
        order_id, candidates, platform=platform, idempotency_key=idempotency_key
    )
    # The buyer's receipt, issued in the delivery's transaction (issue 17 item 3).
    receipt = ctx.registry.delivery_receipt(order_id, platform=platform)
    return JSONResponse(
        {
            "order": order_out(done.order),
            "delivery": {
                "leaf_index": done.leaf_index,
                "payload_hash": "0x" + done.payload_hash.hex(),
                "payload": done.payload.document(),
            },
            "receipt": delivery_receipt_out(receipt, str(request.base_url)),
        }
    )


def _event_route(action: str, event: Event, summary: str) -> None:
    """Register ``POST /v1/orders/{order_id}/<action>``: one event of the state table, asked
    with no body (confirm, dispute and cancel share this shape; resolve takes a body)."""

    def change(
        order_id: OrderId,
        ctx: Context,
        principal: TransferPlatform,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        return _change(ctx, order_id, event, principal.platform, idempotency_key)

    change.__name__ = change.__qualname__ = f"{action}_order"
    router.post(
        f"/v1/orders/{{order_id}}/{action}",
        operation_id=f"{action}_order",
        response_model=OrderOut,
        summary=summary,
        responses={404: _NOT_YOURS, 409: _INVALID},
    )(change)


_event_route(
    "confirm",
    Event.CONFIRM,
    "The buyer confirms receipt of a delivered order (the order is then final).",
)
_event_route(
    "dispute",
    Event.DISPUTE,
    "The buyer disputes a delivered order within its confirmation window.",
)


@router.post(
    "/v1/orders/{order_id}/resolve",
    operation_id="resolve_order",
    response_model=OrderOut,
    summary="Resolve a disputed order: release (the sale stands) or refund (redeemed: consumed).",
    responses={404: _NOT_YOURS, 409: _INVALID},
)
def resolve_order(
    order_id: OrderId,
    body: OrderResolveIn,
    ctx: Context,
    principal: TransferPlatform,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    event = Event.RELEASE if body.outcome == "release" else Event.REFUND
    return _change(
        ctx, order_id, event, principal.platform, idempotency_key, redeemed=body.redeemed
    )


_event_route("cancel", Event.CANCEL, "Cancel an order not delivered yet; its good is free again.")


__all__ = ["order_out", "router"]
