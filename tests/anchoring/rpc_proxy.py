"""A loopback JSON-RPC proxy in front of anvil, to inject what only production nodes do.

Modes: ``geth`` rewrites anvil's own refusal wordings into geth's ("already known", ...);
``hang`` answers nothing for a while (a node that hangs, THREATS 31). It counts the requests
it saw per method, so a test can prove nothing was retried behind its back, keeps the raw
transactions sent through it (``sent_raw``), and lets a test rewrite any answer
(``rewrite(method, answer)``: a node that lies, THREATS 45).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANVIL_TO_GETH = {
    "transaction already imported": "already known",
    "nonce too low": "nonce too low: address 0xf39f, tx: 0 state: 1",
}


class RpcProxy:
    def __init__(self, upstream: str, mode: str = "geth", hang_seconds: float = 5.0) -> None:
        self.upstream = upstream
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.seen: Counter[str] = Counter()
        self.sent_raw: list[bytes] = []
        self.rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                method = request.get("method", "?")
                proxy.seen[method] += 1
                if method == "eth_sendRawTransaction":
                    proxy.sent_raw.append(bytes.fromhex(request["params"][0].removeprefix("0x")))
                if proxy.mode == "hang":
                    time.sleep(proxy.hang_seconds)
                answer = proxy._forward(method, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _forward(self, method: str, body: bytes) -> bytes:
        request = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        error = answer.get("error")
        if self.mode == "geth" and isinstance(error, dict):
            for anvil_words, geth_words in ANVIL_TO_GETH.items():
                if anvil_words in str(error.get("message", "")).lower():
                    error["message"] = geth_words
        if self.rewrite is not None:
            answer = self.rewrite(method, answer)
        return json.dumps(answer).encode()

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
