"""Auditors and anyone holding evidence: the log's signed heads and proofs, a good's history,
its proof bundle (``tracemark-bundle/v4``) and, for a good never registered, the proof of its
absence (``tracemark-absence/v2``), both of which check against the chain alone."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from api.deps import GOOD_TYPES, Auditor, Caller, Context
from api.errors import problem_response
from api.pagination import Cursor, decode_cursor, encode_cursor
from api.tlogproofs import tlog_proof_response
from api.trustroot import registry_trust_root
from readmodels.bundles import build_absence, build_bundle
from readmodels.tlogproofs import build_good_tlog_proof
from registry.edges import HASH32_PATTERN
from registry.errors import NotFound
from registry.fingerprints import parse_fingerprint
from registry.treehead import TreeHead
from verifier.schemas import DEFAULT_PAGE, MAX_PAGE, GoodTypeName, Page, ProofOut, RegistryOut
from verifier.trust import WELL_KNOWN_PATH

router = APIRouter(tags=["auditors"])

GoodTypePath = Annotated[GoodTypeName, Path()]
ProofFormat = Annotated[
    Literal["bundle", "tlog-proof"],
    Query(
        alias="format",
        description="bundle (tracemark-bundle JSON), or tlog-proof: the REGISTER entry as a "
        "c2sp.org/tlog-proof@v1 text file (one entry under the head's checkpoint, no state "
        "proof); both check with `tracemark verify`.",
    ),
]
FingerprintPath = Annotated[str, Path(pattern=HASH32_PATTERN)]


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry_id: int
    leaf_index: int | None
    kind: str
    good_type: str
    fingerprint: str
    actor: str
    payload_hash: str
    timestamp: int | None
    batch_position: int | None


@router.get(
    "/v1/registry",
    operation_id="get_registry",
    response_model=RegistryOut,
    summary="The registry's address and the EIP-712 domain creators sign under.",
)
def registry_identity(ctx: Context, caller: Caller) -> RegistryOut:
    domain = ctx.registry.domain
    trust = registry_trust_root(ctx.registry, ctx.trust_root)
    return RegistryOut(
        address=ctx.registry.address,
        domain=domain.as_dict(),
        chain_id=domain.chain_id,
        contract=domain.verifying_contract,
        trust_root_url=trust.registry_url.rstrip("/") + WELL_KNOWN_PATH,
        trust_fingerprint=trust.fingerprint(),
    )


@router.get(
    WELL_KNOWN_PATH,
    operation_id="get_trust_root",
    summary="This registry's trust root (tracemark-trust/v1): pin it after comparing its "
    "fingerprint out of band.",
)
def trust_root(ctx: Context, caller: Caller) -> Response:
    trust = registry_trust_root(ctx.registry, ctx.trust_root)
    return Response(
        trust.to_json(),
        media_type="application/json",
        headers={"X-Tracemark-Trust-Fingerprint": trust.fingerprint()},
    )


@router.get("/v1/log/head", operation_id="get_tree_head", summary="The newest signed tree head.")
def tree_head(ctx: Context, caller: Caller) -> TreeHead:
    # NOTE: the primary's, never a replica's: a client that saw a head must never see an older
    # one after it (a monitor calls that a rollback), and a replica's freshness comes and goes.
    head = ctx.registry.latest_tree_head()
    if head is None:
        raise NotFound("the log is empty: no tree head signed yet")
    return head


@router.get(
    "/v1/log/proof/inclusion",
    operation_id="get_inclusion_proof",
    summary="RFC 9162 inclusion proof of a leaf in a tree size.",
)
def inclusion(
    ctx: Context,
    caller: Caller,
    leaf_index: Annotated[int, Query(ge=0, le=2**63 - 1)],
    tree_size: Annotated[int, Query(ge=1, le=2**63 - 1)],
) -> ProofOut:
    proof = ctx.read(lambda registry: registry.inclusion_proof(leaf_index, tree_size))
    return ProofOut(
        tree_size=tree_size, leaf_index=leaf_index, proof=["0x" + p.hex() for p in proof]
    )


@router.get(
    "/v1/log/proof/consistency",
    operation_id="get_consistency_proof",
    summary="RFC 9162 consistency proof between two tree sizes.",
)
def consistency(
    ctx: Context,
    caller: Caller,
    from_size: Annotated[int, Query(ge=0, le=2**63 - 1)],
    tree_size: Annotated[int, Query(ge=1, le=2**63 - 1)],
) -> ProofOut:
    proof = ctx.read(lambda registry: registry.consistency_proof(from_size, tree_size))
    return ProofOut(tree_size=tree_size, from_size=from_size, proof=["0x" + p.hex() for p in proof])


@router.get(
    "/v1/goods/{good_type}/{fingerprint}/proof",
    operation_id="get_proof_bundle",
    summary="The good's proof bundle (tracemark-bundle/v4): check it with the chain alone.",
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/plain": {"schema": {"type": "string"}},
            }
        }
    },
)
async def proof_bundle(
    good_type: GoodTypePath,
    fingerprint: FingerprintPath,
    ctx: Context,
    caller: Caller,
    proof_format: ProofFormat = "bundle",
) -> Response:
    good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    if proof_format == "tlog-proof":
        proof = await run_in_threadpool(
            ctx.read, lambda registry: build_good_tlog_proof(registry, *good)
        )
        return tlog_proof_response(proof, "registration")
    # From the replica while fresh: its head is one the replica has, and checks all the same.
    bundle = await run_in_threadpool(ctx.read, lambda registry: build_bundle(registry, *good))
    return Response(
        bundle.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="bundle.json"'},
    )


@router.get(
    "/v1/goods/{good_type}/{fingerprint}/absence",
    operation_id="get_absence_proof",
    summary="Proof that the good is not registered as of a signed, anchored head "
    "(tracemark-absence/v2): check it with the chain alone.",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        409: problem_response("The good is registered: fetch its proof bundle (/proof)"),
    },
)
async def absence_proof(
    good_type: GoodTypePath, fingerprint: FingerprintPath, ctx: Context, caller: Caller
) -> Response:
    good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    # An absence is bad news for the good: a replica's is confirmed by the primary's history
    # (a good registered since must get its 409, not a proof it is missing from an older head).
    absence = await run_in_threadpool(
        ctx.read,
        lambda registry: build_absence(registry, *good),
        confirm=lambda _: not ctx.registry.history(*good),
    )
    return Response(
        absence.to_json(),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="absence.json"'},
    )


@router.get(
    "/v1/goods/{good_type}/{fingerprint}/history",
    operation_id="get_good_history",
    summary="Every entry naming the good, in log order (auditors; cursor-paginated).",
)
def history(
    good_type: GoodTypePath,
    fingerprint: FingerprintPath,
    ctx: Context,
    auditor: Auditor,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> Page[HistoryEntry]:
    good = (GOOD_TYPES[good_type], parse_fingerprint(fingerprint))
    entries = ctx.read(lambda registry: registry.history(*good), confirm=bool)
    if not entries:
        raise NotFound("no entry names this good")
    position = decode_cursor(cursor)
    page = entries[position : position + limit]
    return Page[HistoryEntry](
        items=[HistoryEntry(**entry.as_dict()) for entry in page],
        next_cursor=encode_cursor(position + limit) if position + limit < len(entries) else None,
    )
