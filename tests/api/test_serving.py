"""The API as ``tracemark serve`` runs it (``api.serving.uvicorn_config``: uvicorn, httptools,
on a loopback port): the header cap, and X-Forwarded-For believed only from trusted proxies."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from anchoring.devchain import free_port
from api.app import create_app
from api.pow import body_binding, solve
from api.ratelimit import Limit, RateLimits
from api.serving import MAX_HEADER_BYTES, uvicorn_config
from api.settings import ApiSettings
from registry.service import Registry
from tests.api.conftest import CodeGood
from tests.serving import serving

ROOMY = Limit(10_000, 10_000)


@contextmanager
def served(registry: Registry, settings: ApiSettings) -> Iterator[str]:
    app = create_app(
        registry,
        limits=RateLimits(anonymous=ROOMY, probe=ROOMY),
        api_settings=settings,
        telemetry_interval=0.05,
    )
    port = free_port()
    config = uvicorn_config(app, host="127.0.0.1", port=port, settings=settings)
    with serving(app, port, config=config) as url:
        yield url


def post(url: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


def livez_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url + "/livez", timeout=10) as reply:
        assert reply.status == 200
    return time.monotonic() - started


def huge_header(port: int, megabytes: int) -> tuple[bytes, float]:
    """Send a request whose one header is ``megabytes`` MiB; what came back, and how fast."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * (1 << 20)
        try:
            for _ in range(megabytes):
                sock.sendall(chunk)
        except OSError:
            pass  # the server closed the connection: what it should do
        try:
            reply = sock.recv(65536)
        except OSError:
            reply = b""
    return reply, time.monotonic() - started


def test_a_huge_header_is_refused_at_once_and_the_server_stays_fast(registry: Registry) -> None:
    with served(registry, ApiSettings()) as url:
        port = int(url.rsplit(":", 1)[1])
        results: list[tuple[bytes, float]] = []
        blasters = [
            threading.Thread(target=lambda: results.append(huge_header(port, 64))) for _ in range(4)
        ]
        for thread in blasters:
            thread.start()
        during = livez_seconds(url)
        for thread in blasters:
            thread.join(timeout=30)
        assert len(results) == 4
        for reply, seconds in results:
            assert reply.startswith(b"HTTP/1.1 431 ") or reply == b"", reply[:80]
            assert seconds < 3.0, seconds
        assert any(reply.startswith(b"HTTP/1.1 431 ") for reply, _ in results)
        assert during < 1.0 and livez_seconds(url) < 0.5
        # Under the cap is fine, and a body sent with the head is not counted as head.
        assert post(url, "/livez", None, {"X-Pad": "p" * (MAX_HEADER_BYTES // 2)}) == 200
        document = {"good_type": "file", "fingerprint": "0x" + "00" * 32}
        padded = b" " * (48 * 1024) + json.dumps(document).encode()
        request = urllib.request.Request(
            url + "/v1/verify", data=padded, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert reply.status == 200


def code_lookups(url: str, good: CodeGood, count: int, forwarded: bool) -> list[int]:
    statuses = []
    for i in range(count):
        body = {"good_type": "code", "code": f"guess-{i}", "creator": good.creator.address}
        headers = {"X-Forwarded-For": f"203.0.{i // 250}.{i % 250 + 1}"} if forwarded else {}
        request = urllib.request.Request(
            url + "/v1/verify/challenge", data=b"", headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            issued = json.loads(reply.read())
        binding = body_binding("code", body["creator"], None, body["code"])
        proof = solve(issued["challenge"], issued["difficulty"], binding)
        statuses.append(post(url, "/v1/verify", body, {**headers, "X-Tracemark-Pow": proof}))
    return statuses


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    registry: Registry, code_good: CodeGood, caplog: pytest.LogCaptureFixture
) -> None:
    # No proxy trusted (the default): 200 lookups, each naming another client, share the TCP
    # peer's budget of 10.
    with served(registry, ApiSettings(anon_pow_bits=0)) as url:
        statuses = code_lookups(url, code_good, 200, forwarded=True)
        assert statuses == [200] * 10 + [429] * 190
    # The loopback proxy trusted: its X-Forwarded-For names the client, each its own budget.
    trusted = ApiSettings(anon_pow_bits=0, trusted_proxies="127.0.0.1")
    with served(registry, trusted) as url:
        assert code_lookups(url, code_good, 30, forwarded=True) == [200] * 30
        # What a trusted proxy forwards is still parsed: text is no address, and no log line.
        with caplog.at_level(logging.INFO, logger="tracemark"):
            refused = post(
                url,
                "/livez",
                None,
                {"X-Forwarded-For": "<not an address> EVIL", "Authorization": "Bearer x"},
            )
            time.sleep(0.1)
        assert refused == 401
        assert "EVIL" not in caplog.text and "not an address" not in caplog.text
