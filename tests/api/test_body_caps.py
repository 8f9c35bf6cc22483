"""THREATS 40 and 41 on a real server: every request body and parameter declares its cap in
the OpenAPI document, and bodies over the real caps (a 64 MiB file, a 256 MiB bulk upload)
are refused while they stream, with the server's peak memory bounded (read from the kernel:
``VmHWM`` of the server process), never by timing."""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api.context import MAX_BULK_BYTES, MAX_JSON_BYTES, MAX_UPLOAD_BYTES
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.royalty import RoyaltyPolicy
from tests.api.test_creator_routes import registration_body

pytestmark = pytest.mark.slow

#: What a refused body may add to the server's peak memory. The caps are 64 and 256 MiB: a
#: server that buffered either would blow through this.
MEMORY_BOUND = 48 * 1024 * 1024

SERVER = textwrap.dedent(
    """
    import secrets, sys
    import uvicorn
    from eth_account import Account
    from api.app import create_app
    from registry.db import create_db_engine
    from registry.eip712 import DEV_DOMAIN
    from registry.migrate import upgrade
    from registry.service import Registry

    engine = create_db_engine(f"sqlite:///{sys.argv[1]}/registry.db")
    upgrade(engine)
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=secrets.token_bytes(32)
    )
    uvicorn.run(create_app(registry), host="127.0.0.1", port=int(sys.argv[2]), log_level="error")
    """
)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    def peak_rss(self) -> int:
        """The process's peak resident memory so far, in bytes (Linux ``VmHWM``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("caps")
    port = _free_port()
    # NOTE: its output goes to a file: a pipe nobody reads would fill and stall the server.
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(folder), str(port)], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.kill()
        raise AssertionError("the server did not start")
    try:
        yield Server(process, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its lifespan hung: it must not outlive the tests
            process.kill()
            process.wait(timeout=10)
        log.close()


@dataclass
class Sent:
    status: int
    body_bytes_sent: int


def _stream(server: Server, path: str, headers: dict[str, str], head: bytes, total: int) -> Sent:
    """POST ``head`` then filler up to ``total`` bytes, chunked, until the server answers;
    returns its status and how much of the body it let us send."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    request = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock.sendall(request.encode())
    answered = threading.Event()
    status: list[int] = []

    def read() -> None:
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        if data.startswith(b"HTTP/1.1 "):
            status.append(int(data[9:12]))
        answered.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0
    filler = (b"0x" + b"ab" * 32 + b"\n") * 1024  # 67 KiB of fingerprint lines
    try:
        for piece in itertools.chain((head,) if head else (), itertools.repeat(filler)):
            if answered.is_set() or sent >= total:
                break
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
        if not answered.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed while we were still sending
    answered.wait(60)
    sock.close()
    return Sent(status[0] if status else 0, sent)


def test_threat_41_an_upload_over_the_cap_is_refused_while_it_streams(server: Server) -> None:
    before = server.peak_rss()
    sent = _stream(
        server,
        "/v1/verify/file",
        {"Content-Type": "application/octet-stream"},
        b"",
        MAX_UPLOAD_BYTES + 8 * 1024 * 1024,
    )
    assert sent.status == 413
    # Refused once past the cap, not after the whole body (the server stopped reading).
    assert MAX_UPLOAD_BYTES < sent.body_bytes_sent < MAX_UPLOAD_BYTES + 8 * 1024 * 1024
    assert server.peak_rss() - before < MEMORY_BOUND
    # A declared length over the cap is refused before any byte of the body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/verify/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream"
            f"\r\nContent-Length: {MAX_UPLOAD_BYTES + 1}\r\n\r\n".encode()
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 413")


#: How far past the bulk cap the client goes on sending before the test calls the refusal
#: late: at load 12 the server's 413 came after 16 MiB more had left the client (kernel
#: buffers and a slow answer), so the margin is 64 MiB; the memory bound is the real check.
OVER = 64 * 1024 * 1024


def test_threat_40_a_bulk_body_over_the_cap_is_refused_with_memory_bounded(
    server: Server, tmp_path: Path
) -> None:
    creator = CreatorKeys(Account.create(), os.urandom(32))
    batch = prepare_code_batch(codes_source("AAAA-0001\nAAAA-0002"), creator.require_code_key())
    signed = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="card",
        use=Use.SINGLE,
        royalty_policy=RoyaltyPolicy.parse({"recipients": []}),
        metadata={},
        now=int(time.time()),
        new_product=True,
    )
    head = json.dumps(registration_body(signed)).encode() + b"\n"
    before = server.peak_rss()
    sent = _stream(
        server,
        "/v1/registrations/batches",
        {"Content-Type": "application/x-ndjson"},
        head,
        MAX_BULK_BYTES + OVER,
    )
    assert sent.status == 413, sent
    assert MAX_BULK_BYTES < sent.body_bytes_sent < MAX_BULK_BYTES + OVER
    assert server.peak_rss() - before < MEMORY_BOUND


def _walk(schemas: dict[str, Any], schema: dict[str, Any], where: str, out: list[str]) -> None:
    if "$ref" in schema:
        schema = schemas[schema["$ref"].split("/")[-1]]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            _walk(schemas, sub, where, out)
    kind = schema.get("type")
    if kind == "array":
        if "maxItems" not in schema:
            out.append(f"{where}: an array without maxItems")
        _walk(schemas, schema.get("items", {}), where + "[]", out)
    elif kind == "string" and not any(
        key in schema for key in ("maxLength", "enum", "const", "pattern")
    ):
        out.append(f"{where}: a string without maxLength, pattern or enum")
    for name, sub in schema.get("properties", {}).items():
        _walk(schemas, sub, f"{where}.{name}", out)


def test_threat_40_every_body_and_parameter_declares_its_cap(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    unbounded: list[str] = []
    bodies = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            body = operation.get("requestBody")
            if body is not None:
                bodies += 1
                cap = body.get("x-max-bytes")
                if not isinstance(cap, int) or cap <= 0:
                    unbounded.append(f"{name}: no x-max-bytes on the request body")
                for media, content in body.get("content", {}).items():
                    _walk(schemas, content.get("schema", {}), f"{name} {media}", unbounded)
                if "application/json" in body.get("content", {}):
                    assert cap == MAX_JSON_BYTES, name
            for parameter in operation.get("parameters", []):
                _walk(
                    schemas, parameter.get("schema", {}), f"{name} {parameter['name']}", unbounded
                )
    assert bodies >= 10
    assert unbounded == []
    caps = {
        (path, method): operation["requestBody"]["x-max-bytes"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    assert caps[("/v1/verify/file", "post")] == MAX_UPLOAD_BYTES
    assert caps[("/v1/registrations/batches", "post")] == MAX_BULK_BYTES
    assert caps[("/v1/revocations/batches", "post")] == MAX_BULK_BYTES
