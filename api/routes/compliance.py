"""``GET /v1/compliance/platforms/{platform}/report`` (issue 18 item 3): a platform's compliance
report over a period, as ``tracemark-compliance-report/v1`` JSON (checked offline by
``tracemark verify``, ``verifier.compliance``) or as CSV (one row a signal, UTF-8 with a BOM).

Who may fetch it: auditors (a platform key with the audit scope), any platform's; a platform's
own key (any scope), its own. Another platform's key gets the very 404 an unknown platform
gets (no oracle for which platforms have signals); a creator's session 403, no credentials
401.
"""

from __future__ import annotations

import threading
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse

from api.apikeys import parse_platform_id
from api.auth import require_any_scope
from api.deps import Context, Principal
from api.errors import problem_response
from api.languages import signal_titles
from api.ratelimit import RateLimited
from readmodels.compliance import build_report
from readmodels.compliancecsv import csv_lines
from registry.errors import NotFound
from verifier.timetext import LAST_MOMENT

router = APIRouter(tags=["auditors"])

#: An auditor, or a platform asking for its own report (checked in the handler).
ReportReader = Annotated[Principal, Depends(require_any_scope("audit", "transfer", "verify"))]
PlatformId = Annotated[str, Path(max_length=64)]
#: Reports built at once in this process. NOTE: a report costs seconds of CPU and megabytes
#: (up to 5,000 goods proved) and a key's budget lets 200 requests start at once: without a
#: bound they would all be built side by side, starving every other route's thread pool.
MAX_BUILDING: Final = 2
#: Seconds a caller is told to wait while the builds run.
BUSY_RETRY_AFTER: Final = 5
_building = threading.BoundedSemaphore(MAX_BUILDING)
#: The last second a report's dates can name (9999-12-31 23:59:59 UTC, ``LAST_MOMENT`` of
#: ``verifier.timetext``): a later one made the summary's dates fail with a server error (red
#: team); ``require_period`` refuses it too (the CLI's database mode), the verifier as well.
Moment = Annotated[int, Query(ge=0, le=LAST_MOMENT)]


@router.get(
    "/v1/compliance/platforms/{platform}/report",
    operation_id="get_compliance_report",
    summary="A platform's compliance report over a period: the signals about it, its goods "
    "and its counterparties, each with its evidence and proofs (check it offline), or CSV.",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        },
        400: problem_response("A period that ends before it starts, or longer than 366 days"),
        429: problem_response("Other reports are being built: retry after Retry-After"),
        403: problem_response("A creator's session: only platform keys and auditors ask"),
        404: problem_response(
            "Another platform's report (without the audit scope): the same answer as for a "
            "platform that does not exist"
        ),
    },
)
def compliance_report(
    platform: PlatformId,
    ctx: Context,
    principal: ReportReader,
    start: Annotated[Moment, Query(alias="from", description="Unix seconds, included")],
    end: Annotated[Moment, Query(alias="to", description="Unix seconds, included")],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    if "audit" not in principal.scopes and principal.platform != platform:
        # One answer for "none" and "not yours", made here.
        raise NotFound("no platform of that id whose report you may see")
    platform_id = parse_platform_id(platform)
    if not _building.acquire(blocking=False):
        raise RateLimited(
            f"{MAX_BUILDING} reports are being built: retry in {BUSY_RETRY_AFTER} seconds",
            retry_after=BUSY_RETRY_AFTER,
            bucket="compliance-report",
        )
    try:
        report = build_report(ctx.registry, platform_id, start=start, end=end)
    finally:
        _building.release()
    name = f"compliance-{platform}-{start}-{end}"
    if format == "csv":
        return StreamingResponse(
            csv_lines(report, signal_titles()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        report.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
    )


__all__ = ["router"]
