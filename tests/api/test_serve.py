"""`tracemark serve`: the sequencer integrates queued entries, logs each signed head, and stops
cleanly on SIGTERM with nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TRACEMARK = str(Path(sys.executable).parent / "tracemark")


@pytest.mark.slow
def test_serve_sequences_logs_heads_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRACEMARK_DATA_DIR": str(tmp_path / "data"),
        "TRACEMARK_SEQUENCER_INTERVAL": "0.2",
    }
    artwork = tmp_path / "art.bin"
    artwork.write_bytes(b"an artwork")

    def run(*args: str) -> str:
        return subprocess.run(
            [TRACEMARK, *args], env=env, check=True, capture_output=True, text=True, timeout=60
        ).stdout

    run("keys", "new")
    run("register", str(artwork), "--json")  # queued: no head yet
    server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        lines = []
        for line in server.stderr:  # bounded: the server logs a head within a few ticks
            lines.append(line)
            if "signed tree head size=1 " in line:
                break
        else:
            pytest.fail("serve exited without signing a head:\n" + "".join(lines))
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=30)[1]
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0
    assert "stopped" in rest
    assert '"tree_size": 1' in run("log", "head", "--json")
