"""The embeddable authenticity badge (issue 18 item 6, 即插即用): ``/badge/{good_type}/{fp}``.

A content or short-video platform drops the badge into a product page as an ``<iframe>`` (or
lets ``/static/badge-embed.js`` turn a plain link into one): the good's verdict, its creator
(and the creator's proven name), and the credit (信用分, ``registry.credit``) of the platform
and the seller that hold it now, as the verify answer carries it. The badge names the good
by its fingerprint only: a code is a secret, and a URL is logged, cached and shared, so no
code ever travels in one (any query parameter but ``lang`` is refused, and never echoed).

The badge is server-rendered HTML with one stylesheet and no script, so it works in a
sandboxed frame and under any embedding page's Content-Security-Policy that lets it be framed
(``frame-src`` the registry's origin). Its own CSP allows nothing but that stylesheet, and
``frame-ancestors *`` instead of the page's ``'none'`` (no ``X-Frame-Options``): being framed
by any site is its purpose, and it shows only what ``POST /v1/verify`` and the credit routes
show anyone. A badge load is a public read charged to the caller's budget like a page, is
not counted as a verification (a page view is not a check before a purchase: counting it
would feed the "many verifications per purchase" signal), and may be cached for a minute.
Its language is ``?lang=`` or ``Accept-Language`` (not the page's cookie: a framed page does
not get it, and a shared cache must not vary on it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from api.context import ApiContext
from api.deps import GOOD_TYPES
from api.languages import LANGUAGES, Translator, from_accept_language
from api.verify_answers import authenticity_answer
from api.web import _caller, templates
from registry.edges import HASH32_PATTERN
from registry.fingerprints import GoodType, parse_fingerprint

_FINGERPRINT: Final = re.compile(HASH32_PATTERN)

#: The badge's own policy: our stylesheet and nothing else, framed by anyone.
BADGE_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors *"
)
#: How long a browser or a shared cache may reuse a badge: a revocation shows within a minute.
BADGE_MAX_AGE: Final = 60
BADGE_HEADERS: Final = {
    "Content-Security-Policy": BADGE_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The badge's link to the full check carries the fingerprint: no need to tell the target
    # which product page the reader came from, nor the embedding page anything.
    "Referrer-Policy": "no-referrer",
    # An embedding page that isolates itself (COEP require-corp) may still frame the badge.
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Cache-Control": f"public, max-age={BADGE_MAX_AGE}",
    "Vary": "Accept-Language",
}
#: The badge's only query parameter (its language); any other is refused (see badge_page).
_QUERY_NAMES: Final = frozenset({"lang"})
#: Not cached: a refusal or a not-found is cheap to answer again and must not stick.
_REFUSAL_HEADERS: Final = {**BADGE_HEADERS, "Cache-Control": "no-store"}

#: Each verdict's word and sentence, and its tone (the page's ``tone-*`` classes).
VERDICTS: Final = {
    "authentic": ("badge.verdict.authentic", "badge.say.authentic", "ok"),
    "pending_anchor": ("badge.verdict.pending_anchor", "badge.say.pending_anchor", "warn"),
    "revoked": ("badge.verdict.revoked", "badge.say.revoked", "bad"),
    "consumed": ("badge.verdict.consumed", "badge.say.consumed", "bad"),
    "conflict": ("badge.verdict.conflict", "badge.say.conflict", "warn"),
    "unknown": ("badge.verdict.unknown", "badge.say.unknown", "bad"),
}


@dataclass(frozen=True)
class HolderCredit:
    """The current holder's credit: its platform's score, and its seller's on that platform
    (None: unrated, too little history)."""

    platform: str
    platform_score: int | None
    seller_score: int | None


def badge_language(request: Request) -> str:
    """``?lang=`` when it names one of ours, else ``Accept-Language``."""
    chosen = request.query_params.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return from_accept_language(request.headers.get("accept-language"))


def holder_credit(answer: dict[str, Any]) -> HolderCredit | None:
    """The holder's credit as the verify answer carries it (None: its creator holds it).

    NOTE: the answer's scores are the ones the risk worker stores (refreshed every minute),
    not read live: a badge is loaded on every view of a product page, and a platform's live
    score is an aggregate over all its sales. A subject with no stored score had no fact at
    the worker's last pass (a platform that only receives goods, a buyer who never sold):
    unrated, like any subject with too little history.
    """
    holder = answer.get("holder") or {}
    platform = holder.get("platform")
    if platform is None:
        return None
    credit = answer.get("credit") or {}
    platform_doc = credit.get("platform") or {}
    seller_doc = credit.get("seller") or {}
    return HolderCredit(
        platform=str(platform),
        platform_score=platform_doc.get("score"),
        seller_score=seller_doc.get("score"),
    )


def _render(
    request: Request, name: str, status_code: int, headers: dict[str, str], **values: Any
) -> HTMLResponse:
    t = Translator(badge_language(request))
    context = {"lang": t.language, "t": t, **values}
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers.update(headers)
    return response


def _answer(ctx: ApiContext, good_type: GoodType, fingerprint: bytes) -> dict[str, Any]:
    answer, _ = authenticity_answer(
        ctx, good_type, fingerprint, claimed_creator=None, claimed_product=None
    )
    return answer


async def badge_page(request: Request) -> Response:
    """``/badge/{good_type}/{fingerprint}``: the badge, to be framed by any page."""
    _caller(request)
    good_type = str(request.path_params["good_type"])
    fingerprint = str(request.path_params["fingerprint"])
    if any(name not in _QUERY_NAMES for name in request.query_params):
        # Refused without a word of it: the code is already in someone's logs, not in ours.
        # NOTE: any name but ``lang``, not only ``code``: ``?Code=`` or ``?pin=`` answered a
        # cacheable badge, and a shared cache kept the URL, code and all, as its key.
        return _render(request, "badge.html", 400, _REFUSAL_HEADERS, refusal="badge.no_code")
    if good_type not in GOOD_TYPES or not _FINGERPRINT.match(fingerprint):
        return _render(request, "badge.html", 404, _REFUSAL_HEADERS, refusal="badge.not_a_good")
    fp = fingerprint.lower()
    ctx: ApiContext = request.app.state.context
    # On the event loop, as ``POST /v1/verify`` reads the same facts: one indexed statement
    # (a thread pool hop cost more than the read, measured by bench/badge_bench.py).
    answer = _answer(ctx, GOOD_TYPES[good_type], parse_fingerprint(fp))
    word, say, tone = VERDICTS.get(answer["verdict"], VERDICTS["unknown"])
    identity = answer.get("creator_identity") or {}
    return _render(
        request,
        "badge.html",
        200,
        BADGE_HEADERS,
        verdict=answer["verdict"],
        word=word,
        say=say,
        tone=tone,
        creator=answer["creator"],
        # A proven name only while its proof holds (a lapsed one is not shown as a name).
        creator_name=identity.get("name") if identity.get("status") == "verified" else None,
        creator_domain=identity.get("domain"),
        product=answer["product"],
        credit=holder_credit(answer),
        check_url=f"/?type={good_type}&fp={fp}",
    )


ROUTES: Final = (("/badge/{good_type}/{fingerprint}", badge_page),)


def install(app: FastAPI) -> None:
    """Serve the badge from ``app``. NOTE: a plain Starlette route like the page's (HTML for
    people, not an API operation, so not in the OpenAPI document)."""
    for path, endpoint in ROUTES:
        app.add_route(path, endpoint, methods=["GET"], include_in_schema=False)


__all__ = ["BADGE_CONTENT_SECURITY_POLICY", "BADGE_HEADERS", "ROUTES", "holder_credit", "install"]
