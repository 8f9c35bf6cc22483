"""The witness's HTTP front door (c2sp.org/tlog-witness): a small ASGI app over
``registry.witness``, served by uvicorn (``tracemark witness serve``).

- ``POST <submission prefix>/add-checkpoint``: the body (bounded by
  ``MAX_ADD_CHECKPOINT_BYTES``, read before anything is parsed) goes to
  ``Witness.add_checkpoint`` in a worker thread (it verifies, signs and fsyncs); its status,
  media type and plain-text body are sent as they are: the protocol defines the bodies, so no
  problem+json here.
- ``GET <monitoring prefix>/<sha256(origin) hex>/checkpoint``: the latest cosigned checkpoint.
- ``GET /livez``: ``{"status": "ok"}``, for supervisors and tests.

One log line per request (method, path, status, sizes, time): a request carries no secret,
and the witness's keys never reach this module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from registry.witness import MAX_ADD_CHECKPOINT_BYTES, TEXT_MEDIA_TYPE, Answer, Witness
from registry.witnessconfig import WitnessConfig, open_witness

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The path of the add-checkpoint call under the submission prefix.
ADD_CHECKPOINT: Final = "/add-checkpoint"
#: The last segment of the monitoring endpoint's path.
CHECKPOINT: Final = "/checkpoint"
LIVEZ: Final = "/livez"

logger = logging.getLogger("tracemark.witness.http")


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client left before its body was complete: a truncated body is never processed
    (cut after a signature line, it could still be a valid checkpoint)."""


def _plain(status: int, text: str) -> Answer:
    return Answer(status, TEXT_MEDIA_TYPE, text.encode() + b"\n")


class WitnessApp:
    """An ASGI app answering the witness protocol for one ``Witness``."""

    def __init__(
        self, witness: Witness, *, submission_prefix: str = "", monitoring_prefix: str = ""
    ) -> None:
        self.witness = witness
        self._add_path = submission_prefix + ADD_CHECKPOINT
        self._monitoring = monitoring_prefix + "/"

    def close(self) -> None:
        """Release the witness's state directory."""
        self.witness.state.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        received = 0
        try:
            answer, received = await self._route(scope, receive, method, path)
        except _TooLarge:
            answer = _plain(413, f"the body is larger than {MAX_ADD_CHECKPOINT_BYTES} bytes")
        except _Disconnected:
            logger.info("%s %s disconnected before its body was complete", method, path)
            return
        except OSError as exc:
            # The state could not be saved (disk full, I/O error): nothing was cosigned, and
            # the record in memory is the one before (it changes only after a durable save).
            logger.error("%s %s: the state could not be saved: %s", method, path, exc.strerror)
            answer = _plain(500, "the witness could not save its state")
        headers = [
            (b"content-type", answer.content_type.encode()),
            (b"content-length", str(len(answer.body)).encode()),
        ]
        if answer.status == 405:
            headers.append((b"allow", b"POST" if path == self._add_path else b"GET"))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})
        logger.info(
            "%s %s %d in=%d out=%d %.1fms",
            method,
            path,
            answer.status,
            received,
            len(answer.body),
            (time.perf_counter() - started) * 1000,
        )

    async def _route(
        self, scope: Scope, receive: Receive, method: str, path: str
    ) -> tuple[Answer, int]:
        if path == self._add_path:
            if method != "POST":
                return _plain(405, "add-checkpoint is a POST"), 0
            body = await _read_body(scope, receive)
            # Verifying, signing and the fsyncs block: off the event loop.
            return await asyncio.to_thread(self.witness.add_checkpoint, body), len(body)
        if path.startswith(self._monitoring) and path.endswith(CHECKPOINT):
            origin_hex = path[len(self._monitoring) : -len(CHECKPOINT)]
            if "/" not in origin_hex:
                if method != "GET":
                    return _plain(405, "the checkpoint is read with GET"), 0
                return self.witness.latest_checkpoint(origin_hex), 0
        if path == LIVEZ and method == "GET":
            return Answer(200, "application/json", b'{"status": "ok"}'), 0
        return _plain(404, "not found"), 0


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused (413) as soon as it exceeds the bound: declared or sent."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit() and int(value) > MAX_ADD_CHECKPOINT_BYTES:
            raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_ADD_CHECKPOINT_BYTES:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_witness_app(config: WitnessConfig, clock: Callable[[], int] | None = None) -> WitnessApp:
    """The witness a config describes, as an ASGI app (its state dir now owned by this
    process until ``close()``). ``clock`` (POSIX seconds) is for tests."""
    return WitnessApp(
        open_witness(config, clock),
        submission_prefix=config.submission_prefix,
        monitoring_prefix=config.monitoring_prefix,
    )


def witness_uvicorn_config(app: WitnessApp, *, host: str, port: int) -> Any:
    """How ``tracemark witness serve`` runs the app: the API's header cap, no access log (the
    app logs its own line), no proxy headers (a witness trusts no forwarded address)."""
    import uvicorn

    from api.serving import MAX_HEADER_BYTES, HeaderCappedHttpTools

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeaderCappedHttpTools,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        proxy_headers=False,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


__all__ = [
    "ADD_CHECKPOINT",
    "WitnessApp",
    "create_witness_app",
    "witness_uvicorn_config",
]
