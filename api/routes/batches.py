"""Bulk registration and revocation: a signed batch request and up to 10^6+ fingerprints,
streamed (``api.bulkbody``) and run as a job whose progress ``GET /v1/jobs/{id}`` reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.bulkbody import BULK_BODY, REQUEST_HEADER, spool_bulk
from api.context import ApiContext
from api.deps import Context, SignedWriter
from api.documents import registration_request, revocation_request
from api.errors import problem_response
from api.jobs import JobSpec
from api.personaldata import refuse_personal_data_in_document
from registry.batches import BatchCheck, BatchResult, Progress
from registry.errors import InvalidInput, NotFound
from verifier.schemas import BatchRegistrationIn, BatchRevocationIn, JobOut

router = APIRouter(tags=["creators"])


def _parse(
    model: type[BatchRegistrationIn] | type[BatchRevocationIn], document: dict[str, Any]
) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        where = "; ".join(
            ".".join(str(p) for p in e["loc"]) + ": " + e["msg"] for e in exc.errors()
        )
        raise InvalidInput(f"the signed request: {where}") from None


async def _submit_bulk(
    request: Request,
    ctx: ApiContext,
    header_request: str | None,
    kind: Literal["registration", "revocation"],
) -> JSONResponse:
    checked: list[Any] = []

    def accept(document: dict[str, Any]) -> None:
        # The signed request is JSON the app-wide personal-data check never sees (a line of
        # the streamed body, or a header): checked here, before anything is kept.
        refuse_personal_data_in_document(f"/v1/{kind}s/batches", document)
        now = ctx.registry.clock()
        if kind == "registration":
            parsed: Any = registration_request(_parse(BatchRegistrationIn, document), batch=True)
        else:
            parsed = revocation_request(_parse(BatchRevocationIn, document), batch=True)
        parsed.check(ctx.registry.domain, now=now)  # a bad signature is refused right here
        checked.append(parsed)

    _, spool, csv = await spool_bulk(request, ctx, header_request, accept)
    try:
        signed_request = checked[0]
        run: Callable[[Iterator[bytes], Progress, BatchCheck], BatchResult]
        if kind == "registration":

            def run(fps: Iterator[bytes], progress: Progress, check: BatchCheck) -> BatchResult:
                return ctx.registry.register_batch(
                    signed_request, fps, progress=progress, check=check
                )

        else:

            def run(fps: Iterator[bytes], progress: Progress, check: BatchCheck) -> BatchResult:
                return ctx.registry.revoke_batch(
                    signed_request, fps, progress=progress, check=check
                )

        owner = signed_request.signed.signer
        job_id = await run_in_threadpool(ctx.jobs.create, f"creator:{owner}", kind)
    except BaseException:
        spool.close()
        raise
    ctx.jobs.submit(JobSpec(job_id, spool, csv, run))
    job = await run_in_threadpool(ctx.jobs.get, job_id)
    return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


@router.post(
    "/v1/registrations/batches",
    operation_id="register_batch",
    response_model=JobOut,
    status_code=202,
    openapi_extra={"requestBody": BULK_BODY},
    summary="Bulk-register up to 10^6+ goods under one signed BatchRegistration (streamed).",
    responses={413: problem_response("Over the bulk cap"), 415: problem_response("Not NDJSON/CSV")},
)
async def register_batch(
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    tracemark_request: Annotated[str | None, Header(alias=REQUEST_HEADER, max_length=65536)] = None,
) -> Response:
    return await _submit_bulk(request, ctx, tracemark_request, "registration")


@router.post(
    "/v1/revocations/batches",
    operation_id="revoke_batch",
    response_model=JobOut,
    status_code=202,
    openapi_extra={"requestBody": BULK_BODY},
    summary="Bulk-revoke goods under one signed BatchRevocation (streamed).",
    responses={413: problem_response("Over the bulk cap"), 415: problem_response("Not NDJSON/CSV")},
)
async def revoke_batch(
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    tracemark_request: Annotated[str | None, Header(alias=REQUEST_HEADER, max_length=65536)] = None,
) -> Response:
    return await _submit_bulk(request, ctx, tracemark_request, "revocation")


@router.get(
    "/v1/jobs/{job_id}",
    operation_id="get_job",
    response_model=JobOut,
    summary="A bulk upload's progress and result (the job id is the capability).",
)
def get_job(
    job_id: Annotated[str, Path(max_length=64)], ctx: Context, caller: SignedWriter
) -> Response:
    if not job_id.startswith("job_") or len(job_id) > 64:
        raise NotFound(f"no job {job_id}")
    job = ctx.jobs.get(job_id)
    live = ctx.jobs.live_progress(job_id)
    if live is not None:
        job["processed"] = live
    return JSONResponse(job)


__all__ = ["router"]
