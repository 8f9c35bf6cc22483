"""Redis for tests: the machine's shared server (never stopped) under a fresh key prefix, and a
private ``redis-server`` a test may stop, pause and start again on its own loopback port."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from anchoring.devchain import free_port

#: The shared server (issue 16: these machines run one); tests only add and delete keys there.
REDIS_URL = os.environ.get("TRACEMARK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HOW_TO_ENABLE = (
    f"Redis is not reachable at TRACEMARK_TEST_REDIS_URL ({REDIS_URL}); start one "
    "(apt-get install redis-server) or set TRACEMARK_TEST_REDIS_URL to run the shared-limit tests"
)
#: Seconds a private server may take to answer after it is started.
START_TIMEOUT = 10.0


def shared_redis() -> str:
    """``REDIS_URL``, or skip the test when nothing answers there."""
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError:
        pytest.skip(HOW_TO_ENABLE)
    return REDIS_URL


def fresh_prefix() -> str:
    """A key prefix no other test uses."""
    return f"tmtest-{secrets.token_hex(6)}"


def delete_prefixed(url: str, prefix: str) -> None:
    """Every key under ``prefix`` (the test's own), and nothing else."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class RedisServer:
    """A ``redis-server`` of this test's own on 127.0.0.1 (no persistence, a password of its
    own, which logs and alerts must never show): stop, start, pause (SIGSTOP: a hung server)
    and resume it at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed: the Redis outage tests need it")
        self.binary = binary
        self.port = free_port()
        self.password = f"pw-{secrets.token_hex(8)}"
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._process is None, "already running"
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline or self._process.poll() is not None:
                        raise RuntimeError(f"redis-server did not start on {self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.send_signal(signal.SIGCONT)  # a paused server must be able to exit
            process.terminate()
            process.wait(timeout=10)

    def pause(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)


def own_redis() -> Iterator[RedisServer]:
    """The body of a fixture: a started private server, stopped afterwards."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
