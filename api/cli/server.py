"""Setting up and running the registry: ``init`` and ``serve``."""

from __future__ import annotations

import logging
import signal
import threading

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


@app.command()
def serve() -> None:
    """Run the registry: the HTTP API on 127.0.0.1, the sequencer and the anchoring worker
    (with the embedded dev chain unless TRACEMARK_CHAIN_RPC_URL is set), and the risk worker
    in a process of its own."""
    import uvicorn

    from anchoring.loop import run_anchoring
    from anchoring.runtime import start_anchoring
    from anchoring.settings import load_anchoring_settings
    from anchoring.witnessing import Witnessing
    from api.app import create_app
    from api.riskprocess import RiskProcess
    from api.trustroot import TrustRootConfig
    from registry.sequencer import run_sequencer

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
        # Before the chain starts: a witness URL the client refuses stops here, in one line.
        witnessing = (
            Witnessing(registry, registry.witness_policy)
            if registry.witness_policy is not None
            else None
        )
        runtime = start_anchoring(registry, state.settings, anchoring)
    stop = threading.Event()
    # NOTE: uvicorn replaces these while it serves and, when it stops, re-raises the signal it
    # caught into whatever handler was there before: ours, which only sets ``stop``, so the
    # cleanup below runs (the default handler would end the process on the spot).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("tracemark").info(
        "registry %s serving %s (data in %s); Ctrl-C stops",
        registry.address,
        registry.engine.url.render_as_string(hide_password=True),
        state.settings.data_dir,
    )
    head = registry.latest_tree_head()
    if head is None:
        logging.getLogger("tracemark").info(
            "the log is empty; in another shell try: . .venv/bin/activate && tracemark keys new"
            " && tracemark register FILE --product demo --new-product"
        )
    else:
        logging.getLogger("tracemark").info("log at size %d", head.tree_size)
    where = runtime.devchain.rpc_url + " (embedded dev chain)" if runtime.devchain else "chain"
    logging.getLogger("tracemark").info(
        "anchoring to %s on chain %s via %s", runtime.chain.address, runtime.chain.chain_id(), where
    )
    workers = [
        threading.Thread(
            target=run_anchoring,
            args=(runtime.worker,),
            kwargs={"interval": 1.0, "stop": stop},
            name="anchoring",
            daemon=True,
        ),
        threading.Thread(
            target=run_sequencer,
            args=(registry,),
            kwargs={"interval": state.settings.sequencer_interval, "stop": stop},
            name="sequencer",
            daemon=True,
        ),
    ]
    if witnessing is not None:
        # Checkpoints are published (served, anchored) only at the witness quorum (issue 15).
        from anchoring.witnessing import run_witnessing

        logging.getLogger("tracemark").info(
            "witnesses: %d in the policy, quorum %r",
            len(witnessing.policy.witnesses),
            witnessing.policy.quorum,
        )
        workers.append(
            threading.Thread(
                target=run_witnessing,
                args=(witnessing,),
                kwargs={"interval": state.settings.sequencer_interval, "stop": stop},
                name="witnessing",
                daemon=True,
            )
        )
    for worker in workers:
        worker.start()
    risk = RiskProcess(state.settings)
    risk.start()
    # The API in the foreground: uvicorn (uvloop + httptools) owns SIGINT/SIGTERM and returns
    # when asked to stop; then the sequencer and the worker finish their step and stop.
    # The header cap, and X-Forwarded-For believed only from TRACEMARK_TRUSTED_PROXIES.
    from api.serving import uvicorn_config

    config = uvicorn_config(
        create_app(
            registry,
            runtime.chain,
            siwe_domain=f"{state.settings.api_host}:{state.settings.api_port}",
            trust_root=TrustRootConfig(
                name=state.settings.registry_name,
                url=state.settings.public_url
                or f"http://{state.settings.api_host}:{state.settings.api_port}",
                confirmations=None
                if anchoring.anchor_use_finalized
                else anchoring.anchor_confirmations,
                finalized=anchoring.anchor_use_finalized,
            ),
            api_settings=api_settings,
        ),
        host=state.settings.api_host,
        port=state.settings.api_port,
        settings=api_settings,
    )
    server = uvicorn.Server(config)
    logging.getLogger("tracemark").info(
        "API on http://%s:%d (docs at /docs)", state.settings.api_host, state.settings.api_port
    )
    try:
        server.run()
    finally:
        stop.set()
        risk.stop()
        for worker in workers:
            worker.join(timeout=30)
        runtime.close()
    logging.getLogger("tracemark").info("stopped")
