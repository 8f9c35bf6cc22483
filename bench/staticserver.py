"""A plain static file server for a directory of published tiles, on 127.0.0.1.

The standard library's ``SimpleHTTPRequestHandler`` with HTTP/1.1 (it sends Content-Length,
so a client can keep its connection alive: ``python -m http.server`` speaks HTTP/1.0 and
closes after each answer), TCP_NODELAY and quiet logs. Run in a thread by the tests, or as
``python -m bench.staticserver DIR PORT`` in its own process by the benchmark.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the file go out in two writes: with Nagle's algorithm the second waits
    # for the client's delayed ACK of the first, 40 ms a request (nginx's tcp_nodelay).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_server(directory: Path, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``directory`` on 127.0.0.1 (``port`` 0: any free one)."""
    handler = functools.partial(_Handler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


@contextmanager
def serving_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` in a thread until the block ends; yields its URL."""
    server = make_server(directory)
    thread = threading.Thread(target=server.serve_forever, name="static", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def main() -> None:
    server = make_server(Path(sys.argv[1]), int(sys.argv[2]))
    print(f"serving {sys.argv[1]} on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
