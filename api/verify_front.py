"""``POST /v1/verify`` answered in front of the middleware stack (the hot path's ASGI front)."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import awaited_caller, charge_deferred
from api.context import MAX_JSON_BYTES
from api.routes.verify import verify
from registry.personaldata import refuse_personal_data
from verifier.schemas import VerifyIn


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
            # The app-wide personal-data check (``api.personaldata``) for this route's one
            # text field that is neither a code nor hex: the product slug.
            if body.product is not None:
                refuse_personal_data(body.product, "product")
            # A platform's code lookup makes its request charge together with its budgets, in
            # one round trip to a shared limiter (``api.routes.verify``); if the handler ends
            # before those, the charge is made here, and its refusal is the answer.
            principal = await awaited_caller(request, defer=body.code is not None)
            response = await verify(body, self.app.state.context, principal, request)
            await charge_deferred(request)
        except Exception as exc:
            failure = exc
            try:
                await charge_deferred(request)
            except Exception as refused:
                failure = refused
            response = await self._handled(request, failure)
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


__all__ = ["VerifyFront"]
