"""Auditors: the standing fraud and piracy signals, filtered and paginated.

The risk worker (``readmodels.riskworker``, its own process) writes them to ``risk_signals``
every few seconds; this reads them. The cursor is the last signal id (a stable hash of rule
and subject), so paging resumes where it left off across the worker's rewrites.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select

from api.apikeys import parse_platform_id
from api.deps import GOOD_TYPES, Auditor, Context
from readmodels.riskworker import risk_goods_t, risk_signals_t, risk_state_t
from registry.db import read_transaction
from registry.errors import InvalidInput
from verifier.schemas import DEFAULT_PAGE, MAX_PAGE, SignalPage

router = APIRouter(tags=["auditors"])

_SIGNAL_ID = re.compile(r"[0-9a-f]{32}")


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


def _signal_page(
    engine: Engine,
    *,
    after: str,
    limit: int,
    code: str | None,
    subject: str | None,
    platform: str | None,
    good: str | None,
) -> dict[str, Any]:
    c = risk_signals_t.c
    query = select(c.signal_id, c.document).where(c.signal_id > after)
    if code is not None:
        query = query.where(c.code == code)
    if subject is not None:
        query = query.where(c.subject_kind == subject)
    if platform is not None:
        # Platform ids have no spaces, LIKE wildcards or backslashes (``parse_platform_id``):
        # anything else cannot match and is refused.
        query = query.where(c.platforms.contains(f" {parse_platform_id(platform)} "))
    with read_transaction(engine) as conn:
        if good is not None:
            kind, _, hex_fp = good.partition(":")
            g = risk_goods_t.c
            found = conn.execute(
                select(g.signals).where(
                    g.good_type == int(GOOD_TYPES[kind]),
                    g.fingerprint == bytes.fromhex(hex_fp[2:]),
                )
            ).scalar()
            ids = [item["signal_id"] for item in json.loads(found or "[]")]
            query = query.where(c.signal_id.in_(ids))
        rows = conn.execute(query.order_by(c.signal_id).limit(limit + 1)).all()
        built = conn.execute(select(risk_state_t.c.built_at).where(risk_state_t.c.id == 1)).scalar()
    page = rows[:limit]
    return {
        "built_at": int(built or 0),
        "items": [json.loads(row.document) for row in page],
        "next_cursor": _encode_cursor(page[-1].signal_id) if len(rows) > limit else None,
    }


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
        Literal["good", "platform", "key", "batch", "creator", "party"] | None,
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
    document = await run_in_threadpool(
        _signal_page,
        ctx.registry.engine,
        after=_decode_cursor(cursor),
        limit=limit,
        code=code,
        subject=subject,
        platform=platform,
        good=good,
    )
    return Response(
        SignalPage.model_validate(document).model_dump_json(), media_type="application/json"
    )


__all__ = ["router"]
