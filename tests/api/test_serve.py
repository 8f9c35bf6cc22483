"""`tracemark serve` on the embedded default: the sequencer signs heads, the worker anchors
them on the dev chain it starts, a restart keeps every anchored head, and SIGTERM stops
everything cleanly with nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TRACEMARK = str(Path(sys.executable).parent / "tracemark")


def _serve_until(env: dict[str, str], marker: str) -> str:
    """Run serve until a log line contains ``marker``, then SIGTERM it; returns its log."""
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
        server.send_signal(signal.SIGTERM)
        lines.append(server.communicate(timeout=60)[1])
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, "".join(lines)
    return "".join(lines)


@pytest.mark.slow
def test_serve_signs_anchors_and_survives_a_restart(tmp_path: Path) -> None:
    env = {
        **os.environ,
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
    first = _serve_until(env, "anchor of head 1: mined -> final")
    assert "signed tree head size=1 " in first and "embedded dev chain" in first
    assert "stopped" in first

    run("register", str(tmp_path / "b"), "--product", "art")
    second = _serve_until(env, "anchor of head 2: mined -> final")
    assert "anchor of head 2: sealed (extends 1)" in second  # the restarted chain kept head 1
    assert "no longer on chain" not in second
