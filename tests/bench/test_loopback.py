"""``bench.loopback``, how the benchmarks start a server child: a free loopback port, and
waiting until it answers, or failing with its log's tail when it dies or never answers; and
``bench.common.rotations``, the order of their interleaved rounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import rotations
from bench.loopback import NotServing, free_port, http_status, wait_until_serving

#: A server that answers ``GET /livez`` with 200 and anything else with 404, after a delay.
SERVER = """
import http.server, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/livez" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
time.sleep(0.5)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def _child(code: str, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    sink = log.open("wb") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-c", code, *args], stdout=sink, stderr=sink)
    finally:
        if log:
            sink.close()  # type: ignore[union-attr]


def test_waits_until_the_server_answers() -> None:
    port = free_port()
    assert http_status(port, "/livez") == 0  # nothing there yet
    server = _child(SERVER, str(port))
    try:
        took = wait_until_serving(server, port, seconds=60, interval=0.05)
        assert 0.4 < took < 60
        assert http_status(port, "/livez") == 200
        assert http_status(port, "/other") == 404
    finally:
        server.kill()
        server.wait()


def test_a_server_that_dies_fails_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    dead = _child("import sys; print('cannot bind: no'); sys.exit(3)", log=log)
    with pytest.raises(NotServing, match=r"exited with 3(.|\n)*cannot bind: no"):
        wait_until_serving(dead, free_port(), seconds=60, interval=0.05, log=log)


def test_a_server_that_never_answers_times_out() -> None:
    silent = _child("import time; time.sleep(60)")
    try:
        with pytest.raises(NotServing, match="did not answer /livez within"):
            wait_until_serving(silent, free_port(), seconds=0.3, interval=0.05)
    finally:
        silent.kill()
        silent.wait()


def test_an_answer_outside_the_accepted_statuses_is_not_ready() -> None:
    port = free_port()
    server = _child(SERVER, str(port))
    try:
        with pytest.raises(NotServing, match="within"):
            wait_until_serving(server, port, path="/other", seconds=2, interval=0.05)
        assert (
            wait_until_serving(
                server, port, path="/other", statuses=(404,), seconds=60, interval=0.05
            )
            >= 0
        )
    finally:
        server.kill()
        server.wait()


def test_rotations_let_each_kind_go_first_in_turn() -> None:
    assert list(rotations(["a", "b"], 3)) == [(0, ["a", "b"]), (1, ["b", "a"]), (2, ["a", "b"])]
    assert [order for _, order in rotations([1, 2, 3], 4)] == [
        [1, 2, 3],
        [2, 3, 1],
        [3, 1, 2],
        [1, 2, 3],
    ]
