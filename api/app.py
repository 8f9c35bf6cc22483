"""The HTTP API's composition root: ``create_app`` wires the registry (and chain) into routes.

Routes are grouped by who uses them (``api/routes``: creators, platforms, auditors) and
included in matching order by ``api.routertable``; every error is RFC 9457 problem+json
(``api/errors``); who is calling is decided once per request (``api/auth``), which also
charges the caller's rate limit.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import Connection, select, text
from starlette.types import Receive, Scope, Send

from anchoring.chain import Chain
from anchoring.models import AnchorerState
from api import auth
from api import errors as api_errors
from api.chainwatch import ChainWatch
from api.context import MAX_JSON_BYTES, ApiContext
from api.identity import IdentityService, IdentitySettings, load_identity_settings
from api.jobs import JobRunner
from api.limits import BodyLimit
from api.personaldata import refuse_personal_data_in_request
from api.pow import ProofOfWork
from api.principal import Principal
from api.ratelimit import Limit, RateLimiter, RateLimits, build_limiter
from api.routertable import include_routes
from api.settings import ApiSettings, load_api_settings
from api.telemetry import TelemetryBuffer, TelemetryWriter
from api.trustroot import TrustRootConfig
from api.verify_front import VerifyFront
from api.webhooks import WebhookService, WebhookSettings, WebhookWorker, load_webhook_settings
from readmodels.authenticity import GoodLookup
from readmodels.replicalookup import ReplicaGoodLookup
from registry import checkpoints
from registry.db import read_transaction
from registry.errors import StorageBusy
from registry.lease import DEFAULT_LEASE_SECONDS, SINGLETON_ROLES, Lease
from registry.replica import ReplicaReads, replica_engine
from registry.service import Registry
from registry.telemetryfold import DEFAULT_FOLD_INTERVAL, TelemetryFolder

#: The route ``TracemarkApp`` answers in front of its middleware stack.
VERIFY_PATH = "/v1/verify"
#: The worker's heartbeat may be this old before ``/readyz`` says not ready (seconds).
HEARTBEAT_MAX_AGE = 30
#: How long ``/readyz`` reuses its chain check's answer (seconds): two calls through web3
#: cost a replica about a tenth of its CPU at HAProxy's 2 s check interval (issue 16). Longer
#: than that interval, so two checks in three reuse it. Only a good answer is reused: a replica
#: may say "ready" this long after its node went away, but a failing node is asked every time,
#: so it is ready again at the first check after the node is back (the database and everything
#: else are asked every time).
CHAIN_CHECK_SECONDS = 5.0

TAGS = [
    {"name": "creators", "description": "Register, revoke, enrol a code key, read statements."},
    {"name": "platforms", "description": "Verify goods, report transfers, keep receipts."},
    {"name": "auditors", "description": "Signed heads, proofs, histories, proof bundles."},
    {"name": "health", "description": "Liveness and readiness."},
]


class TracemarkApp(FastAPI):
    """FastAPI, with ``POST /v1/verify`` handed to ``api.verify_front.VerifyFront`` before the
    middleware stack (the hot path: see its NOTE). Every other request goes as usual."""

    verify_front: VerifyFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.verify_front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["path"] == VERIFY_PATH
            and scope["method"] == "POST"
        ):
            scope["app"] = self  # what Starlette sets before its stack
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def through_stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The usual way in: the middleware stack, the router, the FastAPI route."""
        await super().__call__(scope, receive, send)

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """A middleware added once the front is in place would never see a verify request
        (the front does only what the stack held when it was made), so the front steps
        aside: verify then goes through the stack like every other route, slower but whole."""
        super().add_middleware(middleware_class, *args, **kwargs)
        if self.verify_front is not None:
            self.verify_front = None
            logging.getLogger("tracemark.api").warning(
                "a middleware was added after create_app: POST /v1/verify now goes through "
                "the middleware stack too"
            )


def create_app(
    registry: Registry,
    chain: Chain | None = None,
    *,
    limits: RateLimits | None = None,
    siwe_domain: str = "127.0.0.1:8000",
    telemetry_interval: float = 0.5,
    webhook_settings: WebhookSettings | None = None,
    identity_settings: IdentitySettings | None = None,
    trust_root: TrustRootConfig | None = None,
    api_settings: ApiSettings | None = None,
    webhook_sender: bool | Lease = True,
    roles_apart: bool = False,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    telemetry_folder: bool | Lease = True,
    telemetry_fold_interval: float = DEFAULT_FOLD_INTERVAL,
) -> FastAPI:
    """The app. ``webhook_sender``: run the webhook sender in this process (True; a
    ``Lease``: only while holding the role, ``tracemark serve --role api,webhooks``) or not
    (False: a stateless API replica, the sender runs elsewhere). ``roles_apart``: the
    singleton roles run in other processes (``serve --role``), so their state is the
    cluster's, reported by ``/readyz`` without failing it. ``lease_seconds``: how long a
    replica's bulk jobs outlive its last heartbeat (``api.jobs``). ``telemetry_folder``: fold
    the appended verification events into the counts in this process (True; a ``Lease``:
    only while holding the ``telemetry`` role) or not (False: the role runs elsewhere)."""
    settings = api_settings or load_api_settings()
    # The global public code-lookup budget is a setting; every other limit is ``limits``'.
    limits = replace(
        limits or RateLimits(),
        code_lookup_all=Limit.per_minute(settings.anon_code_lookups_per_minute),
    )
    jobs = JobRunner(registry, seconds=lease_seconds)
    # Reads that may be a little stale go to a streaming replica while it is fresh (issue 16).
    replica = (
        ReplicaReads(
            registry,
            replica_engine(settings.database_replica_url),
            max_lag=settings.replica_max_lag,
        )
        if settings.database_replica_url
        else None
    )
    identity = IdentityService(registry, identity_settings or load_identity_settings())
    webhooks = WebhookService(registry, webhook_settings or load_webhook_settings())
    webhook_worker = (
        None
        if webhook_sender is False
        else WebhookWorker(
            webhooks, lease=webhook_sender if isinstance(webhook_sender, Lease) else None
        )
    )

    folder = (
        None
        if telemetry_folder is False
        else TelemetryFolder(
            registry.engine,
            interval=telemetry_fold_interval,
            lease=telemetry_folder if isinstance(telemetry_folder, Lease) else None,
        )
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            jobs.start()
        except StorageBusy:  # another writer holds the lock: the next start will do it
            logging.getLogger("tracemark.api").warning("could not mark interrupted jobs yet")
        if webhook_worker is not None:
            webhook_worker.start()
        if folder is not None:
            folder.start()
        yield
        if webhook_worker is not None:
            webhook_worker.close()
        jobs.close()
        ctx.close()  # flushes the telemetry buffer first
        if folder is not None:
            folder.close()
        telemetry_writer.close()  # its connections go; it reopens on use (a restarted app)
        authenticator.close()
        limiter.close()  # a shared store's connections (reopened on use)
        await limiter.aclose()  # and this loop's (an asyncio connection is the loop's)

    app = TracemarkApp(
        title="tracemark",
        version="0.1.0",
        summary="Provenance registry for digital goods: fingerprints, a Merkle log, anchors.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        # Every route may answer a problem; "4XX" also replaces FastAPI's own 422 schema.
        responses={"4XX": api_errors.PROBLEM_RESPONSE, "5XX": api_errors.PROBLEM_RESPONSE},
        # NOTE: Starlette's slash redirect builds its Location from the Host header, so a
        # hostile Host would be sent back as a redirect target: no slash redirects (404).
        redirect_slashes=False,
        # Issue 18 item 4: no route takes a phone number, ID number or name (api.personaldata).
        dependencies=[Depends(refuse_personal_data_in_request)],
    )
    api_errors.install(app)
    authenticator = auth.install(
        app,
        registry,
        limiter=build_limiter(
            limits,
            storage=settings.rate_limit_storage,
            prefix=settings.rate_limit_prefix,
            replicas=settings.rate_limit_replicas,
        ),
    )
    limiter: RateLimiter = app.state.limiter
    telemetry_writer = TelemetryWriter(registry, limiter)
    ctx = ApiContext(
        registry=registry,
        chain=chain,
        limiter=limiter,
        lookup=GoodLookup(registry.engine)
        if replica is None
        else ReplicaGoodLookup(registry.engine, replica),
        telemetry=TelemetryBuffer(telemetry_writer, interval=telemetry_interval),
        chain_watch=ChainWatch(chain),
        jobs=jobs,
        siwe_domain=siwe_domain,
        identities=identity.cache,
        trust_root=trust_root or TrustRootConfig(url=f"http://{siwe_domain}"),
        proof_of_work=ProofOfWork(
            registry.derived_key("verify-pow"),
            bits=settings.anon_pow_bits,
            ttl=settings.anon_pow_ttl,
            clock=registry.clock,
        ),
        replica=replica,
    )
    app.state.context = ctx
    app.state.telemetry_folder = folder
    app.state.identity = identity
    # Every body is capped while it streams; these routes stream larger bodies to their own.
    app.add_middleware(
        BodyLimit,
        limit=MAX_JSON_BYTES,
        own_limit=("/v1/verify/file", "/v1/registrations/batches", "/v1/revocations/batches"),
    )
    app.state.webhooks = webhooks
    include_routes(app)  # every route module and page, in matching order (``api.routertable``)
    app.verify_front = VerifyFront(app, app.through_stack)

    @app.get("/livez", tags=["health"], operation_id="livez")
    def livez(caller: Annotated[Principal, Depends(auth.authenticated_health)]) -> dict[str, str]:
        return {"status": "ok"}

    chain_seen: list[Any] = [-math.inf, ""]  # [monotonic time asked, answer]

    def chain_answer() -> str:
        """The chain check's answer: a good one is reused for ``CHAIN_CHECK_SECONDS``."""
        asked, answer = chain_seen
        now = time.monotonic()
        if answer == "ok" and now - asked < CHAIN_CHECK_SECONDS:
            return "ok"
        assert chain is not None
        try:
            chain.check(registry.domain.chain_id)
            answer = "ok"
        except Exception as exc:  # any failure at all means "not ready"
            answer = getattr(exc, "detail", type(exc).__name__)
        chain_seen[:] = [now, answer]
        return str(answer)

    @app.get(
        "/readyz",
        tags=["health"],
        operation_id="readyz",
        responses={503: api_errors.problem_response("Not ready: the failing checks are named")},
    )
    def readyz(caller: Annotated[Principal, Depends(auth.authenticated_health)]) -> Any:
        checks: dict[str, str] = {}
        alerts: list[str] = []
        # Roles apart (issue 16): the singleton roles' state is the cluster's, not this
        # replica's; a load balancer must not drop every API replica because anchoring is
        # down somewhere. So it is reported under ``cluster`` and fails nothing.
        cluster: dict[str, Any] = {}
        with read_transaction(registry.engine) as conn:
            conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            if chain is not None:
                table = AnchorerState.__table__  # type: ignore[attr-defined]
                row = conn.execute(
                    select(table.c.heartbeat, table.c.last_error).where(table.c.id == 1)
                ).first()
                beat = None if row is None else row.heartbeat
                fresh = beat is not None and registry.clock() - int(beat) <= HEARTBEAT_MAX_AGE
                (cluster if roles_apart else checks)["anchoring_worker"] = (
                    "ok" if fresh else "no recent heartbeat"
                )
                # The worker's alerts (an unfunded key, the fee cap, a reverted anchor, the
                # time-to-anchor objective missed: THREATS 23, 29, 33, 34). Registering and
                # verifying go on meanwhile, so they do not make the server unready.
                if row is not None and row.last_error:
                    alerts = str(row.last_error).splitlines()
            if roles_apart and registry.engine.dialect.name == "postgresql":
                cluster["leases"] = role_lease_holders(conn)
            if registry.witness_policy is not None:
                # Witnesses that fail, a checkpoint held back below the quorum (issue 15):
                # degraded, not unready (entries are still taken and sequenced).
                alerts += checkpoints.witness_alerts(conn)
        # Shared rate limits whose Redis is down (issue 16): degraded, not unready (keyed
        # callers go on with a local share; the anonymous tier is refused).
        alerts += limiter.alerts()
        if chain is not None:
            checks["chain"] = chain_answer()
        if any(value != "ok" for value in checks.values()):
            detail = "; ".join(f"{k}: {v}" for k, v in checks.items())
            if alerts:
                detail += "; alerts: " + "; ".join(alerts)
            return api_errors.problem(503, "not-ready", "Not ready", detail)
        answer: dict[str, Any] = {"status": "degraded" if alerts else "ok", "checks": checks}
        if alerts:
            answer["alerts"] = alerts
        if roles_apart:
            answer["cluster"] = cluster
        if replica is not None:
            # Reported, never failing: past its bound or down, the primary serves its reads.
            answer["replica"] = replica.status().as_dict()
        return answer

    document_security(app)
    return app


def role_lease_holders(conn: Connection) -> dict[str, str | None]:
    """Each singleton role's live holder (None: nobody holds it now), by the database's clock."""
    rows = conn.execute(
        text(
            "SELECT role, holder FROM role_leases"
            " WHERE expires_at_ms >= (extract(epoch from clock_timestamp()) * 1000)::bigint"
        )
    ).all()
    held = {row.role: row.holder for row in rows}
    return {role: held.get(role) for role in SINGLETON_ROLES}


def declare_body_caps(schema: dict[str, Any]) -> None:
    """Write every request body's byte cap into the OpenAPI document (THREATS 40, 41): a JSON
    body is at most ``MAX_JSON_BYTES`` (``BodyLimit``); the streamed bodies declare their own
    (``x-max-bytes`` set by their routes). A client reading the document knows the 413
    before it sends."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body is None:
                continue
            if "application/json" in body.get("content", {}):
                body.setdefault("x-max-bytes", MAX_JSON_BYTES)


def document_security(app: FastAPI) -> None:
    """Say in the OpenAPI document which operations take a Bearer credential, and which need
    one: derived from each route's dependencies, so the document cannot drift from the code."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "tm_live_... (a platform's API key) or tm_siwe_... (a creator's "
                "Sign-In with Ethereum session)",
            }
        }
        for context in iter_route_contexts(app.routes):
            route = context.route
            if not isinstance(route, APIRoute):
                continue
            names = set(_dependency_names(route.dependant))
            # ``authenticated`` and its variants (``authenticated_signed_write``).
            if not any(name.startswith("authenticated") for name in names):
                continue
            required = any(name.startswith("require_") for name in names)
            for method in route.methods or ():
                operation = schema["paths"][route.path_format][method.lower()]
                operation["security"] = [{"bearer": []}] if required else [{}, {"bearer": []}]
        declare_body_caps(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _dependency_names(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield getattr(dependency.call, "__name__", "")
        yield from _dependency_names(dependency)
