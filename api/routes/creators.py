"""A creator's signed writes: enroll and retire a code key, register and revoke a good.

Writes carry the creator's EIP-712 signature, which is their authentication: no session is
needed to register, and a stolen session cannot register anything. A retry with the same
Idempotency-Key gets the stored reply (``idempotent``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.context import ApiContext
from api.deps import Context, SignedWriter
from api.documents import registration_request, revocation_request, signed
from api.errors import problem_response
from api.idempotency import lookup_idempotent, request_hash, store_idempotent
from registry.codekeys import CodeKeyResult
from registry.signatures import verify_signature
from registry.signed import SignedMessage
from verifier.schemas import (
    CodeKeyIn,
    CodeKeyOut,
    CodeKeyRetireIn,
    CodeKeyRetireOut,
    EntryOut,
    RegistrationIn,
    RevocationIn,
)

router = APIRouter(tags=["creators"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]


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


async def _queued_entry(
    request: Request,
    ctx: ApiContext,
    message: SignedMessage,
    key: str | None,
    write: Callable[[], Any],
) -> Response:
    """One signed write queued for the log (``write`` returns its ``EntryRef``): 201 with the
    entry, replayed under the signer's idempotency key."""

    async def handle() -> JSONResponse:
        ref = await run_in_threadpool(write)
        return JSONResponse(_entry(ref), status_code=201)

    return await idempotent(request, ctx, message, key, handle)


async def _code_key_change(
    request: Request,
    ctx: ApiContext,
    message: SignedMessage,
    key: str | None,
    change: Callable[[], CodeKeyResult],
    answer: type[CodeKeyOut | CodeKeyRetireOut],
    status_code: int,
) -> Response:
    """One signed change of a creator's code keys (``change`` returns its ``CodeKeyResult``):
    the keys cached for its signer are forgotten, and the result is answered as ``answer``
    (fields in that model's order), replayed under the signer's idempotency key."""

    async def handle() -> JSONResponse:
        result = await run_in_threadpool(change)
        ctx.code_keys.forget(message.signer_bytes)
        document = answer.model_validate(result.as_dict()).model_dump()
        return JSONResponse(document, status_code=status_code)

    return await idempotent(request, ctx, message, key, handle)


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
    code_key = bytes.fromhex(body.code_key[2:])
    change = partial(ctx.registry.enroll_code_key, message, code_key)
    return await _code_key_change(request, ctx, message, key, change, CodeKeyOut, 201)


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
    change = partial(ctx.registry.retire_code_key, message)
    return await _code_key_change(request, ctx, message, key, change, CodeKeyRetireOut, 200)


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
    write = partial(ctx.registry.register, registration)
    return await _queued_entry(request, ctx, registration.signed, key, write)


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
    write = partial(ctx.registry.revoke, revocation)
    return await _queued_entry(request, ctx, revocation.signed, key, write)


__all__ = ["router"]
