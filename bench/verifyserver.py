"""The verify benchmark's server child (the app with ``/bare``, or a raw constant-answer
server) and the parent's handle on it: started on a free port, pinned, its CPU read, ended."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loopback import free_port, wait_until_serving
from bench.verifycache import open_registry

BARE_ANSWER = {"status": "ok"}


def add_bare(app: Any) -> None:
    """``POST|GET /bare``: a constant from a plain FastAPI route, through the whole app.

    Routing is a linear match here, and this FastAPI wraps each included router: a route
    added last would pay for matching every other route first (~20% of a bare request). So
    ``/bare`` gets a router of its own, placed first among the routes, where routing costs
    least. (``/v1/verify`` itself is answered in front of the middleware stack and the
    router, by ``api.app.TracemarkApp``: see ``api.verify_front.VerifyFront``.)
    """
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse

    async def bare() -> JSONResponse:
        return JSONResponse(BARE_ANSWER)

    router = APIRouter()
    router.add_api_route("/bare", bare, methods=["GET", "POST"], include_in_schema=False)
    routes = app.router.routes
    before = len(routes)
    app.include_router(router)
    added = routes[before:]
    del routes[before:]
    # The first entry that is /v1/verify itself or a router wrapper (no path of its own).
    at = next(
        (i for i, r in enumerate(routes) if getattr(r, "path", "/v1/verify") == "/v1/verify"), 0
    )
    routes[at:at] = added


@contextlib.contextmanager
def _profiled(out: Path | None) -> Iterator[None]:
    """cProfile in every thread (the event loop and the threadpool the sync deps run in)."""
    if out is None:
        yield
        return
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        with lock:
            profiles.append(profile)
        profile.enable()

    threading.setprofile(start)
    main = cProfile.Profile()
    profiles.append(main)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        with lock:
            stats = pstats.Stats(main)
            for profile in profiles[1:]:
                with contextlib.suppress(TypeError):  # a thread that never ran
                    profile.create_stats()
                    stats.add(profile)
        stats.dump_stats(str(out))


def serve(cache: Path, port: int, profile: Path | None) -> None:
    import uvicorn

    from api.app import create_app

    registry = open_registry(cache / "data")
    app = create_app(registry)
    add_bare(app)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",  # as `tracemark serve`
    )
    # uvicorn re-raises the signal that stopped it into the handler that was there before:
    # make that one a no-op, so the profile below is written before the process ends.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    with _profiled(profile):
        uvicorn.Server(config).run()


def raw_serve(port: int) -> None:
    """A constant answer straight from a uvloop protocol: the client's ceiling."""
    import uvloop

    answer = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\ncontent-type: application/json\r\n\r\n"
        b'{"status":"ok"}'
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                length = content_length(buf[:end])
                if len(buf) < end + 4 + length:
                    break
                buf = buf[end + 4 + length :]
                self.transport.write(answer)
            self.buf = buf

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(run())


def content_length(head: bytes) -> int:
    at = head.lower().find(b"content-length:")
    if at < 0:
        return 0
    end = head.find(b"\r\n", at)
    return int(head[at + 15 : end if end >= 0 else len(head)])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process, every thread."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def pin(self, cpus: set[int]) -> None:
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(int(task), cpus)


@contextlib.contextmanager
def running(args: list[str]) -> Iterator[Server]:
    """A server child on a free port, up (``/livez``) before use, always ended after."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.verify_bench", *args, "--port", str(port)]
    )
    try:
        # 429: up, and the anonymous budget of this IP is spent by the polling itself.
        wait_until_serving(proc, port, seconds=120, interval=0.1, statuses=(200, 429))
        yield Server(proc, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
