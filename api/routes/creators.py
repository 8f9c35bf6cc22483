"""Creators: enrol a code key, register and revoke goods (one, or 10^6 in a streamed batch),
read their goods and royalty statements, and sign in with Ethereum.

Writes carry the creator's EIP-712 signature, which is their authentication: no session is
needed to register, and a stolen session cannot register anything. Reads of a creator's own
goods and statements need a Sign-In with Ethereum session.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from api import siwe
from api.context import MAX_BULK_BYTES, MAX_JSON_BYTES, ApiContext
from api.deps import Caller, Context, Creator, SignedWriter
from api.documents import registration_request, revocation_request, signed
from api.errors import PayloadTooLarge, UnsupportedMediaType, problem_response
from api.idempotency import lookup_idempotent, request_hash, store_idempotent
from api.jobs import JobSpec
from api.pagination import Cursor, decode_cursor, next_cursor
from registry.batches import BatchResult
from registry.eip712 import address_bytes, verify_signature
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import fingerprint_hex
from registry.signed import SignedMessage
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    BatchRegistrationIn,
    BatchRevocationIn,
    CodeKeyIn,
    CodeKeyOut,
    CodeKeyRetireIn,
    CodeKeyRetireOut,
    CodeKeysOut,
    DistributionIn,
    DistributionOut,
    EntryOut,
    GoodOut,
    JobOut,
    Page,
    RegistrationIn,
    RevocationIn,
    SiweIn,
    SiweNonceOut,
    StatementOut,
    TokenOut,
)

router = APIRouter(tags=["creators"])
logger = logging.getLogger("tracemark.api.creators")

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]
NDJSON = "application/x-ndjson"
CSV = "text/csv"
#: Bulk bodies are NDJSON (first line: the signed request; then one fingerprint a line) or
#: CSV (a ``fingerprint`` column; the signed request base64url-encoded in this header).
REQUEST_HEADER = "Tracemark-Request"


def signer_scope(ctx: ApiContext, message: SignedMessage) -> str:
    """Whose Idempotency-Keys a signed write spends: its signer's (``creator:<address>``),
    once the signature is checked to recover that address under our domain.

    NOTE: not the caller's. A signed write needs no session, so the caller is often just an
    IP address, and two creators behind one address (or one platform relaying for many)
    would collide on a key. The deadline is not checked here: a retry after it still gets
    the stored reply; a new write is checked in full by the handler."""
    verify_signature(
        message.primary_type,
        message.message,
        ctx.registry.domain,
        message.signature,
        message.signer,
    )
    return f"creator:{message.signer}"


async def idempotent(
    request: Request,
    ctx: ApiContext,
    message: SignedMessage,
    key: str | None,
    handle: Callable[[], Awaitable[JSONResponse]],
) -> Response:
    """Replay the stored reply to a retried request; store a new successful reply. The key
    is the signer's (``signer_scope``)."""
    if key is None:
        return await handle()
    owner = await run_in_threadpool(signer_scope, ctx, message)
    digest = request_hash(request.method, str(request.url.path), await request.body())
    engine = ctx.registry.engine
    clock = ctx.registry.clock
    stored = await run_in_threadpool(
        partial(lookup_idempotent, engine, owner, key, digest, now=clock())
    )
    if stored is not None:
        return Response(stored.body, stored.status_code, media_type=stored.media_type)
    response = await handle()
    if response.status_code < 300:
        body = bytes(response.body).decode()
        kept = await run_in_threadpool(
            partial(
                store_idempotent,
                engine,
                owner,
                key,
                digest,
                response.status_code,
                body,
                "application/json",
                now=clock(),
            )
        )
        return Response(kept.body, kept.status_code, media_type=kept.media_type)
    return response


def _entry(ref: Any) -> dict[str, Any]:
    return dict(ref.as_dict())


@router.post(
    "/v1/creators/code-key",
    operation_id="enroll_code_key",
    response_model=CodeKeyOut,
    status_code=201,
    summary="Enrol the creator's code key (a signed CodeKeyEnrollment); kept sealed at rest.",
)
async def enroll_code_key(
    body: CodeKeyIn,
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    key: IdempotencyKey = None,
) -> Response:
    message = signed(body.signed, "CodeKeyEnrollment")

    async def handle() -> JSONResponse:
        code_key = bytes.fromhex(body.code_key[2:])
        result = await run_in_threadpool(ctx.registry.enroll_code_key, message, code_key)
        ctx.code_keys.forget(message.signer_bytes)
        return JSONResponse(
            {
                "creator": result.creator,
                "key_commitment": "0x" + result.key_commitment.hex(),
                "status": result.status,
                "kid": result.kid,
            },
            status_code=201,
        )

    return await idempotent(request, ctx, message, key, handle)


@router.post(
    "/v1/creators/code-key/retire",
    operation_id="retire_code_key",
    response_model=CodeKeyRetireOut,
    summary="Retire one of the creator's code keys (a signed CodeKeyRetirement); its sealed "
    "copy is destroyed and codes are no longer looked up under it.",
    responses={404: problem_response("The creator has no such code key")},
)
async def retire_code_key(
    body: CodeKeyRetireIn,
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    key: IdempotencyKey = None,
) -> Response:
    message = signed(body.signed, "CodeKeyRetirement")

    async def handle() -> JSONResponse:
        result = await run_in_threadpool(ctx.registry.retire_code_key, message)
        ctx.code_keys.forget(message.signer_bytes)
        return JSONResponse(
            {
                "creator": result.creator,
                "key_commitment": "0x" + result.key_commitment.hex(),
                "kid": result.kid,
                "status": result.status,
            }
        )

    return await idempotent(request, ctx, message, key, handle)


@router.post(
    "/v1/registrations",
    operation_id="register_good",
    response_model=EntryOut,
    status_code=201,
    summary="Register one good (a signed Registration).",
)
async def register_good(
    body: RegistrationIn,
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    key: IdempotencyKey = None,
) -> Response:
    registration = registration_request(body, batch=False)

    async def handle() -> JSONResponse:
        ref = await run_in_threadpool(ctx.registry.register, registration)
        return JSONResponse(_entry(ref), status_code=201)

    return await idempotent(request, ctx, registration.signed, key, handle)


@router.post(
    "/v1/revocations",
    operation_id="revoke_good",
    response_model=EntryOut,
    status_code=201,
    summary="Revoke one of your goods (a signed Revocation).",
)
async def revoke_good(
    body: RevocationIn,
    request: Request,
    ctx: Context,
    caller: SignedWriter,
    key: IdempotencyKey = None,
) -> Response:
    revocation = revocation_request(body, batch=False)

    async def handle() -> JSONResponse:
        ref = await run_in_threadpool(ctx.registry.revoke, revocation)
        return JSONResponse(_entry(ref), status_code=201)

    return await idempotent(request, ctx, revocation.signed, key, handle)


# -- bulk ----------------------------------------------------------------------------------------

BULK_BODY = {
    "required": True,
    # The cap the spooling enforces (``ApiContext.max_bulk_bytes``, THREATS 40): 413 past it.
    "x-max-bytes": MAX_BULK_BYTES,
    "content": {
        NDJSON: {
            "schema": {"type": "string", "maxLength": MAX_BULK_BYTES},
            "example": '{"signed": {...}, "royalty_policy": {...}, "metadata": {}}\n0xab…\n',
        },
        CSV: {
            "schema": {"type": "string", "maxLength": MAX_BULK_BYTES},
            "example": "fingerprint\n0xab…\n",
        },
    },
}


async def _spool_bulk(
    request: Request,
    ctx: ApiContext,
    header_request: str | None,
    accept: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], Any, bool]:
    """Stream the body to a spool file within the cap; returns (request document, spool, csv).

    ``accept`` checks the signed request as soon as it is read (the header, or the first
    line), so a bad signature is refused before a large body is spooled."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (NDJSON, CSV):
        raise UnsupportedMediaType(f"send {NDJSON} or {CSV}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > ctx.max_bulk_bytes:
        raise PayloadTooLarge(f"a bulk upload is at most {ctx.max_bulk_bytes:,} bytes")
    csv = media == CSV
    document: dict[str, Any] | None = None
    if csv:
        if header_request is None:
            raise InvalidInput(f"a CSV upload carries the signed request in {REQUEST_HEADER}")
        document = _header_document(header_request)
        accept(document)
    spool = ctx.jobs.spool()
    size = 0
    head = b""
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > ctx.max_bulk_bytes:
                raise PayloadTooLarge(f"a bulk upload is at most {ctx.max_bulk_bytes:,} bytes")
            if document is None:
                head += chunk
                newline = head.find(b"\n")
                if newline < 0:
                    if len(head) > MAX_JSON_BYTES:
                        raise InvalidInput("the first line (the signed request) is too long")
                    continue
                document = _json_document(head[:newline])
                accept(document)
                chunk, head = head[newline + 1 :], b""
            spool.write(chunk)
        if document is None:
            document = _json_document(head)
            accept(document)
    except BaseException:
        spool.close()
        raise
    return document, spool, csv


def _json_document(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise InvalidInput("the first line must be the signed request as JSON") from exc
    if not isinstance(value, dict):
        raise InvalidInput("the first line must be the signed request as a JSON object")
    return value


def _header_document(value: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{REQUEST_HEADER} is not base64url") from exc
    return _json_document(raw)


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
        now = ctx.registry.clock()
        if kind == "registration":
            parsed: Any = registration_request(_parse(BatchRegistrationIn, document), batch=True)
        else:
            parsed = revocation_request(_parse(BatchRevocationIn, document), batch=True)
        parsed.check(ctx.registry.domain, now=now)  # a bad signature is refused right here
        checked.append(parsed)

    _, spool, csv = await _spool_bulk(request, ctx, header_request, accept)
    try:
        signed_request = checked[0]
        run: Callable[[Iterator[bytes], Callable[[int], None]], BatchResult]
        if kind == "registration":

            def run(fps: Iterator[bytes], progress: Callable[[int], None]) -> BatchResult:
                return ctx.registry.register_batch(signed_request, fps, progress=progress)

        else:

            def run(fps: Iterator[bytes], progress: Callable[[int], None]) -> BatchResult:
                return ctx.registry.revoke_batch(signed_request, fps, progress=progress)

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


# -- a creator's reads (Sign-In with Ethereum) ---------------------------------------------------


@router.get(
    "/v1/creators/me/code-keys",
    operation_id="list_my_code_keys",
    response_model=CodeKeysOut,
    summary="Your code keys (ids and dates, never a key), newest first; retired ones too.",
)
def list_my_code_keys(ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    keys = ctx.registry.code_keys_info(address_bytes(creator.creator))
    current = next((k.kid for k in keys if k.retired_at is None), None)
    items = [
        {
            "kid": k.kid,
            "key_commitment": "0x" + k.key_commitment.hex(),
            "created_at": k.created_at,
            "retired_at": k.retired_at,
            "current": k.kid == current,
        }
        for k in keys
    ]
    return JSONResponse({"creator": creator.creator, "keys": items})


@router.get(
    "/v1/creators/me/distribution",
    operation_id="get_my_distribution",
    response_model=DistributionOut,
    summary="Who may sell your goods first-hand: anyone, or only your named distributors.",
)
def get_my_distribution(ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    policy = ctx.registry.distribution(address_bytes(creator.creator))
    return JSONResponse(policy.as_dict())


@router.put(
    "/v1/creators/me/distribution",
    operation_id="set_my_distribution",
    response_model=DistributionOut,
    summary="Restrict first-hand sales of your goods to named platforms, or open them again.",
)
def set_my_distribution(body: DistributionIn, ctx: Context, creator: Creator) -> Response:
    assert creator.creator is not None
    policy = ctx.registry.set_distribution(
        address_bytes(creator.creator), restricted=body.restricted, platforms=body.platforms
    )
    logger.info(
        "creator %s set first-hand distribution to %s (%d platforms)",
        creator.creator,
        "restricted" if policy.restricted else "open",
        len(policy.platforms),
    )
    return JSONResponse(policy.as_dict())


@router.get(
    "/v1/creators/me/goods",
    operation_id="list_my_goods",
    response_model=Page[GoodOut],
    summary="Your registered goods, oldest first (cursor-paginated).",
)
def list_my_goods(
    ctx: Context,
    creator: Creator,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Response:
    assert creator.creator is not None
    goods = ctx.registry.goods_of(
        address_bytes(creator.creator), after=decode_cursor(cursor), limit=limit
    )
    items = [
        {
            "good_type": g.good_type.name.lower(),
            "fingerprint": fingerprint_hex(g.fingerprint),
            "product": g.product,
            "leaf_index": g.leaf_index,
            "registered_at": g.registered_at,
            "batch_position": g.batch_position,
        }
        for g in goods
    ]
    return JSONResponse(
        {"items": items, "next_cursor": next_cursor([g.entry_id for g in goods], limit)}
    )


@router.get(
    "/v1/creators/me/royalties",
    operation_id="get_my_royalty_statement",
    response_model=StatementOut,
    summary="Royalties owed on your goods, per good, platform and period (JSON or CSV).",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def royalty_statement(
    ctx: Context,
    creator: Creator,
    since: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    until: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    period: Literal["day", "month", "all"] = "month",
    format: Literal["json", "csv"] = "json",
) -> Response:
    assert creator.creator is not None
    end = until if until is not None else ctx.registry.clock() + 1
    statement = ctx.registry.royalty_statement(
        address_bytes(creator.creator), since=since, until=end, period=period
    )
    if format == "csv":
        return StreamingResponse(
            statement.csv_rows(),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="royalties.csv"'},
        )
    return JSONResponse(
        {
            "creator": statement.creator,
            "since": statement.since,
            "until": statement.until,
            "period": statement.period,
            "lines": [
                {
                    "period": line.period,
                    "good_type": line.good_type,
                    "fingerprint": line.fingerprint,
                    "platform": line.platform,
                    "recipient": line.recipient,
                    "currency": line.currency,
                    "amount": str(line.amount),
                    "transfers": line.transfers,
                }
                for line in statement.lines
            ],
            "totals": statement.totals(),
        }
    )


# -- Sign-In with Ethereum -----------------------------------------------------------------------


@router.post(
    "/v1/auth/siwe/nonce",
    operation_id="siwe_nonce",
    response_model=SiweNonceOut,
    summary="A fresh nonce for a Sign-In with Ethereum (EIP-4361) message.",
)
def siwe_nonce(ctx: Context, caller: Caller) -> Response:
    now = ctx.registry.clock()
    nonce = siwe.issue_nonce(ctx.registry.engine, now)
    return JSONResponse(
        {
            "nonce": nonce,
            "expires_at": now + siwe.NONCE_TTL,
            "domain": ctx.siwe_domain,
            "chain_id": ctx.registry.domain.chain_id,
            "uri": f"http://{ctx.siwe_domain}",
        }
    )


@router.post(
    "/v1/auth/siwe",
    operation_id="siwe_sign_in",
    response_model=TokenOut,
    summary="Exchange a signed EIP-4361 message for a creator session token (Bearer).",
)
def siwe_sign_in(body: SiweIn, request: Request, ctx: Context, caller: Caller) -> Response:
    token, expires_at = siwe.sign_in(
        ctx.registry.engine,
        body.message,
        body.signature,
        expected_domain=ctx.siwe_domain,
        expected_chain_id=ctx.registry.domain.chain_id,
        now=ctx.registry.clock(),
        token_key=request.app.state.authenticator.token_key,
    )
    address = siwe.parse_message(body.message).address
    return JSONResponse(
        {"token": token, "token_type": "Bearer", "expires_at": expires_at, "creator": address}
    )


__all__ = ["router"]
