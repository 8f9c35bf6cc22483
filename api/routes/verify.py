"""Is this good authentic: ``POST /v1/verify`` (by fingerprint or by code), its proof-of-work
challenge, and ``POST /v1/verify/file``.

``POST /v1/verify`` is the hot path: an async handler (no thread hop), the raw-driver lookup
of ``readmodels.authenticity``, the answer built as a plain dict (``api.verify_answers``), the
telemetry handed to a buffer that writes behind the request, and the whole route answered in
front of the middleware stack (``api.verify_front``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from api import pow, ratelimit
from api.auth import deferred_charges
from api.context import MAX_UPLOAD_BYTES, ApiContext
from api.deps import GOOD_TYPES, Caller, Context, Principal
from api.errors import PayloadTooLarge, problem_response
from api.pow import POW_HEADER, ProofOfWorkRequired
from api.principal import Forbidden
from api.verify_answers import (
    answer_response,
    authenticity_answer,
    authenticity_answer_of,
    coarse,
    record_telemetry,
    unknown_code,
)
from readmodels import authenticity
from registry.edges import ADDRESS_PATTERN
from registry.eip712 import parse_address
from registry.errors import InvalidInput
from registry.fingerprints import GoodType, parse_fingerprint
from verifier.schemas import PowChallengeOut, VerifyIn, VerifyOut

router = APIRouter(tags=["platforms"])


@router.post(
    "/v1/verify/challenge",
    operation_id="verify_challenge",
    response_model=PowChallengeOut,
    summary="A proof-of-work challenge for one public (anonymous) code lookup.",
    responses={429: problem_response("Rate limited (Retry-After says when to come back)")},
)
async def verify_challenge(
    ctx: Context,
    principal: Caller,
) -> Response:
    """Stateless (MACed, short-lived, usable once): solve it for the lookup's body and send
    ``X-Tracemark-Pow: <challenge>.<nonce>`` with it (``api.pow``). Keys need none."""
    if ctx.proof_of_work is None:
        raise ProofOfWorkRequired("this registry issues no challenges: code lookups need a key")
    issued = ctx.proof_of_work.issue()
    return JSONResponse(
        {
            "challenge": issued.challenge,
            "difficulty": issued.difficulty,
            "expires_at": issued.expires_at,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/v1/verify",
    operation_id="verify_good",
    response_model=VerifyOut,
    summary="Is this good authentic? By fingerprint, or by code and the creator it claims.",
    responses={
        400: problem_response("Invalid request, or a proof of work that does not hold"),
        428: problem_response(
            "A public code lookup without a proof of work (POST /v1/verify/challenge first)"
        ),
        429: problem_response("Rate limited (Retry-After says when to come back)"),
    },
    openapi_extra={
        "parameters": [
            {
                "name": POW_HEADER,
                "in": "header",
                "required": False,
                "description": "For a code lookup without an API key: <challenge>.<nonce>, "
                "the solved challenge of POST /v1/verify/challenge for this body",
                "schema": {"type": "string", "maxLength": 128},
            }
        ]
    },
)
async def verify(
    body: VerifyIn,
    ctx: Context,
    principal: Caller,
    request: Request,
) -> Response:
    if principal.kind == "platform" and "verify" not in principal.scopes:
        raise Forbidden("this API key has no verify scope")
    good_type = GOOD_TYPES[body.good_type]
    if (body.fingerprint is None) == (body.code is None):
        raise InvalidInput("give exactly one of fingerprint or code")
    claimed_creator = None if body.creator is None else parse_address(body.creator)
    if body.fingerprint is not None:
        fingerprint = parse_fingerprint(body.fingerprint)
        answer, verdict = authenticity_answer(
            ctx,
            good_type,
            fingerprint,
            claimed_creator=claimed_creator,
            claimed_product=body.product,
        )
        record_telemetry(ctx, principal, good_type, fingerprint, "fingerprint", verdict)
        return answer_response(answer)

    # By code: the registry computes the keyed fingerprint under the claimed creator's key.
    assert body.code is not None
    if good_type is not GoodType.CODE:
        raise InvalidInput("a code lookup needs good_type code")
    if claimed_creator is None:
        raise InvalidInput("a code lookup must name the creator it claims to be from")
    return await _verify_code(ctx, request, principal, body, good_type, claimed_creator)


async def _verify_code(
    ctx: ApiContext,
    request: Request,
    principal: Principal,
    body: VerifyIn,
    good_type: GoodType,
    claimed_creator: str,
) -> Response:
    """``POST /v1/verify`` by code, once the request is well formed: its budgets, the lookup
    under the claimed creator's keys, the answer (coarse for the public tier). Its budgets
    (the public tier's two, the probe budget, the code's) are one ``acheck_all``: at once in
    memory, one round trip to Redis for a shared limiter (``api.windowscript``), in the order
    they were checked one by one; a failed probe afterwards is one more."""
    assert body.code is not None
    # A platform's key, or a creator asking about its own codes, gets the full answer on its
    # own budget. Anyone else is the public tier (a session from a fresh wallet is anyone).
    public = principal.kind != "platform" and principal.creator != claimed_creator
    # The request's own charge first, when its caller left it to this handler (``defer``).
    budgets = deferred_charges(request)
    if public:
        _check_proof_of_work(ctx, request, body)
        probe_key = principal.address_key
        budgets += [
            ratelimit.Check(ratelimit.CODE_LOOKUP, principal.address_key),
            ratelimit.Check(ratelimit.CODE_LOOKUP_ALL, ratelimit.EVERYONE),
        ]
    else:
        probe_key = principal.rate_key
    budgets.append(ratelimit.probe_budget(probe_key))
    # parse_address checked it: the 20 bytes, without parsing it again.
    creator = bytes.fromhex(claimed_creator[2:])
    fingerprinters = ctx.code_keys.get(creator)
    if fingerprinters is None:
        # Not in memory: the budgets first, then the read of the creator's keys (a spent
        # budget costs no database read, an unknown creator costs one each time).
        await ctx.limiter.acheck_all(budgets)
        budgets = []
        fingerprinters = ctx.fingerprinters(creator)
    if not fingerprinters:
        # Uniform with "no such code": who has enrolled a key is not for probing either.
        await ctx.limiter.acheck_all(budgets)
        await ctx.limiter.arecord_probe_failure(probe_key)
        return answer_response(unknown_code(public))
    # The code under its creator's current key names it for the per-code limit, however
    # many keys are tried: one check a lookup, one bucket a code.
    fingerprint = fingerprinters[0].fingerprint(body.code)
    budgets.append(ratelimit.Check(ratelimit.FINGERPRINT, fingerprint.hex()))
    await ctx.limiter.acheck_all(budgets)
    if len(fingerprinters) == 1:
        facts = ctx.lookup.facts(good_type, fingerprint)
    else:
        # A rotated key: the code under each older live key too, looked up in one statement.
        candidates = [fingerprint, *(f.fingerprint(body.code) for f in fingerprinters[1:])]
        facts = ctx.lookup.facts_any(good_type, candidates)
        if facts is not None:
            fingerprint = facts.fingerprint
    answer, verdict = authenticity_answer_of(
        ctx,
        good_type,
        fingerprint,
        facts,
        claimed_creator=claimed_creator,
        claimed_product=body.product,
    )
    record_telemetry(ctx, principal, good_type, fingerprint, "code", verdict)
    if verdict == authenticity.UNKNOWN:
        await ctx.limiter.arecord_probe_failure(probe_key)
    if public:
        return answer_response(coarse(answer))
    return answer_response(answer)


def _check_proof_of_work(ctx: ApiContext, request: Request, body: VerifyIn) -> None:
    """A public code lookup's proof of work, for this very body, once; before any of its
    budgets (THREATS 38, issue 12): its address's, then everyone's."""
    proof = None
    for name, value in request.scope["headers"]:
        if name == b"x-tracemark-pow":
            proof = value.decode("latin-1")
            break
    if ctx.proof_of_work is None:
        raise ProofOfWorkRequired("this registry issues no challenges: code lookups need a key")
    assert body.code is not None
    binding = pow.body_binding(body.good_type, body.creator, body.product, body.code)
    ctx.proof_of_work.check(proof, binding)


@router.post(
    "/v1/verify/file",
    operation_id="verify_file",
    response_model=VerifyOut,
    summary="Upload a file (raw body, streamed, size-capped); it is hashed, never stored.",
    responses={
        400: problem_response("The body is empty: an empty file is not a good"),
        413: problem_response("The file is larger than the upload cap"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "x-max-bytes": MAX_UPLOAD_BYTES,
            "content": {
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary", "maxLength": MAX_UPLOAD_BYTES}
                }
            },
        }
    },
)
async def verify_file(
    request: Request,
    ctx: Context,
    principal: Caller,
    creator: Annotated[str | None, Query(pattern=ADDRESS_PATTERN)] = None,
) -> Response:
    if principal.kind == "platform" and "verify" not in principal.scopes:
        raise Forbidden("this API key has no verify scope")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > ctx.max_upload_bytes:
        raise PayloadTooLarge(f"the file is over {ctx.max_upload_bytes:,} bytes")
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > ctx.max_upload_bytes:
            raise PayloadTooLarge(f"the file is over {ctx.max_upload_bytes:,} bytes")
        digest.update(chunk)
    if size == 0:
        # NOTE: the empty file's SHA-256 is no one's good (registration refuses it too): a
        # verdict on it would only answer a client that forgot to send the file.
        raise InvalidInput("the body is empty: send the file's bytes")
    fingerprint = digest.digest()
    claimed = None if creator is None else parse_address(creator)
    answer, verdict = authenticity_answer(
        ctx, GoodType.FILE, fingerprint, claimed_creator=claimed, claimed_product=None
    )
    record_telemetry(ctx, principal, GoodType.FILE, fingerprint, "file", verdict)
    return answer_response(answer)


__all__ = ["router", "verify"]
