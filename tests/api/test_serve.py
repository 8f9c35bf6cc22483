"""`tracemark serve` on the embedded default: the sequencer signs heads, the worker anchors
them on the dev chain it starts, a restart keeps every anchored head, and SIGTERM stops
everything cleanly with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from anchoring.devchain import free_port

TRACEMARK = str(Path(sys.executable).parent / "tracemark")


def _serve_until(
    env: dict[str, str], marker: str, while_up: Callable[[], None] | None = None
) -> str:
    """Run serve until a log line contains ``marker`` (then call ``while_up``), SIGTERM it;
    returns its log."""
    server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert server.stderr is not None
        for line in server.stderr:  # bounded: each step happens within a few ticks
            lines.append(line)
            if marker in line:
                break
        else:
            pytest.fail(f"serve exited before {marker!r}:\n" + "".join(lines))
        if while_up is not None:
            while_up()
        server.send_signal(signal.SIGTERM)
        lines.append(server.communicate(timeout=60)[1])
    finally:
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

    first = _serve_until(env, "anchor of head 1: mined -> final", ask_the_api)
    assert "signed tree head size=1 " in first and "embedded dev chain" in first
    assert f"API on http://127.0.0.1:{port}" in first
    assert answers["/livez"] == {"status": "ok"}
    assert answers["/readyz"]["checks"] == {  # type: ignore[index]
        "database": "ok",
        "anchoring_worker": "ok",
        "chain": "ok",
    }
    assert answers["/v1/log/head"]["tree_size"] == 1  # type: ignore[index]
    assert "stopped" in first

    run("register", str(tmp_path / "b"), "--product", "art")
    second = _serve_until(env, "anchor of head 2: mined -> final")
    assert "anchor of head 2: sealed (extends 1)" in second  # the restarted chain kept head 1
    assert "no longer on chain" not in second
