"""Real-name attestations (实名制, issue 18 item 4): a platform attests its seller accounts'
verification levels; anyone reads a seller's current level and an attestation's proof.

A platform attests with its transfer-scoped key (an attestation is a statement about its own
sellers, as its sales reports are) AND its enrolled attestation key's EIP-712 signature
(``PlatformAttestation``: ``POST /v1/attestations/statement`` proposes the typed data), so
the statement is provably the platform's; the registry checks and logs it
(``registry.attestationstore``) and answers with the seller's keyed reference hash, the name
every TRANSFER and export gives the seller. Reads are public like credit scores: the log
holds the same facts.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.apikeys import parse_platform_id
from api.deps import Caller, Context, TransferPlatform
from api.idempotency import lookup_idempotent, request_hash, store_idempotent
from readmodels.attestationproofs import build_attestation_proof
from registry.attestations import Level
from registry.attestationstore import (
    Attestation,
    attest,
    read_attestation,
    read_current,
    statement_to_sign,
)
from registry.platformkeys import enroll_own_key
from verifier.attestationproof import AttestationProof
from verifier.schemas.attestations import (
    AttestationIn,
    AttestationOut,
    KeyEnrollmentIn,
    PlatformKeyOut,
    SellerLevelOut,
    StatementIn,
    StatementOut,
)

router = APIRouter(tags=["attestations"])

PlatformId = Annotated[str, Path(max_length=64)]
SellerHash = Annotated[str, Path(pattern=r"^0x[0-9a-f]{64}$")]
AttestationId = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]


def _out(attestation: Attestation) -> AttestationOut:
    return AttestationOut(
        id=attestation.id,
        platform=attestation.platform,
        seller_ref="0x" + attestation.seller_ref.hex(),
        level=attestation.level.label,  # type: ignore[arg-type]
        attested_at=attestation.attested_at,
        leaf_index=attestation.leaf_index,
        signer=attestation.signer,
    )


@router.post(
    "/v1/attestations/keys",
    operation_id="enroll_attestation_key",
    response_model=PlatformKeyOut,
    status_code=201,
    summary=(
        "Enroll your platform's attestation signing key (signed by it: proof of possession; "
        "a rotation signed by the key in force too); logged."
    ),
)
async def enroll_attestation_key(
    body: KeyEnrollmentIn, ctx: Context, principal: TransferPlatform
) -> JSONResponse:
    platform = principal.platform
    assert platform is not None
    registry = ctx.registry
    consent = body.consent_signature
    key = await run_in_threadpool(
        partial(
            enroll_own_key,
            registry,
            platform=platform,
            address=body.address,
            nonce=body.nonce,
            deadline=body.deadline,
            signature=bytes.fromhex(body.signature[2:]),
            consent_signature=None if consent is None else bytes.fromhex(consent[2:]),
        )
    )
    answer = PlatformKeyOut(
        id=key.id,
        platform=key.platform,
        address=key.address,
        enrolled_at=key.enrolled_at,
        enrolled_by=key.enrolled_by,
    )
    return JSONResponse(answer.model_dump(mode="json"), 201)


@router.post(
    "/v1/attestations/statement",
    operation_id="attestation_statement",
    response_model=StatementOut,
    summary="The EIP-712 statement your attestation key signs to attest a seller account.",
)
async def attestation_statement(
    body: StatementIn, ctx: Context, principal: TransferPlatform
) -> JSONResponse:
    platform = principal.platform
    assert platform is not None
    typed = await run_in_threadpool(
        partial(
            statement_to_sign,
            ctx.registry,
            platform=platform,
            reference=body.reference,
            level=Level.parse(body.level),
        )
    )
    message = typed["message"]
    assert isinstance(message, dict)
    answer = StatementOut(
        seller_ref=str(message["sellerRef"]),
        nonce=int(message["nonce"]),
        deadline=int(message["deadline"]),
        typed_data=typed,
    )
    return JSONResponse(answer.model_dump(mode="json"))


@router.post(
    "/v1/attestations",
    operation_id="attest_seller",
    response_model=AttestationOut,
    status_code=201,
    summary=(
        "Attest the real-name level of one of your platform's seller accounts, signed by "
        "its attestation key (logged)."
    ),
    responses={200: {"description": "A retry with the same Idempotency-Key: the original"}},
)
async def attest_seller(
    body: AttestationIn,
    ctx: Context,
    principal: TransferPlatform,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    platform = principal.platform
    assert platform is not None
    registry = ctx.registry
    digest = b""
    if idempotency_key is not None:
        # A retried attestation is answered with the first, not logged twice (two copies in
        # flight at once may both log: the same statement twice, the newer superseding). The
        # same request is the same statement (reference, level): a retry signs a freshly
        # proposed nonce, so the signature, nonce and deadline differ and are not compared.
        statement = json.dumps([body.reference, body.level]).encode()
        digest = request_hash(request.method, str(request.url.path), statement)
        stored = await run_in_threadpool(
            partial(
                lookup_idempotent,
                registry.engine,
                f"platform:{platform}",
                idempotency_key,
                digest,
                now=registry.clock(),
            )
        )
        if stored is not None:
            return Response(stored.body, 200, media_type=stored.media_type)
    done = await run_in_threadpool(
        partial(
            attest,
            registry,
            platform=platform,
            reference=body.reference,
            level=Level.parse(body.level),
            nonce=body.nonce,
            deadline=body.deadline,
            signature=bytes.fromhex(body.signature[2:]),
        )
    )
    answer = _out(done).model_dump_json()
    if idempotency_key is not None:
        await run_in_threadpool(
            partial(
                store_idempotent,
                registry.engine,
                f"platform:{platform}",
                idempotency_key,
                digest,
                201,
                answer,
                "application/json",
                now=registry.clock(),
            )
        )
    return Response(answer, 201, media_type="application/json")


@router.get(
    "/v1/attestations/{attestation_id}",
    operation_id="get_attestation",
    response_model=AttestationOut,
    summary="One logged real-name attestation.",
)
async def get_attestation(
    attestation_id: AttestationId, ctx: Context, caller: Caller
) -> JSONResponse:
    done = await run_in_threadpool(read_attestation, ctx.registry, attestation_id)
    return JSONResponse(_out(done).model_dump(mode="json"))


@router.get(
    "/v1/attestations/{attestation_id}/proof",
    operation_id="get_attestation_proof",
    response_model=AttestationProof,
    summary=(
        "An attestation's offline proof (tracemark-attestation-proof/v2 with its key's "
        "enrollment; /v1 for one logged before platform keys)."
    ),
)
async def get_attestation_proof(
    attestation_id: AttestationId, ctx: Context, caller: Caller
) -> JSONResponse:
    proof = await run_in_threadpool(build_attestation_proof, ctx.registry, attestation_id)
    return JSONResponse(proof.to_json())


@router.get(
    "/v1/attestations/platforms/{platform}/sellers/{seller}",
    operation_id="get_seller_level",
    response_model=SellerLevelOut,
    summary="A seller's current real-name level, by its keyed reference hash.",
)
async def seller_level(
    platform: PlatformId, seller: SellerHash, ctx: Context, caller: Caller
) -> JSONResponse:
    platform = parse_platform_id(platform)
    current = await run_in_threadpool(
        read_current, ctx.registry, platform, bytes.fromhex(seller[2:])
    )
    answer = SellerLevelOut(
        platform=platform,
        seller_ref=seller,
        level="none" if current is None else current.level.label,  # type: ignore[arg-type]
        attestation=None if current is None else _out(current),
    )
    return JSONResponse(answer.model_dump(mode="json"))


__all__ = ["router"]
