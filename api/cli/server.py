"""Setting up and running the registry: ``init`` and ``serve``."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer

from api.cli.app import (
    JsonFlag,
    app,
    emit,
    fail,
    open_registry,
    out,
    reported,
    state,
)
from registry import errors


@app.command()
def init(as_json: JsonFlag = False) -> None:
    """Create the data dir, the registry key and the database (idempotent)."""
    with reported():
        registry = open_registry()
        data = {
            "data_dir": str(state.settings.data_dir),
            "database": registry.engine.url.render_as_string(hide_password=True),
            "registry_address": registry.address,
            "domain": registry.domain.as_dict(),
        }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"registry {data['registry_address']} ready in {data['data_dir']}", markup=False
        ),
    )


RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        metavar="ROLE",
        help="What this process runs: api, sequencer, anchoring, witnessing, risk, webhooks, "
        "telemetry or all (the default); repeat it or give a comma list. Apart only on "
        "PostgreSQL.",
    ),
]


@app.command()
def serve(role: RoleOpt = None) -> None:
    """Run the registry: the HTTP API on 127.0.0.1, the sequencer and the anchoring worker
    (with the embedded dev chain unless TRACEMARK_CHAIN_RPC_URL is set), and the risk worker
    in a process of its own; with --role, only those roles (api replicas, and the singleton
    roles, each held by one process at a time through its lease)."""
    import uvicorn

    from anchoring.loop import run_anchoring
    from anchoring.runtime import AnchoringRuntime, start_anchoring
    from anchoring.settings import load_anchoring_settings
    from anchoring.witnessing import Witnessing
    from api.app import create_app
    from api.riskprocess import RiskProcess
    from api.roles import parse_roles
    from api.siwe import expected_domain
    from api.trustroot import TrustRootConfig
    from registry.lease import Lease
    from registry.ordersweep import DEFAULT_SWEEP_INTERVAL as SWEEP_INTERVAL
    from registry.ordersweep import run_order_sweep
    from registry.sequencer import run_sequencer

    with reported():
        roles = parse_roles(role)
    logging.basicConfig(
        level=state.settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # alembic announces every plugin at INFO on each start; only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from pydantic import ValidationError

    from api.settings import load_api_settings

    try:
        # Every setting is read before anything starts: a bad one is one line and exit 8.
        api_settings = load_api_settings()
        anchoring = load_anchoring_settings()
    except ValidationError as exc:
        names = sorted({"TRACEMARK_" + str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]})
        fail(errors.ConfigurationError(f"invalid setting(s): {', '.join(names)}"))
    with reported():
        registry = open_registry()
        if roles.apart and registry.engine.dialect.name != "postgresql":
            # The leases that keep each singleton role to one process live in PostgreSQL.
            raise errors.ConfigurationError(
                "--role runs roles apart only on PostgreSQL (TRACEMARK_DATABASE_URL); "
                "on SQLite run them all in one process (tracemark serve)"
            )
        # Before the chain starts: a witness URL the client refuses stops here, in one line.
        witnessing = (
            Witnessing(registry, registry.witness_policy)
            if registry.witness_policy is not None and "witnessing" in roles
            else None
        )
        runtime: AnchoringRuntime | None = (
            start_anchoring(registry, state.settings, anchoring) if roles.need_chain else None
        )
    stop = threading.Event()
    # NOTE: uvicorn replaces these while it serves and, when it stops, re-raises the signal it
    # caught into whatever handler was there before: ours, which only sets ``stop``, so the
    # cleanup below runs (the default handler would end the process on the spot).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log = logging.getLogger("tracemark")
    log.info(
        "registry %s serving %s (data in %s); roles: %s; Ctrl-C stops",
        registry.address,
        registry.engine.url.render_as_string(hide_password=True),
        state.settings.data_dir,
        ", ".join(roles.names),
    )
    head = registry.latest_tree_head()
    if head is None:
        log.info(
            "the log is empty; in another shell try: . .venv/bin/activate && tracemark keys new"
            " && tracemark register FILE --product demo --new-product"
        )
    else:
        log.info("log at size %d", head.tree_size)
    if runtime is not None:
        where = runtime.devchain.rpc_url + " (embedded dev chain)" if runtime.devchain else "chain"
        log.info(
            "anchoring to %s on chain %s via %s",
            runtime.chain.address,
            runtime.chain.chain_id(),
            where,
        )
    # Each singleton role this process runs holds its lease (kept by a heartbeat thread;
    # trivially held on SQLite). The risk worker's process holds its own.
    leases = {
        name: Lease(registry.engine, name, seconds=state.settings.lease_seconds)
        for name in roles.singletons
        if name != "risk" and (name != "witnessing" or witnessing is not None)
    }
    keepers = [lease.keep(stop) for lease in leases.values()]
    workers = []
    if "anchoring" in leases and runtime is not None:
        workers.append(_role_thread("anchoring", run_anchoring, runtime.worker, 1.0, stop, leases))
    if "sequencer" in leases:
        interval = state.settings.sequencer_interval
        workers.append(_role_thread("sequencer", run_sequencer, registry, interval, stop, leases))
        # The order sweep is the log's writer too (an auto-confirm logs its sale): same role.
        workers.append(
            _role_thread("sequencer", run_order_sweep, registry, SWEEP_INTERVAL, stop, leases)
        )
    if witnessing is not None:
        # Checkpoints are published (served, anchored) only at the witness quorum (issue 15).
        from anchoring.witnessing import run_witnessing

        log.info(
            "witnesses: %d in the policy, quorum %r",
            len(witnessing.policy.witnesses),
            witnessing.policy.quorum,
        )
        interval = state.settings.sequencer_interval
        workers.append(
            _role_thread("witnessing", run_witnessing, witnessing, interval, stop, leases)
        )
    for worker in workers:
        worker.start()
    risk = RiskProcess(state.settings) if "risk" in roles else None
    if risk is not None:
        risk.start()
    sender = None
    if "webhooks" in leases and "api" not in roles:
        from api.webhooks import WebhookService, WebhookWorker, load_webhook_settings

        sender = WebhookWorker(
            WebhookService(registry, load_webhook_settings()), lease=leases["webhooks"]
        )
        sender.start()
    folder = None
    if "telemetry" in leases and "api" not in roles:
        from registry.telemetryfold import TelemetryFolder

        # Counts of the appended verification events (with the api role, its app folds).
        folder = TelemetryFolder(
            registry.engine,
            interval=state.settings.telemetry_fold_interval,
            lease=leases["telemetry"],
        )
        folder.start()
    try:
        if "api" in roles:
            assert runtime is not None  # the api role needs the chain
            _serve_api(
                create_app(
                    registry,
                    runtime.chain,
                    siwe_domain=expected_domain(state.settings),
                    trust_root=TrustRootConfig(
                        name=state.settings.registry_name,
                        url=state.settings.resolved_public_url,
                        confirmations=None
                        if anchoring.anchor_use_finalized
                        else anchoring.anchor_confirmations,
                        finalized=anchoring.anchor_use_finalized,
                    ),
                    api_settings=api_settings,
                    telemetry_folder=leases.get("telemetry", False),
                    telemetry_fold_interval=state.settings.telemetry_fold_interval,
                    webhook_sender=leases.get("webhooks", False),
                    roles_apart=roles.apart,
                    lease_seconds=state.settings.lease_seconds,
                ),
                api_settings,
                uvicorn,
            )
        else:
            while not stop.wait(1.0):
                pass
    finally:
        stop.set()
        if sender is not None:
            sender.close()
        if folder is not None:
            folder.close()
        if risk is not None:
            risk.stop()
        for worker in workers:
            worker.join(timeout=30)
        for keeper in keepers:
            keeper.join(timeout=10)  # each gives its lease up: a standby takes over at once
        if runtime is not None:
            runtime.close()
    log.info("stopped")


def _role_thread(
    role: str,
    run: Any,
    subject: object,
    interval: float,
    stop: threading.Event,
    leases: dict[str, Any],
) -> threading.Thread:
    """A singleton role's loop in a daemon thread: ``run(subject, interval=, stop=, lease=)``
    with the role's lease (the loops of anchoring, the sequencer and witnessing)."""
    return threading.Thread(
        target=run,
        args=(subject,),
        kwargs={"interval": interval, "stop": stop, "lease": leases[role]},
        name=role,
        daemon=True,
    )


def _serve_api(app_: Any, api_settings: Any, uvicorn: Any) -> None:
    """The API in the foreground: uvicorn (uvloop + httptools) owns SIGINT/SIGTERM and
    returns when asked to stop. The header cap, and X-Forwarded-For believed only from
    TRACEMARK_TRUSTED_PROXIES."""
    from api.serving import uvicorn_config

    config = uvicorn_config(
        app_, host=state.settings.api_host, port=state.settings.api_port, settings=api_settings
    )
    logging.getLogger("tracemark").info(
        "API on http://%s:%d (docs at /docs)", state.settings.api_host, state.settings.api_port
    )
    uvicorn.Server(config).run()
