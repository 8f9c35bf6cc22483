"""A witness (``tracemark witness``'s app) served by uvicorn on an ephemeral loopback port, in
a thread, for tests that talk to it over real HTTP (the witness's own tests, the registry's
witnessing tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from api.witnessapp import WitnessApp, create_witness_app, witness_uvicorn_config
from registry.witnessconfig import WitnessConfig

#: How long the witness may take to listen after its thread starts (seconds).
START_TIMEOUT = 30.0


@contextmanager
def running_witness(
    config: WitnessConfig, clock: Callable[[], int] | None = None
) -> Iterator[tuple[str, WitnessApp]]:
    """Serve the witness ``config`` describes on 127.0.0.1 (a port the OS picks) until the
    block ends; yields its base URL (``<url>/add-checkpoint``) and the app (its ``witness``
    and state are inspectable). The state directory is released at the end."""
    app = create_witness_app(config, clock)
    server = uvicorn.Server(witness_uvicorn_config(app, host="127.0.0.1", port=0))
    thread = threading.Thread(target=server.run, name="witness", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("the witness did not start")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        app.close()
