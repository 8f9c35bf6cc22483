"""FastAPI's own documentation pages (``/docs``, ``/redoc``, ``/docs/oauth2-redirect``) refuse
to be framed, as the registry's page does (``api.web.PAGE_HEADERS``): only the badge
(``api.badge``) may be framed by other sites.

NOTE: FastAPI serves these pages itself, without our page's headers; a site framing
``/docs`` under its own could lure a visitor into clicking through its "Try it out" forms
(clickjacking). Only the framing headers are added here: the pages' scripts come from
FastAPI's CDN, which the page's stricter CSP would block.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What every page but the badge answers about being framed.
NEVER_FRAMED: Final = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def _never_framed(app: ASGIApp) -> ASGIApp:
    async def framed_never(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in NEVER_FRAMED.items():
                    headers[name] = value
            await send(message)

        await app(scope, receive, send_headers)

    return framed_never


def install(app: FastAPI) -> None:
    """Give FastAPI's documentation pages of ``app`` the never-framed headers."""
    pages = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    for route in app.router.routes:
        if isinstance(route, Route) and route.path in pages:
            route.app = _never_framed(route.app)


__all__ = ["NEVER_FRAMED", "install"]
