"""A witness that misbehaves on purpose, over real HTTP on 127.0.0.1: only for the faults the
real witness (``tests.witness_server``) cannot produce. Modes:

- ``bad-cosignature``: 200 with a line under its own key name and id whose signature is over
  another checkpoint (a witness with a broken signer, or an attacker's answer);
- ``no-timestamp``: 200 with a valid-looking line whose timestamp is zero (tlog-witness
  forbids it);
- ``garbage``: 200 with a body that is not signature lines;
- ``bad-409``: 409 without the ``text/x.tlog.size`` body;
- ``hang``: accepts the request and never answers (until the server stops).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.checkpoint import Checkpoint
from registry.cosignature import CosignerV1
from registry.note import NoteSignature, parse_note

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(b"\x42" * 32)
NAME = "witness.test/faulty"
COSIGNER = CosignerV1(NAME, KEY, clock=lambda: 1_700_000_000)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        mode = self.server.mode
        if mode == "hang":
            self.server.release.wait()
            return
        if mode == "bad-409":
            return self._answer(409, "text/plain", b"conflict\n")
        if mode == "garbage":
            return self._answer(200, "text/plain", b"not a signature line\n")
        note = parse_note(body.split(b"\n\n", 1)[1])
        checkpoint = Checkpoint.parse(note.text)
        if mode == "bad-cosignature":
            other = Checkpoint(checkpoint.origin, checkpoint.size + 1, checkpoint.root).text()
            line = COSIGNER.sign(other)
        else:  # no-timestamp
            signed = COSIGNER.sign(note.text)
            line = NoteSignature(
                signed.name, signed.key_id, struct.pack(">Q", 0) + signed.signature[8:]
            )
        self._answer(200, "text/plain; charset=utf-8", line.line().encode())

    def _answer(self, status: int, media_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.release = threading.Event()


@contextmanager
def faulty_witness(mode: str) -> Iterator[str]:
    """Serve a faulty witness in ``mode`` until the block ends; yields its submission URL."""
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, name=f"witness-{mode}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
