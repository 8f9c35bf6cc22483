"""Sign-In with Ethereum (EIP-4361): a nonce, then a signed message for a creator session token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api import siwe
from api.deps import Caller, Context
from api.siwemessage import parse_message
from verifier.schemas import SiweIn, SiweNonceOut, TokenOut

router = APIRouter(tags=["creators"])


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
            # The URL clients reach the registry at (the public one behind a balancer).
            "uri": ctx.trust_root.url,
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
    address = parse_message(body.message).address
    return JSONResponse(
        {"token": token, "token_type": "Bearer", "expires_at": expires_at, "creator": address}
    )


__all__ = ["router"]
