"""The API's router table: every route module and page ``create_app`` serves, in matching order.

Kept apart from the composition root (``api.app``), which grew by a line per route module: the
factory wires services, middleware and the lifespan; this table says which routes there are,
how each is included (a FastAPI router, or an ``install`` for plain Starlette pages), and in
what order they are matched. The health routes (``/livez``, ``/readyz``) stay the factory's:
they close over its registry, chain and limiter.
"""

from __future__ import annotations

from fastapi import FastAPI

from api import badge, docsframing, receiptpage, web
from api.routes import attestations as attestation_routes
from api.routes import (
    auditors,
    batches,
    creator_account,
    creators,
    signin,
    transfers,
    verify,
)
from api.routes import compliance as compliance_routes
from api.routes import credit as credit_routes
from api.routes import facevalue as face_value_routes
from api.routes import identity as identity_routes
from api.routes import orderevidence as order_evidence_routes
from api.routes import orders as order_routes
from api.routes import payouts as payout_routes
from api.routes import rebates as rebate_routes
from api.routes import receipts_public as receipt_routes
from api.routes import signals as signal_routes
from api.routes import tlog as tlog_routes
from api.routes import trace as trace_routes
from api.routes import webhooks as webhook_routes


def include_routes(app: FastAPI) -> None:
    """Every route module's routes and every page on ``app``, in the order they are matched."""
    # The embeddable badge (issue 18 item 6, ``/badge/...``) first: it is loaded on every view
    # of a product page, and a route late in the list is matched against every one before it
    # (40% of a badge's time, bench/badge_bench.py). Its path is no other route's.
    badge.install(app)
    app.include_router(verify.router)
    app.include_router(transfers.router)
    app.include_router(order_routes.router)  # guaranteed-trade orders (issue 17)
    app.include_router(order_evidence_routes.router)  # an order's dispute evidence
    app.include_router(payout_routes.router)  # payouts and balances (issue 17)
    app.include_router(rebate_routes.router)  # upline rebates (issue 17)
    app.include_router(face_value_routes.router)  # a product's face value (issue 18)
    app.include_router(receipt_routes.router)  # the buyer's delivery receipt (issue 17)
    app.include_router(credit_routes.router)  # credit scores (issue 18)
    app.include_router(compliance_routes.router)  # a platform's compliance report (issue 18)
    app.include_router(attestation_routes.router)  # real-name attestations (issue 18)
    app.include_router(creators.router)
    app.include_router(batches.router)
    app.include_router(creator_account.router)
    app.include_router(signin.router)
    app.include_router(identity_routes.router)
    app.include_router(auditors.router)
    web.install(app)  # the page (``/``, ``/audit``, ``/label/...``) and ``/static``
    docsframing.install(app)  # FastAPI's /docs and /redoc refuse to be framed too
    receiptpage.install(app)  # the receipt's page ``/r/<id>`` and its QR (issue 17)
    app.include_router(trace_routes.router)
    app.include_router(signal_routes.router)
    app.include_router(tlog_routes.router)  # the static read API (C2SP tlog-tiles)
    app.include_router(webhook_routes.router)


__all__ = ["include_routes"]
