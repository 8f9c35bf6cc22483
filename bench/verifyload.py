"""The verify benchmark's load: closed-loop keep-alive HTTP/1.1 connections on the client's event
loop, each answer checked, and the CPU the machine's other processes took meanwhile."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.verifyserver import content_length

ACCEPTED = (b'"verdict":"authentic"', b'"verdict":"pending_anchor"')


def machine_busy_seconds() -> float:
    """CPU seconds the processes on the machine have used (all cores), from /proc/stat.

    Niced user time is left out: a niced process (a background job) yields its CPU to the
    benchmark's processes, so it takes little from them and is no reason to wait."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, _nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(own: Callable[[], float], limit: float, max_wait: float) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``limit`` cores; the
    foreign load seen last (cores). The machine is shared: someone's test suite running
    next to the benchmark moves every number."""
    deadline = time.monotonic() + max_wait
    while True:
        busy, mine, started = machine_busy_seconds(), own(), time.monotonic()
        time.sleep(1.0)
        foreign = (machine_busy_seconds() - busy - (own() - mine)) / (time.monotonic() - started)
        if foreign < limit or time.monotonic() >= deadline:
            return foreign


def build_requests(meta: dict[str, Any], kind: str, port: int) -> list[bytes]:
    """One request per sampled good (shuffled), keys round robin."""
    pairs = list(meta["pairs"])
    random.Random(kind).shuffle(pairs)
    keys = meta["api_keys"]
    out = []
    for i, (code, fingerprint) in enumerate(pairs):
        if kind == "code":
            body = {"good_type": "code", "code": code, "creator": meta["creator"]}
        else:
            body = {"good_type": "code", "fingerprint": fingerprint}
        path = "/bare" if kind == "bare" else "/v1/verify"
        data = json.dumps(body, separators=(",", ":")).encode()
        out.append(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {keys[i % len(keys)]}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data
        )
    return out


@dataclass
class Load:
    """One stretch of closed-loop load over the open connections."""

    requests: list[bytes]
    check: Callable[[int, bytes], str | None]
    limit: int
    deadline: float
    done: asyncio.Future[None]
    issued: int = 0
    completed: int = 0
    busy: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    last: float = 0.0

    def next_request(self) -> bytes | None:
        if self.issued >= self.limit or time.perf_counter() >= self.deadline:
            return None
        request = self.requests[self.issued % len(self.requests)]
        self.issued += 1
        return request


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.load: Load | None = None
        self.buf = b""
        self.need = -1
        self.status = 0
        self.sent = 0.0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.load is not None and not self.load.done.done():
            self.load.done.set_exception(ConnectionError("the server closed a connection"))

    def start(self, load: Load) -> bool:
        request = load.next_request()
        if request is None:
            return False
        self.load = load
        load.busy += 1
        self.sent = time.perf_counter()
        self.transport.write(request)
        return True

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.status = int(buf[9:12])
            self.need = end + 4 + content_length(buf[:end])
        if len(buf) < self.need:
            self.buf = buf
            return
        now = time.perf_counter()
        body, self.buf, need, self.need = buf[: self.need], buf[self.need :], self.need, -1
        load = self.load
        assert load is not None
        load.completed += 1
        load.last = now
        load.latencies.append(now - self.sent)
        problem = load.check(self.status, body[body.find(b"\r\n\r\n") + 4 : need])
        if problem is not None:
            load.errors[problem] += 1
            if len(load.samples) < 3:
                load.samples.append(body[-300:].decode(errors="replace"))
        request = load.next_request()
        if request is None:
            load.busy -= 1
            self.load = None
            if load.busy == 0 and not load.done.done():
                load.done.set_result(None)
            return
        self.sent = now
        self.transport.write(request)


def check_bare(status: int, body: bytes) -> str | None:
    return None if status == 200 else f"HTTP {status}"


def check_verify(status: int, body: bytes) -> str | None:
    if status != 200:
        return f"HTTP {status}"
    if any(accepted in body for accepted in ACCEPTED):
        return None
    try:
        return f"verdict {json.loads(body).get('verdict')}"
    except ValueError:
        return "not JSON"


async def drive(
    port: int,
    requests: list[bytes],
    check: Callable[[int, bytes], str | None],
    *,
    connections: int,
    warmup: float,
    limit: int,
    seconds: float,
    server_cpu: Callable[[], float],
) -> dict[str, Any]:
    """Warm up (thrown away), then ``limit`` requests or ``seconds``, on the same connections.

    CPU time is read at the measured stage's ends: the client's (this process), the server's
    (``server_cpu``) and the whole machine's, so what other processes took is known too."""
    loop = asyncio.get_running_loop()
    conns: list[Connection] = []
    for _ in range(connections):
        _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
        conns.append(conn)
    try:
        result: dict[str, Any] = {}
        for stage, count, span in (("warmup", 10**12, warmup), ("measure", limit, seconds)):
            if span <= 0:
                continue
            started = time.perf_counter()
            load = Load(requests, check, count, started + span, loop.create_future())
            cpu, srv, machine = time.process_time(), server_cpu(), machine_busy_seconds()
            if not any([conn.start(load) for conn in conns]):
                continue
            await load.done
            cpu, srv = time.process_time() - cpu, server_cpu() - srv
            machine = machine_busy_seconds() - machine
            elapsed = load.last - started
            result = {
                "requests": load.completed,
                "seconds": elapsed,
                "rps": load.completed / elapsed,
                "latencies": load.latencies,
                "client_cpu_s": cpu,
                "server_cpu_s": srv,
                "foreign_cpu_s": max(0.0, machine - cpu - srv),
                "errors": dict(load.errors),
                "error_samples": load.samples,
                "stage": stage,
            }
        return result
    finally:
        for conn in conns:
            conn.transport.close()
        await asyncio.gather(*(conn.closed for conn in conns))


def interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run_in(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    """Run ``coro`` on the client's loop. Ctrl-C or SIGTERM cancels it and raises
    KeyboardInterrupt here, so that the callers' ``finally`` blocks stop the servers (a
    signal would otherwise land in a protocol callback and be swallowed by the loop)."""
    task = loop.create_task(coro)
    caught: list[int] = []

    def stop(signum: int) -> None:
        caught.append(signum)
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        if caught:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        # uvloop leaves its own handler in place (a Ctrl-C would then be ignored): outside
        # the loop both signals raise KeyboardInterrupt, so the servers are stopped too.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, interrupt)
