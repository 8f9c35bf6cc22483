"""`tracemark serve` on the embedded default: the sequencer signs heads, the worker anchors
them on the dev chain it starts, a restart keeps every anchored head, and SIGTERM stops
everything cleanly with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from anchoring.devchain import free_port

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
#: Each step happens within a few ticks; a marker not seen by then never will be.
MARKER_SECONDS = 120


def _serve_until(
    env: dict[str, str], marker: str, while_up: Callable[[], None] | None = None
) -> str:
    """Run serve until a log line contains ``marker`` (then call ``while_up``), SIGTERM it;
    returns its log."""
    server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    # Killing the server ends its stderr, so a marker that never comes fails the test rather
    # than hanging it.
    deadline = threading.Timer(MARKER_SECONDS, server.kill)
    deadline.start()
    lines: list[str] = []
    try:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if marker in line:
                break
        else:
            pytest.fail(
                f"serve exited (or was killed after {MARKER_SECONDS} s) before {marker!r}:\n"
                + "".join(lines)
            )
        deadline.cancel()
        if while_up is not None:
            while_up()
        server.send_signal(signal.SIGTERM)
        lines.append(server.communicate(timeout=60)[1])
    finally:
        deadline.cancel()
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, "".join(lines)
    return "".join(lines)


@pytest.mark.slow
def test_serve_signs_anchors_and_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRACEMARK_API_PORT": str(port),
        "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
        "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
        "TRACEMARK_ANCHOR_MAX_AGE": "0",
        "TRACEMARK_ANCHOR_CONFIRMATIONS": "2",
    }

    def run(*args: str) -> str:
        return subprocess.run(
            [TRACEMARK, *args], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout

    run("keys", "new")
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode())
    run("register", str(tmp_path / "a"), "--product", "art", "--new-product")
    answers: dict[str, object] = {}

    def ask_the_api() -> None:
        for path in ("/livez", "/readyz", "/v1/log/head"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
                answers[path] = json.loads(reply.read())

    # Every head ends with its state commitment (issue 14): one leaf more than its entries.
    head_a, head_b = 1 + 1, 1 + 1 + 1 + 1
    first = _serve_until(env, f"anchor of head {head_a}: mined -> final", ask_the_api)
    assert f"signed tree head size={head_a} " in first and "embedded dev chain" in first
    assert f"API on http://127.0.0.1:{port}" in first
    assert answers["/livez"] == {"status": "ok"}
    assert answers["/readyz"]["checks"] == {  # type: ignore[index]
        "database": "ok",
        "anchoring_worker": "ok",
        "chain": "ok",
    }
    assert answers["/v1/log/head"]["tree_size"] == head_a  # type: ignore[index]
    assert "stopped" in first

    run("register", str(tmp_path / "b"), "--product", "art")
    second = _serve_until(env, f"anchor of head {head_b}: mined -> final")
    # The restarted chain kept the first head.
    assert f"anchor of head {head_b}: sealed (extends {head_a})" in second
    assert "no longer on chain" not in second
