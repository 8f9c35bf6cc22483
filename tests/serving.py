"""The API served by uvicorn on a loopback port, in a thread, for tests that need real HTTP
(the CLI over HTTP, the page in a browser)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

#: How long the API may take to answer /livez after its thread starts (seconds).
START_TIMEOUT = 30.0


@contextmanager
def serving(
    app: Any, port: int, *, name: str = "api", config: uvicorn.Config | None = None
) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:``port`` until the block ends; yields its base URL once
    ``/livez`` answers. ``config`` (for that app, host and port) replaces the default one,
    e.g. ``api.serving.uvicorn_config``: what ``tracemark serve`` runs."""
    if config is None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with urllib.request.urlopen(url + "/livez", timeout=1) as reply:
                assert json.loads(reply.read()) == {"status": "ok"}
                break
        except OSError:
            if time.monotonic() > deadline or not thread.is_alive():
                server.should_exit = True
                pytest.fail("the API did not start")
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
