"""The web page: server-rendered HTML over the public API, and its static assets.

Three pages, no build step: ``/`` checks a good (by fingerprint, by code and creator, or by a
file hashed in the browser), ``/audit`` is the auditors' and creators' view (a trace and its
provenance graph, signals, a creator's dashboard), ``/label/{good_type}/{fingerprint}`` is a
printable QR label that opens ``/`` with the good's fingerprint (never its code). The pages
only render forms; the browser's scripts call the API routes themselves, as any client would,
so the page has no powers the API does not give.

Every asset is served from ``/static`` (no CDN, nothing fetched at run time) and every page is
sent with a Content-Security-Policy of ``default-src 'self'``: no inline script, style or
event handler runs, so an injected string cannot become code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import segno
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.auth import caller
from api.context import ApiContext
from api.deps import GOOD_TYPES
from api.languages import Translator, page_language, remember, switch_links
from api.principal import Principal
from api.trustroot import registry_trust_root
from api.verify_answers import USE_NAMES
from registry.edges import HASH32_PATTERN
from registry.fingerprints import parse_fingerprint

HERE: Final = Path(__file__).parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"

#: Sent with every page. ``default-src 'self'`` alone would do; the rest closes what it leaves
#: open (plugins, <base> rewriting, being framed by another site, forms posting elsewhere).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The URL may carry a fingerprint (a QR label's link): no need to hand it to other sites.
    "Referrer-Policy": "no-referrer",
}
_FINGERPRINT: Final = re.compile(HASH32_PATTERN)
#: Error correction M (15%): a label survives a scuff or a fold and stays a small code.
QR_ERROR_LEVEL: Final = "m"

templates = Jinja2Templates(directory=str(TEMPLATES))


def _caller(request: Request) -> Principal:
    """The API's own ``caller``, so the pages refuse what the API refuses: a credential
    in the URL or a bad Authorization header (401, THREATS 37), and page loads share the
    caller's request budget. A browser sends no Authorization header to a page."""
    return caller(request)


def _page(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    # The page's language (issue 18 item 5): every text comes from its catalogue through ``t``.
    t = Translator(page_language(request))
    context = {
        "page": name.removesuffix(".html"),
        "lang": t.language,
        "t": t,
        "script_texts": t.script_texts(),
        "languages": switch_links(request),
        **values,
    }
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    # The page differs by language: a shared cache must not hand one reader's to another.
    response.headers["Vary"] = "Accept-Language, Cookie"
    remember(request, response)
    return response


def _prefill(request: Request) -> tuple[str, str]:
    """A page's ``?type=&fp=``: used when well-formed, ignored (not refused) otherwise, so a
    mangled link still opens a working page."""
    good_type = request.query_params.get("type", "")
    fingerprint = request.query_params.get("fp", "")
    kind = good_type if good_type in GOOD_TYPES else "code"
    fp = fingerprint.lower() if _FINGERPRINT.match(fingerprint) else ""
    return kind, fp


def check_page(request: Request) -> Response:
    """``/``: check a good, through the anonymous tier of ``POST /v1/verify``."""
    _caller(request)
    kind, fp = _prefill(request)
    ctx: ApiContext = request.app.state.context
    # The page says whose trust root its answers stand under, and how to check them without
    # trusting this server (issue 11): the registry's own root, named by its fingerprint.
    trust = registry_trust_root(ctx.registry, ctx.trust_root)
    return _page(
        request,
        "check.html",
        good_type=kind,
        fingerprint=fp,
        good_types=GOOD_TYPES,
        trust_name=trust.name,
        trust_fingerprint=trust.fingerprint(),
        trust_url=trust.registry_url,
    )


def audit_page(request: Request) -> Response:
    """``/audit``: auditors (an API key with the audit scope) and creators (a Sign-In with
    Ethereum session): a good's trace and graph, signals, a creator's dashboard."""
    _caller(request)
    kind, fp = _prefill(request)
    return _page(request, "audit.html", good_type=kind, fingerprint=fp, good_types=GOOD_TYPES)


def label_page(request: Request) -> Response:
    """``/label/{good_type}/{fingerprint}``: a printable QR code of ``/?type=…&fp=…`` for a
    registered good.

    The label names the good by its fingerprint only: a code is a secret that whoever reads
    the label could redeem, and the registry never has it anyway.
    """
    _caller(request)
    good_type = str(request.path_params["good_type"])
    fingerprint = str(request.path_params["fingerprint"])
    if good_type not in GOOD_TYPES or not _FINGERPRINT.match(fingerprint):
        return _page(request, "not_found.html", 404, what="notfound.what.good", what_values={})
    fp = fingerprint.lower()
    ctx: ApiContext = request.app.state.context
    facts = ctx.lookup.facts(GOOD_TYPES[good_type], parse_fingerprint(fp))
    if facts is None:
        return _page(
            request,
            "not_found.html",
            404,
            what="notfound.what.registered",
            what_values={"good_type": good_type, "fingerprint": fp},
        )
    target = str(request.base_url).rstrip("/") + f"/?type={good_type}&fp={fp}"
    qr = segno.make(target, error=QR_ERROR_LEVEL)
    svg = qr.svg_inline(
        scale=1,
        border=4,
        omitsize=True,
        svgclass="qr",
        lineclass="qr-modules",
        title=str(Translator(page_language(request))("label.qr_title")),
    )
    return _page(
        request,
        "label.html",
        good_type=good_type,
        fingerprint=fp,
        target=target,
        qr_svg=svg,
        creator=facts.creator,
        product=facts.product,
        use=USE_NAMES.get(int(facts.use), ""),
    )


#: The pages. NOTE: plain Starlette routes, not FastAPI operations: they are HTML for people,
#: not part of the API's OpenAPI document, its fuzzing, or its authorization matrix (which
#: covers every API operation); tests/web checks their credentials handling instead.
ROUTES: Final = (
    ("/", check_page),
    ("/audit", audit_page),
    ("/label/{good_type}/{fingerprint}", label_page),
)


def install(app: FastAPI) -> None:
    """Serve the pages and their assets from ``app``."""
    for path, endpoint in ROUTES:
        app.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")


__all__ = ["CONTENT_SECURITY_POLICY", "ROUTES", "install"]
