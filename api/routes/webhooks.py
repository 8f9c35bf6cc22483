"""Platforms' webhook subscriptions and their delivery logs (``/v1/webhooks``).

Every route needs a platform API key with the ``transfer`` scope: ``transfer.recorded``
carries the platform's transfer receipts, which only that scope may read, and a subscription
is a platform's own business like its transfers. Another platform's subscription is 404,
exactly like one that never existed (THREATS 36).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import Principal, require_scope
from api.errors import problem_response
from api.pagination import Cursor, decode_cursor, next_cursor
from api.webhooks import ssrf
from api.webhooks.store import DeliveryInfo, SubscriptionInfo, WebhookService
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    Page,
    WebhookCreatedOut,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
)

router = APIRouter(tags=["platforms"])

#: The scope that manages webhooks (see the module's docstring).
WEBHOOK_SCOPE = "transfer"
SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def webhook_service(request: Request) -> WebhookService:
    service: WebhookService = request.app.state.webhooks
    return service


Service = Annotated[WebhookService, Depends(webhook_service)]
Platform = Annotated[Principal, Depends(require_scope(WEBHOOK_SCOPE))]


def subscription_out(info: SubscriptionInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "url": info.url,
        "event_types": list(info.event_types),
        "created_at": info.created_at,
    }


def delivery_out(info: DeliveryInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "msg_id": info.msg_id,
        "event_type": info.event_type,
        "state": info.state,
        "attempts": info.attempts,
        "last_status": info.last_status,
        "next_attempt_ms": info.next_attempt_ms,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "log": [
            {
                "attempt": a.attempt,
                "started_at": a.started_at,
                "duration_ms": a.duration_ms,
                "status_code": a.status_code,
                "error": a.error,
            }
            for a in info.log
        ],
    }


@router.post(
    "/v1/webhooks",
    operation_id="create_webhook",
    response_model=WebhookCreatedOut,
    status_code=201,
    summary="Subscribe an https endpoint to events; the signing secret is shown only here.",
    responses={
        400: problem_response("The URL is refused: its scheme, its form, or where it resolves"),
        409: problem_response("The platform already holds the most subscriptions allowed"),
    },
)
async def create_webhook(body: WebhookIn, service: Service, principal: Platform) -> Response:
    assert principal.platform is not None
    settings = service.settings
    target = await ssrf.check_url(body.url, settings.policy, timeout=settings.connect_timeout)
    info, secret = await run_in_threadpool(
        service.create, principal.platform, str(target.url), body.event_types
    )
    return JSONResponse({**subscription_out(info), "secret": secret}, status_code=201)


@router.get(
    "/v1/webhooks",
    operation_id="list_webhooks",
    response_model=Page[WebhookOut],
    summary="Your platform's webhook subscriptions, oldest first (cursor-paginated).",
)
def list_webhooks(
    service: Service,
    principal: Platform,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert principal.platform is not None
    items = service.subscriptions(principal.platform, after=decode_cursor(cursor), limit=limit)
    return JSONResponse(
        {
            "items": [subscription_out(i) for i in items],
            "next_cursor": next_cursor([i.id for i in items], limit),
        }
    )


@router.get(
    "/v1/webhooks/{webhook_id}",
    operation_id="get_webhook",
    response_model=WebhookOut,
    summary="One of your platform's webhook subscriptions (never its secret).",
)
def get_webhook(webhook_id: SubscriptionId, service: Service, principal: Platform) -> Response:
    assert principal.platform is not None
    return JSONResponse(subscription_out(service.get(principal.platform, webhook_id)))


@router.delete(
    "/v1/webhooks/{webhook_id}",
    operation_id="delete_webhook",
    status_code=204,
    summary="Stop a subscription: nothing more is sent, pending deliveries are cancelled.",
)
def delete_webhook(webhook_id: SubscriptionId, service: Service, principal: Platform) -> Response:
    assert principal.platform is not None
    service.delete(principal.platform, webhook_id)
    return Response(status_code=204)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=Page[WebhookDeliveryOut],
    summary="A subscription's delivery log: each event, its attempts, status codes, next retry.",
)
def list_webhook_deliveries(
    webhook_id: SubscriptionId,
    service: Service,
    principal: Platform,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    state: Annotated[str | None, Query(pattern="^(pending|delivered|failed|cancelled)$")] = None,
) -> Response:
    assert principal.platform is not None
    items = service.deliveries(
        principal.platform, webhook_id, after=decode_cursor(cursor), limit=limit, state=state
    )
    return JSONResponse(
        {
            "items": [delivery_out(i) for i in items],
            "next_cursor": next_cursor([i.id for i in items], limit),
        }
    )


__all__ = ["WEBHOOK_SCOPE", "router"]
