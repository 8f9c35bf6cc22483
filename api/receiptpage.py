"""The buyer's receipt on the public page (issue 17 item 3): ``/r/<receipt_id>`` and its QR.

``/r/<id>`` renders the signed receipt (the good, the facts as of delivery, who delivered it
and when, the DELIVERY entry, the buyer's commitment) and a box where the buyer types the code
they received; ``api/static/receipt.js`` checks it through ``POST /v1/receipts/<id>/check``
(the code in the body only, with the public code check's proof of work and budgets), and
says match or no match. ``/r/<id>/qr.svg`` is the QR code of the page's URL (segno, as the
labels). Plain Starlette routes beside the page's others (``api.web``): HTML for people, not
API operations; the same CSP and headers.
"""

from __future__ import annotations

import io
from typing import Final

import segno
from fastapi import FastAPI, Request
from fastapi.responses import Response

from api.context import ApiContext
from api.languages import Translator, page_language
from api.receipts import receipt_link
from api.trustroot import registry_trust_root
from api.web import PAGE_HEADERS, QR_ERROR_LEVEL, _caller, _page
from registry.deliveryreceipt import DeliveryReceipt, is_receipt_id
from registry.errors import NotFound
from registry.fingerprints import fingerprint_hex

#: What the not-found page says there is none of (the same for a malformed and an unknown id).
_NOT_FOUND: Final = {"what": "notfound.what.receipt", "what_values": {}}


def _receipt(request: Request) -> DeliveryReceipt | None:
    _caller(request)
    receipt_id = str(request.path_params["receipt_id"])
    if not is_receipt_id(receipt_id):
        return None
    ctx: ApiContext = request.app.state.context
    try:
        return ctx.registry.delivery_receipt_by_id(receipt_id)
    except NotFound:
        return None


def _qr_svg(target: str, title: str) -> str:
    return str(
        segno.make(target, error=QR_ERROR_LEVEL).svg_inline(
            scale=1,
            border=4,
            omitsize=True,
            svgclass="qr",
            lineclass="qr-modules",
            title=title,
        )
    )


def receipt_page(request: Request) -> Response:
    """``/r/<receipt_id>``: the receipt, and the code check."""
    receipt = _receipt(request)
    if receipt is None:
        return _page(request, "not_found.html", 404, **_NOT_FOUND)
    ctx: ApiContext = request.app.state.context
    trust = registry_trust_root(ctx.registry, ctx.trust_root)
    link = receipt_link(str(request.base_url), receipt.receipt_id)
    body = receipt.document["receipt"]
    good_type = receipt.good_type.name.lower()
    fingerprint = fingerprint_hex(receipt.fingerprint)
    return _page(
        request,
        "receipt.html",
        receipt=receipt,
        facts=receipt.facts,
        body=body,
        delivery=receipt.delivery,
        good_type=good_type,
        fingerprint=fingerprint,
        link=link,
        qr_svg=_qr_svg(link, str(Translator(page_language(request))("receipt.qr_title"))),
        proof=f"/v1/goods/{good_type}/{fingerprint}/proof",
        receipt_hash="0x" + receipt.receipt_hash().hex(),
        signature="0x" + receipt.signature.hex(),
        trust_name=trust.name,
        trust_fingerprint=trust.fingerprint(),
        trust_url=trust.registry_url,
    )


def receipt_qr(request: Request) -> Response:
    """``/r/<receipt_id>/qr.svg``: the QR code of the receipt's page, as an SVG file."""
    receipt = _receipt(request)
    if receipt is None:
        return _page(request, "not_found.html", 404, **_NOT_FOUND)
    link = receipt_link(str(request.base_url), receipt.receipt_id)
    svg = io.BytesIO()
    segno.make(link, error=QR_ERROR_LEVEL).save(
        svg,
        kind="svg",
        scale=4,
        border=4,
        title=str(Translator(page_language(request))("receipt.qr_file_title")),
    )
    headers = {**PAGE_HEADERS, "Cache-Control": "no-store"}
    return Response(svg.getvalue(), media_type="image/svg+xml", headers=headers)


ROUTES: Final = (
    ("/r/{receipt_id}", receipt_page),
    ("/r/{receipt_id}/qr.svg", receipt_qr),
)


def install(app: FastAPI) -> None:
    """Serve the receipt pages from ``app`` (after ``api.web.install``)."""
    for path, endpoint in ROUTES:
        app.add_route(path, endpoint, methods=["GET"], include_in_schema=False)


__all__ = ["ROUTES", "install", "receipt_page", "receipt_qr"]
