"""Auditors: a good's trace, its whole history in order (``tracemark-trace/v1``), as JSON or as
a Mermaid graph. For API keys with the audit scope, and for the good's own creator signed in;
to any other creator the good does not exist (404, the very answer for a missing good)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import GOOD_TYPES, Context, CurrentPrincipal, Principal
from api.principal import Forbidden, Unauthorized
from readmodels.trace import build_trace, trace_mermaid
from registry.edges import HASH32_PATTERN
from registry.fingerprints import parse_fingerprint
from verifier.schemas import GoodTypeName, TraceOut

router = APIRouter(tags=["auditors"])

MERMAID_MEDIA_TYPE = "text/plain; charset=utf-8"


def require_audit_or_creator(principal: CurrentPrincipal) -> Principal:
    """An API key with the audit scope, or a creator signed in (whose goods the handler
    checks); 401 if anonymous, else 403."""
    needs = "this needs a platform API key with the 'audit' scope, or the good's creator"
    if principal.kind == "anonymous":
        raise Unauthorized(needs, error=None)
    if principal.kind == "creator":
        return principal
    if principal.kind == "platform" and "audit" in principal.scopes:
        return principal
    raise Forbidden(needs)


AuditorOrCreator = Annotated[Principal, Depends(require_audit_or_creator)]


@router.get(
    "/v1/goods/{good_type}/{fingerprint}/trace",
    operation_id="get_good_trace",
    response_model=TraceOut,
    summary="A good's whole history in order: registration, anchors, verifications, transfers, "
    "revocation, conflicting claims (auditors; or the good's creator).",
    responses={
        200: {
            "content": {
                "text/plain": {"schema": {"type": "string", "description": "Mermaid graph LR text"}}
            }
        }
    },
)
async def good_trace(
    good_type: Annotated[GoodTypeName, Path()],
    fingerprint: Annotated[str, Path(pattern=HASH32_PATTERN)],
    ctx: Context,
    caller: AuditorOrCreator,
    format: Annotated[Literal["json", "mermaid"], Query()] = "json",
) -> Response:
    block, _ = ctx.chain_watch.view()
    # A creator sees only their own goods: another's answers exactly as a missing good does.
    good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    creator = caller.creator if caller.kind == "creator" else None
    # From the replica while fresh; its "no such good" is asked of the primary again.
    trace = await run_in_threadpool(
        ctx.read,
        lambda registry: build_trace(registry, *good, chain_block=block, creator=creator),
    )
    if format == "mermaid":
        return Response(trace_mermaid(trace), media_type=MERMAID_MEDIA_TYPE)
    return Response(trace.model_dump_json(), media_type="application/json")


__all__ = ["router"]
