"""Servers a benchmark starts on loopback: a free 127.0.0.1 port, and waiting until one serves."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Collection
from pathlib import Path

HOST = "127.0.0.1"
#: How much of a server's log a failure to start quotes.
LOG_TAIL = 2_000


class NotServing(RuntimeError):
    """A server the benchmark started exited, or did not answer in time."""


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; another process may take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str, *, timeout: float = 2.0) -> int:
    """The status of ``GET path`` on 127.0.0.1:``port`` (one connection, closed after); 0 when
    nothing answers."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return int(sock.recv(64)[9:12])
    except (OSError, ValueError):
        return 0


def wait_until_serving(
    process: subprocess.Popen[bytes],
    port: int,
    *,
    seconds: float,
    interval: float,
    path: str = "/livez",
    statuses: Collection[int] = (200,),
    log: Path | None = None,
) -> float:
    """Poll ``GET path`` every ``interval`` s until it answers one of ``statuses``; the seconds
    that took. Raises ``NotServing`` (with the tail of ``log``) when ``process`` exits first or
    ``seconds`` pass."""
    started = time.monotonic()
    while http_status(port, path) not in statuses:
        if process.poll() is not None:
            problem = f"the server exited with {process.returncode}"
        elif time.monotonic() - started > seconds:
            problem = f"the server did not answer {path} within {seconds:.0f} s"
        else:
            time.sleep(interval)
            continue
        if log is not None and log.exists():
            problem += f"; its log ({log}):\n{log.read_text(errors='replace')[-LOG_TAIL:]}"
        raise NotServing(problem)
    return time.monotonic() - started
