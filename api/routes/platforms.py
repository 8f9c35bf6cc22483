"""Partner platforms: is this good authentic (by fingerprint, code or file), and transfers.

``POST /v1/verify`` is the hot path: an async handler (no thread hop), the raw-driver lookup
of ``verifier.authenticity``, the answer built as a plain dict, and the verification event
handed to a buffer that writes behind the request.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import pow, ratelimit
from api.auth import Forbidden, Principal, authenticated, caller, require_scope
from api.context import MAX_JSON_BYTES, MAX_UPLOAD_BYTES, ApiContext, context
from api.errors import PayloadTooLarge, problem_response
from api.pagination import Cursor, decode_cursor, next_cursor
from api.pow import POW_HEADER, ProofOfWorkRequired
from registry.eip712 import parse_address, typed_data
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, fingerprint_hex, parse_fingerprint
from registry.handover import HandoverRequest, IssuedAuthorization
from registry.transfers import Party, TransferReceipt, TransferRequest
from registry.verifications import VerificationRecord
from verifier import authenticity
from verifier.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    GoodTypeName,
    HandoverIn,
    HandoverOut,
    Page,
    PartyIn,
    PowChallengeOut,
    ReceiptOut,
    TransferIn,
    VerifyIn,
    VerifyOut,
)

router = APIRouter(tags=["platforms"])

GOOD_TYPES: dict[str, GoodType] = {
    "file": GoodType.FILE,
    "code": GoodType.CODE,
    "item": GoodType.ITEM,
}
USE_NAMES = {1: "single", 2: "transferable"}
ANONYMOUS_PLATFORM = "anonymous"


#: The fields of a verify answer that describe a registered good (null for an unknown one).
EMPTY_FACTS: dict[str, Any] = dict.fromkeys(
    (
        "creator",
        "product",
        "use",
        "leaf_index",
        "holder",
        "anchor",
        "verifications",
        "creator_identity",
    )
)


def verify_answer(
    ctx: ApiContext,
    good_type: GoodType,
    fingerprint: bytes,
    *,
    claimed_creator: str | None,
    claimed_product: str | None,
) -> tuple[dict[str, Any], str]:
    """The full answer as a dict matching ``VerifyOut``, and its verdict."""
    return answer_of(
        ctx,
        good_type,
        fingerprint,
        ctx.lookup.facts(good_type, fingerprint),
        claimed_creator=claimed_creator,
        claimed_product=claimed_product,
    )


def answer_of(
    ctx: ApiContext,
    good_type: GoodType,
    fingerprint: bytes,
    facts: authenticity.GoodFacts | None,
    *,
    claimed_creator: str | None,
    claimed_product: str | None,
) -> tuple[dict[str, Any], str]:
    """``verify_answer`` of facts read already."""
    decision = authenticity.decide(
        facts, claimed_creator=claimed_creator, claimed_product=claimed_product
    )
    block, seen_at = ctx.chain_watch.view()
    answer: dict[str, Any] = {
        "verdict": decision.verdict,
        "good_type": good_type.name.lower(),
        "fingerprint": fingerprint_hex(fingerprint),
        "chain_block": block,
        "chain_seen_at": seen_at,
        "risk": {
            "score": decision.score,
            "signals": [{"code": s.code, "detail": s.detail} for s in decision.all_signals],
        },
        "coarse": False,
        **EMPTY_FACTS,
    }
    if facts is not None:
        anchor = None
        if facts.anchor is not None:
            a = facts.anchor
            anchor = {
                "chain_id": ctx.registry.domain.chain_id,
                "contract": ctx.registry.domain.verifying_contract,
                "tx_hash": "0x" + a.tx_hash.hex(),
                "block_number": a.block_number,
                "tree_size": a.tree_size,
                "state": "final" if a.final else "unconfirmed",
                "confirmations": None if block is None else max(0, block - a.block_number + 1),
            }
        answer.update(
            creator=facts.creator,
            product=facts.product,
            use=USE_NAMES[int(facts.use)],
            leaf_index=facts.leaf_index,
            holder={"platform": facts.holder_platform, "since_transfer": facts.last_transfer_id},
            anchor=anchor,
            verifications={
                "times": facts.times_verified,
                "platforms": facts.platforms_verified,
                "first_at": facts.first_verified_at,
            },
            creator_identity=(
                None if ctx.identities is None else ctx.identities.answer(facts.creator)
            ),
        )
    return answer, decision.verdict


def answer_response(answer: dict[str, Any]) -> Response:
    """A verify answer as JSON: the same compact UTF-8 document ``JSONResponse`` makes,
    encoded by orjson (the hot path's largest single cost with the standard library's)."""
    return Response(orjson.dumps(answer), media_type="application/json")


def _record(
    ctx: ApiContext,
    principal: Principal,
    good_type: GoodType,
    fingerprint: bytes,
    via: str,
    verdict: str,
) -> None:
    ctx.telemetry.add(
        VerificationRecord(
            at=ctx.registry.clock(),
            platform=principal.platform or ANONYMOUS_PLATFORM,
            good_type=int(good_type),
            fingerprint=fingerprint,
            via=via,
            verdict=verdict,
        )
    )


@router.post(
    "/v1/verify/challenge",
    operation_id="verify_challenge",
    response_model=PowChallengeOut,
    summary="A proof-of-work challenge for one public (anonymous) code lookup.",
    responses={429: problem_response("Rate limited (Retry-After says when to come back)")},
)
async def verify_challenge(
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticated)],
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
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticated)],
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
        answer, verdict = verify_answer(
            ctx,
            good_type,
            fingerprint,
            claimed_creator=claimed_creator,
            claimed_product=body.product,
        )
        _record(ctx, principal, good_type, fingerprint, "fingerprint", verdict)
        return answer_response(answer)

    # By code: the registry computes the keyed fingerprint under the claimed creator's key.
    assert body.code is not None
    if good_type is not GoodType.CODE:
        raise InvalidInput("a code lookup needs good_type code")
    if claimed_creator is None:
        raise InvalidInput("a code lookup must name the creator it claims to be from")
    # A platform's key, or a creator asking about its own codes, gets the full answer on its
    # own budget. Anyone else is the public tier (a session from a fresh wallet is anyone).
    public = principal.kind != "platform" and principal.creator != claimed_creator
    if public:
        _charge_public_lookup(ctx, request, principal, body)
        probe_key = principal.address_key
    else:
        probe_key = principal.rate_key
    ctx.limiter.ensure_probe_budget(probe_key)
    # parse_address checked it: the 20 bytes, without parsing it again.
    fingerprinters = ctx.fingerprinters(bytes.fromhex(claimed_creator[2:]))
    if not fingerprinters:
        # Uniform with "no such code": who has enrolled a key is not for probing either.
        ctx.limiter.record_probe_failure(probe_key)
        return answer_response(_unknown_code(public))
    # The code under its creator's current key names it for the per-code limit, however
    # many keys are tried: one check a lookup, one bucket a code.
    fingerprint = fingerprinters[0].fingerprint(body.code)
    ctx.limiter.check(ratelimit.FINGERPRINT, fingerprint.hex())
    if len(fingerprinters) == 1:
        facts = ctx.lookup.facts(good_type, fingerprint)
    else:
        # A rotated key: the code under each older live key too, looked up in one statement.
        candidates = [fingerprint, *(f.fingerprint(body.code) for f in fingerprinters[1:])]
        facts = ctx.lookup.facts_any(good_type, candidates)
        if facts is not None:
            fingerprint = facts.fingerprint
    answer, verdict = answer_of(
        ctx,
        good_type,
        fingerprint,
        facts,
        claimed_creator=claimed_creator,
        claimed_product=body.product,
    )
    _record(ctx, principal, good_type, fingerprint, "code", verdict)
    if verdict == authenticity.UNKNOWN:
        ctx.limiter.record_probe_failure(probe_key)
    if public:
        return answer_response(_coarse(answer))
    return answer_response(answer)


def _charge_public_lookup(
    ctx: ApiContext, request: Request, principal: Principal, body: VerifyIn
) -> None:
    """What a public code lookup costs, before any lookup: its proof of work (for this very
    body, once), then its address's budget, then everyone's (THREATS 38, issue 12)."""
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
    ctx.limiter.check(ratelimit.CODE_LOOKUP, principal.address_key)
    ctx.limiter.check(ratelimit.CODE_LOOKUP_ALL, ratelimit.EVERYONE)


def _coarse(answer: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous code lookup learns: authentic or not, nothing to mine."""
    verdict = answer["verdict"] if answer["verdict"] == authenticity.AUTHENTIC else "not_authentic"
    return {"verdict": verdict, "good_type": answer["good_type"], "coarse": True}


def _unknown_code(coarse: bool) -> dict[str, Any]:
    answer = {
        "verdict": authenticity.UNKNOWN,
        "good_type": "code",
        "fingerprint": None,
        "chain_block": None,
        "chain_seen_at": None,
        **EMPTY_FACTS,
        "risk": {
            "score": authenticity.decide(None).score,
            "signals": [{"code": "unregistered", "detail": "no creator registered this good"}],
        },
        "coarse": False,
    }
    return _coarse(answer) if coarse else answer


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
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(authenticated)],
    creator: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$")] = None,
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
    answer, verdict = verify_answer(
        ctx, GoodType.FILE, fingerprint, claimed_creator=claimed, claimed_product=None
    )
    _record(ctx, principal, GoodType.FILE, fingerprint, "file", verdict)
    return answer_response(answer)


# -- transfers ---------------------------------------------------------------------------------


def _party(value: PartyIn, default_platform: str, role: str, *, authorized: bool = False) -> Party:
    if value.creator:
        if value.platform is not None or value.reference is not None:
            raise InvalidInput(f"{role}: the creator is named by creator=true alone")
        return Party(None, None)
    if value.reference is None and not (authorized and value.platform is not None):
        # A seller named by a hand-over authorization may be its platform alone: the buying
        # platform need not learn the holder's reference.
        raise InvalidInput(f"{role}: give a reference (or creator=true)")
    return Party(value.platform or default_platform, value.reference)


def receipt_out(receipt: TransferReceipt) -> dict[str, Any]:
    message = receipt.message()
    return {
        "transfer_id": receipt.transfer_id,
        "good_type": receipt.good_type.name.lower(),
        "fingerprint": fingerprint_hex(receipt.fingerprint),
        "log_index": receipt.log_index,
        "transfer_hash": "0x" + receipt.transfer_hash.hex(),
        "timestamp": receipt.timestamp,
        "signature": "0x" + receipt.signature.hex(),
        "signer": receipt.signer,
        "domain": receipt.domain.as_dict(),
        "typed_data": typed_data("TransferReceipt", message, receipt.domain),
        "platform": receipt.platform,
        "seller": receipt.seller,
        "buyer": receipt.buyer,
        "price": None if receipt.price is None else str(receipt.price),
        "currency": receipt.currency,
        "final": receipt.final,
        "creator": receipt.creator,
        "royalties": [
            {"recipient": s.recipient, "bps": s.bps, "amount": str(s.amount)}
            for s in receipt.royalties
        ],
        "seller_amount": None if receipt.seller_amount is None else str(receipt.seller_amount),
        "replayed": receipt.replayed,
    }


@router.post(
    "/v1/transfers",
    operation_id="record_transfer",
    response_model=ReceiptOut,
    status_code=201,
    summary="Report a hand-over or sale; get the royalty split and a signed receipt.",
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the original receipt"},
        403: problem_response(
            "The seller is on another platform that did not consent (not-the-holder), or the "
            "hand-over authorization is unknown, used, expired or not for this sale"
        ),
        409: problem_response("Double sale (the seller is not the holder), revoked or consumed"),
    },
)
def record_transfer(
    body: TransferIn,
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(require_scope("transfer"))],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
    ] = None,
) -> Response:
    assert principal.platform is not None
    request = TransferRequest(
        platform=principal.platform,
        good_type=GOOD_TYPES[body.good_type],
        fingerprint=parse_fingerprint(body.fingerprint),
        seller=_party(
            body.seller, principal.platform, "seller", authorized=body.authorization is not None
        ),
        buyer=_party(body.buyer, principal.platform, "buyer"),
        price=None if body.price is None else int(body.price),
        currency=body.currency,
        final=body.final,
        idempotency_key=idempotency_key,
        authorization=body.authorization,
    )
    receipt = ctx.registry.transfer(request)
    return JSONResponse(receipt_out(receipt), status_code=200 if receipt.replayed else 201)


def handover_out(issued: IssuedAuthorization) -> dict[str, Any]:
    return {
        "authorization_id": issued.authorization_id,
        "authorization": issued.token,
        "good_type": issued.good_type.name.lower(),
        "fingerprint": fingerprint_hex(issued.fingerprint),
        "buyer_platform": issued.buyer_platform,
        "expires_at": issued.expires_at,
    }


@router.post(
    "/v1/transfers/authorizations",
    operation_id="authorize_handover",
    response_model=HandoverOut,
    status_code=201,
    summary="Consent, once, that another platform may move a good your platform holds.",
    responses={
        403: problem_response("Your platform does not hold the good under that reference"),
    },
)
def authorize_handover(
    body: HandoverIn,
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(require_scope("transfer"))],
) -> Response:
    assert principal.platform is not None
    issued = ctx.registry.authorize_handover(
        HandoverRequest(
            platform=principal.platform,
            good_type=GOOD_TYPES[body.good_type],
            fingerprint=parse_fingerprint(body.fingerprint),
            reference=body.reference,
            buyer_platform=body.buyer_platform,
            seconds=body.expires_in,
        )
    )
    # NOTE: the token is in this answer only; only its hash is stored, and it is never logged.
    return JSONResponse(
        handover_out(issued), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.get(
    "/v1/transfers/{transfer_id}",
    operation_id="get_transfer",
    response_model=ReceiptOut,
    summary="One of your platform's transfers, as its receipt.",
)
def get_transfer(
    transfer_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(require_scope("transfer"))],
) -> Response:
    try:
        receipt = ctx.registry.receipt(transfer_id)
    except NotFound:
        receipt = None
    if receipt is None or receipt.platform != principal.platform:
        # The same answer for "not yours" and "does not exist" (THREATS 36).
        raise NotFound(f"no transfer {transfer_id} of yours")
    return JSONResponse(receipt_out(receipt))


@router.get(
    "/v1/transfers",
    operation_id="list_transfers",
    response_model=Page[ReceiptOut],
    summary="Your platform's transfers, oldest first (cursor-paginated).",
)
def list_transfers(
    ctx: Annotated[ApiContext, Depends(context)],
    principal: Annotated[Principal, Depends(require_scope("transfer"))],
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    good_type: GoodTypeName | None = None,
    fingerprint: Annotated[str | None, Query(pattern=r"^0x[0-9a-fA-F]{64}$")] = None,
) -> Response:
    assert principal.platform is not None
    after = decode_cursor(cursor)
    good = None
    if fingerprint is not None:
        if good_type is None:
            raise InvalidInput("filtering by fingerprint needs good_type too")
        good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    ids = ctx.registry.transfer_ids(principal.platform, after=after, limit=limit, good=good)
    items = [receipt_out(ctx.registry.receipt(i)) for i in ids]
    return JSONResponse({"items": items, "next_cursor": next_cursor(ids, limit)})


class VerifyFront:
    """``POST /v1/verify`` answered in front of the app's middleware stack and router.

    NOTE: the verify endpoint's throughput is measured against a bare endpoint
    (``bench/verify_bench.py``), and the stack (seven middleware layers, the router, FastAPI's
    dependency solving and body handling) cost about as much as everything ``verify`` does.
    ``TracemarkApp`` hands this route here first. It does what the stack would for it: caps
    the body (``MAX_JSON_BYTES``), parses it with the same model (pydantic-core, from
    bytes), authenticates with the same ``caller``, calls the same ``verify`` handler, and
    answers an error with the app's own exception handlers (a crash too, as
    ``ServerErrorMiddleware`` would). Anything unusual (another content type, a body over
    the cap or that the model refuses) goes through the whole stack to the FastAPI route,
    so those answers are exactly FastAPI's, and the OpenAPI document stays the route's.
    """

    def __init__(self, app: FastAPI, stack: ASGIApp) -> None:
        self.app = app
        self.stack = stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _json_or_untyped(scope) or _declared_over(scope, MAX_JSON_BYTES):
            await self.stack(scope, receive, send)
            return
        raw, complete = await _read_body(receive, MAX_JSON_BYTES)
        if raw is None:  # the client went away
            return
        if not complete:  # over the cap without a declared length: the stack answers 413
            await self.stack(scope, _replay(raw, receive), send)
            return
        try:
            body = VerifyIn.model_validate_json(raw)
        except ValidationError:
            await self.stack(scope, _replay(raw), send)
            return
        request = Request(scope, receive)
        try:
            response = await verify(body, self.app.state.context, caller(request), request)
        except Exception as exc:
            response = await self._handled(request, exc)
        await response(scope, receive, send)

    async def _handled(self, request: Request, exc: Exception) -> Response:
        """The app's own answer to ``exc`` (its handler for the nearest class, as the stack's
        ``ExceptionMiddleware`` and ``ServerErrorMiddleware`` pick them)."""
        handlers = self.app.exception_handlers
        for kind in type(exc).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(request, exc)
                return await answer if inspect.isawaitable(answer) else answer
        raise exc


def _json_or_untyped(scope: Scope) -> bool:
    """Whether FastAPI would read this body as JSON: no content type, or application/json."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json"
    return True


def _declared_over(scope: Scope, limit: int) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return not value.isdigit() or int(value) > limit
    return False


async def _read_body(receive: Receive, limit: int) -> tuple[bytes | None, bool]:
    """The body, and whether it is all there: (None, False) on a disconnect; (the bytes so
    far, False) once they pass ``limit``."""
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        received += len(chunk)
        if received > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, rest: Receive | None = None) -> Receive:
    """``body`` again, then (when it was cut short) whatever ``rest`` still has."""
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": rest is not None}
        if rest is None:
            return {"type": "http.disconnect"}
        return await rest()

    return receive


__all__ = ["VerifyFront", "receipt_out", "router", "verify_answer"]
