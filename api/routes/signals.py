"""Auditors: the fraud and piracy signals of the risk index, filtered and paginated.

The signals are the index's (``verifier.anomaly.RiskRefresher``), rebuilt behind the
requests every few seconds; a page is read from one index, and the cursor (the last signal id,
a stable hash of rule and subject) resumes in the next one where it left off.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.auth import Principal, require_scope
from api.context import ApiContext, context
from registry.errors import InvalidInput
from verifier.schemas import DEFAULT_PAGE, MAX_PAGE, SignalPage
from verifier.signals import good_name

router = APIRouter(tags=["auditors"])

_SIGNAL_ID = re.compile(r"[0-9a-f]{32}")

Context = Annotated[ApiContext, Depends(context)]
Auditor = Annotated[Principal, Depends(require_scope("audit"))]


def _encode_cursor(signal_id: str) -> str:
    return base64.urlsafe_b64encode(f"s1:{signal_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str:
    if cursor is None:
        return ""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        text = ""
    version, _, signal_id = text.partition(":")
    if version != "s1" or _SIGNAL_ID.fullmatch(signal_id) is None:
        raise InvalidInput("cursor is not one this API handed out")
    return signal_id


@router.get(
    "/v1/signals",
    operation_id="list_signals",
    response_model=SignalPage,
    summary="Fraud and piracy signals, each with its evidence (auditors).",
)
async def list_signals(
    ctx: Context,
    caller: Auditor,
    code: Annotated[str | None, Query(max_length=64, description="Only this rule")] = None,
    subject: Annotated[
        Literal["good", "platform", "key", "batch", "creator"] | None,
        Query(description="Only signals about this kind of subject"),
    ] = None,
    platform: Annotated[
        str | None, Query(max_length=64, description="Only signals concerning this platform")
    ] = None,
    good: Annotated[
        str | None,
        Query(
            pattern=r"^(file|code|item):0x[0-9a-f]{64}$",
            description="Only signals implicating this good (code:0x...)",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    after = _decode_cursor(cursor)
    index = ctx.risk.index
    chosen = []
    for signal in sorted(index.signals, key=lambda s: s.signal_id):
        if signal.signal_id <= after:
            continue
        if code is not None and signal.code != code:
            continue
        if subject is not None and signal.subject.kind != subject:
            continue
        if platform is not None and platform not in signal.platforms:
            continue
        if good is not None and good not in {good_name(g) for g in signal.goods}:
            continue
        chosen.append(signal)
        if len(chosen) > limit:
            break
    page = chosen[:limit]
    following = _encode_cursor(page[-1].signal_id) if len(chosen) > limit else None
    document = SignalPage.model_validate(
        {
            "built_at": index.built_at,
            "items": [s.document() for s in page],
            "next_cursor": following,
        }
    )
    return Response(document.model_dump_json(), media_type="application/json")


__all__ = ["router"]
