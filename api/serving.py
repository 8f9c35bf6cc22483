"""How ``tracemark serve`` runs the app under uvicorn: the header cap and the trusted proxies.

- Headers are capped at ``MAX_HEADER_BYTES`` (THREATS 40, issue 12). httptools has no limit
  of its own and gathers a header's pieces by concatenation, so one 64 MB header stalled the
  event loop for seconds and four of them took the RSS from 170 to 497 MB. The protocol below
  feeds the parser at most that many bytes of a request's head; a head that is not complete
  by then is answered 431 and the connection closed, before the parser holds any of it.
- ``X-Forwarded-For`` is believed only from ``TRACEMARK_TRUSTED_PROXIES`` (uvicorn's own
  default trusts loopback, which let anyone behind a local proxy, or on the host, pick the
  address its rate limits are keyed by). The address the app then sees is parsed again
  before use (``api.network``).
"""

from __future__ import annotations

import json
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import MEDIA_TYPE, PROBLEM_TYPE
from api.settings import ApiSettings

#: The most bytes a request's line and headers may take together. 16 KiB, as Node's default
#: and h11's: a tracemark request carries a Bearer credential (at most 512 characters), a
#: proof of work (~80) and a browser's usual dozen headers, far below it.
MAX_HEADER_BYTES: Final = 16 * 1024

_REFUSAL: Final = json.dumps(
    {
        "type": PROBLEM_TYPE.format(code="header-too-large"),
        "title": "RequestHeaderFieldsTooLarge",
        "status": 431,
        "detail": f"a request's line and headers are at most {MAX_HEADER_BYTES:,} bytes",
    }
).encode()
#: RFC 6585 §5, sent as is: no app, no middleware, nothing of the request is parsed.
_RESPONSE_431: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    + b"content-type: "
    + MEDIA_TYPE.encode()
    + b"\r\ncontent-length: "
    + str(len(_REFUSAL)).encode()
    + b"\r\nconnection: close\r\n\r\n"
    + _REFUSAL
)


class HeaderCappedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, fed at most ``MAX_HEADER_BYTES`` of each request head."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Bytes of the current head fed to the parser so far, while ``_in_head``.
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = MAX_HEADER_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # More than the head may still take: feed what it may, and the rest only if the head
        # ended within it (the rest is then the body).
        super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head:
            self._refuse()
            return
        super().data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The next bytes start the next request's head. (Bytes of it that arrived in the
        # chunk that ended this request were fed uncounted: at most one read's worth.)
        self._in_head = True
        self._head_bytes = 0

    def _refuse(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.write(_RESPONSE_431)
        # else a pipelined request is still being answered: a 431 now would land inside its
        # response, so the connection just closes.
        self.transport.close()


def uvicorn_config(app: Any, *, host: str, port: int, settings: ApiSettings) -> uvicorn.Config:
    """The uvicorn configuration ``serve`` runs (and the tests run, on a loopback port)."""
    proxies = [str(network) for network in settings.proxies]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HeaderCappedHttpTools,
        # The same cap if anyone switches to h11 (its default is also 16 KiB).
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # NOTE: uvicorn trusts X-Forwarded-For from loopback unless told otherwise; here it
        # trusts exactly the configured proxies, and none by default.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        # No access log: a request line may carry what a client wrongly put in a URL.
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


__all__ = ["MAX_HEADER_BYTES", "HeaderCappedHttpTools", "uvicorn_config"]
