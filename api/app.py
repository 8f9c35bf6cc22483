"""The HTTP API's composition root: ``create_app`` wires the registry (and chain) into routes.

Issue 4 builds the creators', platforms' and auditors' routes on this; today it serves the
health checks and the log's public reads (signed heads and proofs), problem+json throughout.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, text

from anchoring.chain import Chain
from anchoring.models import AnchorerState
from api import errors as api_errors
from registry.db import read_transaction
from registry.errors import NotFound
from registry.service import Registry

#: The worker's heartbeat may be this old before ``/readyz`` says not ready (seconds).
HEARTBEAT_MAX_AGE = 30


class TreeHeadPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tree_size: int
    root: str
    timestamp: int
    signature: str
    signer: str
    domain: dict[str, Any]


class ProofPublic(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tree_size: int
    proof: list[str]
    leaf_index: int | None = None
    from_size: int | None = None


def create_app(registry: Registry, chain: Chain | None = None) -> FastAPI:
    app = FastAPI(
        title="tracemark",
        version="0.1.0",
        summary="Provenance registry for digital goods: fingerprints, a Merkle log, anchors.",
        openapi_tags=[
            {"name": "health", "description": "Liveness and readiness."},
            {"name": "auditors", "description": "The log's signed heads and proofs."},
        ],
    )
    api_errors.install(app)

    @app.get("/livez", tags=["health"], operation_id="livez")
    def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], operation_id="readyz")
    def readyz() -> Any:
        checks: dict[str, str] = {}
        with read_transaction(registry.engine) as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            if chain is not None:
                table = AnchorerState.__table__  # type: ignore[attr-defined]
                beat = conn.execute(select(table.c.heartbeat).where(table.c.id == 1)).scalar()
                fresh = beat is not None and registry.clock() - int(beat) <= HEARTBEAT_MAX_AGE
                checks["anchoring_worker"] = "ok" if fresh else "no recent heartbeat"
        if chain is not None:
            try:
                chain.check(registry.domain.chain_id)
                checks["chain"] = "ok"
            except Exception as exc:  # any failure at all means "not ready"
                checks["chain"] = getattr(exc, "detail", type(exc).__name__)
        if any(value != "ok" for value in checks.values()):
            return api_errors.problem(
                503, "not-ready", "Not ready", "; ".join(f"{k}: {v}" for k, v in checks.items())
            )
        return {"status": "ok", "checks": checks}

    @app.get("/v1/log/head", tags=["auditors"], operation_id="get_tree_head")
    def tree_head() -> TreeHeadPublic:
        head = registry.latest_tree_head()
        if head is None:
            raise NotFound("the log is empty: no tree head signed yet")
        return TreeHeadPublic(
            tree_size=head.tree_size,
            root="0x" + head.root.hex(),
            timestamp=head.timestamp,
            signature="0x" + head.signature.hex(),
            signer=registry.address,
            domain=head.domain.as_dict(),
        )

    @app.get("/v1/log/proof/inclusion", tags=["auditors"], operation_id="get_inclusion_proof")
    def inclusion(
        leaf_index: Annotated[int, Query(ge=0, le=2**63 - 1)],
        tree_size: Annotated[int, Query(ge=1, le=2**63 - 1)],
    ) -> ProofPublic:
        proof = registry.inclusion_proof(leaf_index, tree_size)
        return ProofPublic(
            tree_size=tree_size, leaf_index=leaf_index, proof=["0x" + p.hex() for p in proof]
        )

    @app.get("/v1/log/proof/consistency", tags=["auditors"], operation_id="get_consistency_proof")
    def consistency(
        from_size: Annotated[int, Query(ge=0, le=2**63 - 1)],
        tree_size: Annotated[int, Query(ge=1, le=2**63 - 1)],
    ) -> ProofPublic:
        proof = registry.consistency_proof(from_size, tree_size)
        return ProofPublic(
            tree_size=tree_size, from_size=from_size, proof=["0x" + p.hex() for p in proof]
        )

    return app
