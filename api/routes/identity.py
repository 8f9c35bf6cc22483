"""Creator identity: a creator signed in with Ethereum proves its web domain, or has it
re-checked (``api.identity``); the answers are ``IdentityOut``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.deps import Creator
from api.identity import IdentityService
from verifier.schemas import IdentityIn, IdentityOut

router = APIRouter(tags=["creators"])


async def identity_service(request: Request) -> IdentityService:
    """Dependency: the app's identity service."""
    service: IdentityService = request.app.state.identity
    return service


Identities = Annotated[IdentityService, Depends(identity_service)]


@router.post(
    "/v1/creators/me/identity",
    operation_id="prove_my_identity",
    response_model=IdentityOut,
    status_code=201,
    summary="Prove your web domain: the registry fetches your signed statement from "
    "https://<domain>/.well-known/tracemark-creator.json and logs your verified name.",
)
async def prove_identity(body: IdentityIn, creator: Creator, service: Identities) -> Response:
    assert creator.creator is not None
    checked = await service.prove(creator.creator, body.domain)
    return JSONResponse(checked.document(), status_code=201)


@router.post(
    "/v1/creators/me/identity/recheck",
    operation_id="recheck_my_identity",
    response_model=IdentityOut,
    summary="Fetch your statement again: still verified, or lapsed (logged) if it no longer "
    "verifies.",
)
async def recheck_identity(creator: Creator, service: Identities) -> Response:
    assert creator.creator is not None
    checked = await service.recheck(creator.creator)
    return JSONResponse(checked.document())


__all__ = ["identity_service", "router"]
