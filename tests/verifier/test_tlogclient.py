"""The static API client: bounded bodies, gzip (and gzip bombs), a deleted partial tile read
from its full one, 404s, kept-alive connections, on a real server on loopback."""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bench.staticserver import serving_directory
from registry.errors import ConfigurationError
from registry.tlogtiles import TileRef, encode_bundle
from verifier.problems import RegistryUnreachable, UnexpectedAnswer
from verifier.tlogclient import MAX_RETRIES, TlogClient

FULL_TILE = bytes(range(256)) * 32
ENTRY = bytes(224)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    for ref, data in (
        (TileRef(0, 0, 256), FULL_TILE),
        (TileRef(None, 0, 256), encode_bundle([ENTRY] * 256)),
        (TileRef(0, 1, 256), FULL_TILE + b"x"),  # one byte too many
    ):
        path = tmp_path / ref.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (tmp_path / "checkpoint").write_bytes(b"origin\n0\n")
    return tmp_path


@pytest.fixture
def url(directory: Path) -> Iterator[str]:
    with serving_directory(directory) as served:
        yield served


def test_resources_in_order_and_a_deleted_partial_from_the_full_one(url: str) -> None:
    with TlogClient(url + "/") as client:
        assert client.prefix == url
        assert client.checkpoint() == b"origin\n0\n"
        # Neither partial was written: each is cut from the full one (tlog-tiles allows a
        # log to delete a partial tile once the full one exists).
        refs = [TileRef(0, 0, 256), TileRef(0, 0, 5), TileRef(None, 0, 3)] * 10
        bodies = list(client.resources(refs))
        assert bodies[:3] == [FULL_TILE, FULL_TILE[:160], encode_bundle([ENTRY] * 3)]
        assert bodies == bodies[:3] * 10


def test_a_body_larger_than_its_resource_is_refused(url: str) -> None:
    with TlogClient(url) as client:
        with pytest.raises(UnexpectedAnswer, match="over 8,192 bytes"):
            client.resource(TileRef(0, 1, 256))
        # The connection is still usable (or replaced) after a refusal.
        assert client.resource(TileRef(0, 0, 256)) == FULL_TILE
        with pytest.raises(UnexpectedAnswer, match="404"):
            client.resource(TileRef(0, 7, 256))


class _Gzip(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (gzip.compress(FULL_TILE), FULL_TILE),
        (gzip.compress(FULL_TILE + bytes(10_000_000)), None),  # 10 MB from ~10 KB: refused
        (b"not gzip at all", None),
    ],
    ids=["gzip", "bomb", "garbage"],
)
def test_gzip_answers_are_bounded_once_decoded(body: bytes, expected: bytes | None) -> None:
    handler = type("Handler", (_Gzip,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with TlogClient(f"http://127.0.0.1:{server.server_address[1]}") as client:
            if expected is None:
                with pytest.raises(UnexpectedAnswer):
                    client.resource(TileRef(0, 0, 256))
            else:
                assert client.resource(TileRef(0, 0, 256)) == expected
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_log_and_bad_prefixes() -> None:
    # The discard port: refused.
    with (
        TlogClient("http://127.0.0.1:9", timeout=2) as client,
        pytest.raises(RegistryUnreachable, match="checkpoint"),
    ):
        client.checkpoint()
    for prefix in ("ftp://host/log", "http://user:pw@host/log", "http://host/log?x=1", "host"):
        with pytest.raises(ConfigurationError):
            TlogClient(prefix)


class _RateLimited(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    refusals = 0  # class-wide: the requests refused before one is answered

    def do_GET(self) -> None:
        cls = type(self)
        if cls.refusals:
            cls.refusals -= 1
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(FULL_TILE)))
        self.end_headers()
        self.wfile.write(FULL_TILE)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("refusals", "answered"), [(3, True), (MAX_RETRIES + 1, False)])
def test_a_rate_limit_is_waited_out_a_bounded_number_of_times(
    refusals: int, answered: bool
) -> None:
    handler = type("Handler", (_RateLimited,), {"refusals": refusals})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with TlogClient(f"http://127.0.0.1:{server.server_address[1]}") as client:
            if answered:
                assert client.resource(TileRef(0, 0, 256)) == FULL_TILE
            else:
                with pytest.raises(UnexpectedAnswer, match="429"):
                    client.resource(TileRef(0, 0, 256))
    finally:
        server.shutdown()
        server.server_close()


class _Varied(BaseHTTPRequestHandler):
    """Each answer its own way: chunked for tiles of odd index, HTTP/1.0 (close) when asked."""

    protocol_version = "HTTP/1.1"
    served: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        body = self.served.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        if self.path.endswith(("1", "3", "5", "7", "9")):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 1000):
                part = body[start : start + 1000]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("protocol", ["HTTP/1.1", "HTTP/1.0"])
def test_pipelined_answers_chunked_or_closing_equal_one_by_one(protocol: str) -> None:
    refs = [TileRef(0, index, 256) for index in range(30)] + [TileRef(0, 99, 7)]
    served = {f"/{ref.path()}": os.urandom(ref.width * 32) for ref in refs}
    served[f"/{TileRef(0, 99, 256).path()}"] = served.pop(f"/{refs[-1].path()}") + bytes(7968)
    handler = type("Handler", (_Varied,), {"served": served, "protocol_version": protocol})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with TlogClient(url) as pipelined, TlogClient(url, pipelining=False) as pooled:
            expected = [served[f"/{ref.path()}"] for ref in refs[:-1]]
            expected.append(served[f"/{TileRef(0, 99, 256).path()}"][: 7 * 32])  # 404: cut
            assert list(pipelined.resources(refs)) == expected
            assert list(pooled.resources(refs)) == expected
    finally:
        server.shutdown()
        server.server_close()


def test_a_gzip_bomb_is_refused_on_the_pipelined_path_too() -> None:
    handler = type("Handler", (_Gzip,), {"body": gzip.compress(bytes(10_000_000))})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with TlogClient(url) as client, pytest.raises(UnexpectedAnswer, match="over 8,192"):
            list(client.resources([TileRef(0, 0, 256)]))
    finally:
        server.shutdown()
        server.server_close()
