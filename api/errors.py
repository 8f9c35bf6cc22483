"""The one place domain errors become HTTP: RFC 9457 problem+json, never a stack trace.

Every problem has a stable ``type`` (``https://tracemark.dev/problems/<code>``, from the
error's ``code``), a ``title``, the ``status`` (the error class's ``http_status``) and a
``detail`` that says what to fix.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.languages import localized_problem, problem_language
from api.principal import Unauthorized
from api.ratelimit import RateLimited
from registry import errors, transfers

logger = logging.getLogger("tracemark.api")

PROBLEM_TYPE = "https://tracemark.dev/problems/{code}"
#: The methods a 405's ``Allow`` may name (RFC 9110 §9).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MEDIA_TYPE = "application/problem+json"


class PayloadTooLarge(errors.InvalidInput):
    """A body over its documented cap (413)."""

    code = "payload-too-large"
    http_status = 413
    diagnostics = "Send less: the detail names the cap (split a bulk upload into several)."


class UnsupportedMediaType(errors.InvalidInput):
    """A body in a media type the route does not take (415)."""

    code = "unsupported-media-type"
    http_status = 415
    diagnostics = "Send the body in a media type the route documents."


#: The JSON Schema of every problem this API sends (RFC 9457), for the OpenAPI document.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
        "earlier": {"type": ["object", "null"]},
    },
}
PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "A problem (RFC 9457 problem+json)",
    "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
}


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a documented problem status."""
    return {**PROBLEM_RESPONSE, "description": description}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    language: str = "en",
    detail_params: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    # Chinese when the request prefers it (issue 18 item 5): title and detail from the
    # problem catalogues by code; the type URI and the code never change.
    title, detail = localized_problem(code, title, detail, language, detail_params)
    body = {
        "type": PROBLEM_TYPE.format(code=code),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    if status == 503:
        headers = {"Retry-After": "1", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: errors.TracemarkError) -> int:
    """The error's own ``http_status`` (its class's, or the nearest base class's)."""
    return exc.http_status


def headers_of(exc: errors.TracemarkError) -> dict[str, str] | None:
    """401: the Bearer challenge (RFC 6750 §3); 429: Retry-After in whole seconds."""
    if isinstance(exc, Unauthorized):
        error = f' error="{exc.error}"' if exc.error else ""
        return {"WWW-Authenticate": f'Bearer realm="tracemark"{"," if error else ""}{error}'}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after)}
    return None


def allowed_methods(request: Request) -> str:
    """Every method some route takes at the request's path, for a 405's ``Allow``.

    NOTE: Starlette's 405 names only the methods of the first route whose path matched, and
    a path served by two routes (``GET`` and ``POST /v1/webhooks``) would lose one. Each
    method is asked of every route (included routers too) as a full match.
    """
    methods = {
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    return ", ".join(sorted(methods))


def install(app: FastAPI) -> None:
    """Route every error the app can raise through ``problem``."""

    @app.exception_handler(errors.TracemarkError)
    async def _domain(request: Request, exc: errors.TracemarkError) -> JSONResponse:
        status = status_of(exc)
        language = problem_language(request)
        if status >= 500 and status != 503:
            logger.error("%s: %s", exc.code, exc.detail)
            return problem(
                status,
                exc.code,
                "Server error",
                "the registry is misconfigured",
                language=language,
            )
        extra = {}
        if isinstance(exc, transfers.DoubleSale):
            # The double-sale signal: the transfer that made the real holder.
            extra["earlier"] = exc.earlier
        return problem(
            status,
            exc.code,
            type(exc).__name__,
            exc.detail,
            headers=headers_of(exc),
            language=language,
            **extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Field locations and messages only: never the submitted values (they may be codes).
        fields = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": error.get("msg", "")}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(f['loc'])}: {f['msg']}" for f in fields)
        return problem(
            422,
            "validation-error",
            "Invalid request",
            detail,
            errors=fields,
            language=problem_language(request),
            # The Chinese names the fields; pydantic's English messages stay in ``errors``.
            detail_params={"fields": ", ".join(".".join(f["loc"]) for f in fields)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The exception's own headers go out with it; a 405 carries ``Allow`` (RFC 9110
        # §15.5.6), which is every method the path takes (see ``allowed_methods``).
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
        return problem(
            exc.status_code,
            f"http-{exc.status_code}",
            str(exc.detail),
            str(exc.detail),
            headers=headers or None,
            language=problem_language(request),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)  # the verify path's own connections
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database refused or dropped the connection (PostgreSQL's "too many clients", a
        # restart, a connection refused) or the pool had none free: the request changed
        # nothing, so it is a 503 to retry, not a 500. The driver's message names the server's
        # address, so only the exception's kind is logged and nothing of it is sent.
        logger.warning("database unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
        return problem(
            503,
            "storage-unavailable",
            "Storage unavailable",
            "the registry's database cannot be reached right now; nothing was changed, retry",
            language=problem_language(request),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error")
        return problem(
            500,
            "internal-error",
            "Server error",
            "an unexpected error; it was logged",
            language=problem_language(request),
        )
