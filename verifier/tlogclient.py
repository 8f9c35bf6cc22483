"""Fetching a log's static API (C2SP tlog-tiles): its checkpoint, tiles and entry bundles.

Plain GETs with no credential, over a few kept-alive connections (``http.client``: a tile is
8 KiB and a catch-up fetches thousands, so a request's own cost matters), every answer
bounded by what the resource can hold. Paths are ``registry.tlogtiles``'s; this module only
moves bytes: what they prove is ``verifier.tiledtree``'s and ``verifier.monitor``'s call.
"""

from __future__ import annotations

import http.client
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final
from urllib.parse import urlsplit

from registry.errors import ConfigurationError
from registry.note import MAX_NOTE_BYTES
from registry.tiles import TILE_WIDTH
from registry.tlogtiles import MAX_ENTRY_SIZE, TileRef
from verifier.problems import RegistryUnreachable, UnexpectedAnswer

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds to wait for a connection or a read (each, not in all)."""

MAX_PARALLEL: Final = 4
"""Connections fetching at once. Threat: a catch-up of 10^6 entries is ~8,000 requests; more
connections than this gain nothing on one host and look like a flood to its operator."""

PREFETCH: Final = 16
"""Resources requested ahead of the one being verified: bounds memory (16 bundles of 57 KiB)
while the connections stay busy."""

MAX_CHECKPOINT_BYTES: Final = MAX_NOTE_BYTES
"""Largest checkpoint read: a note with the spec's 16 signatures and post-quantum ones fits."""

MAX_BUNDLE_ENTRY: Final = MAX_ENTRY_SIZE
"""Largest entry a bundle can frame (uint16 length); a bundle of W is at most W * (2 + this)."""

MAX_RETRIES: Final = 5
"""Times one resource is asked again after a 429 or 503 before the step gives up."""

MAX_RETRY_WAIT: Final = 30.0
"""Longest wait for one ``Retry-After`` (seconds); a longer one is the next step's."""

_ACCEPT: Final = {"Accept-Encoding": "gzip, identity", "User-Agent": "tracemark-monitor"}


def max_bytes(ref: TileRef) -> int:
    """The most bytes resource ``ref`` can hold (a hash tile's size is exact)."""
    return ref.width * (2 + MAX_BUNDLE_ENTRY) if ref.is_entries else ref.width * 32


class TlogClient:
    """One log's static API at ``prefix`` (``http(s)://host[:port][/path]``)."""

    def __init__(
        self,
        prefix: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        parallel: int = MAX_PARALLEL,
    ) -> None:
        parts = urlsplit(prefix.strip())
        try:
            port = parts.port
        except ValueError:
            port = None
            parts = parts._replace(scheme="")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.query
            or parts.fragment
        ):
            raise ConfigurationError(
                "a log's prefix is http(s)://host[:port][/path], without credentials, query "
                "or fragment"
            )
        self.prefix = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, port
        self._path = parts.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, min(parallel, MAX_PARALLEL)), "tlog-fetch")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def __enter__(self) -> TlogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one GET -----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self.timeout)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def get(self, path: str, limit: int) -> bytes | None:
        """The body at ``prefix/path`` (at most ``limit`` bytes once decoded), None on 404."""
        url = f"{self._path}/{path}"
        reconnected = waited = 0
        while True:
            connection = self._connection()
            try:
                connection.request("GET", url, headers=_ACCEPT)
                response = connection.getresponse()
                # An error page is read (bounded) only to keep the connection, never used.
                body = self._read(response, limit if response.status == 200 else 65_536, path)
            except UnexpectedAnswer:
                connection.close()  # its unread rest would answer the next request
                raise
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server closed between requests: one fresh try.
                connection.close()
                if reconnected:
                    raise RegistryUnreachable(
                        f"the log at {self.prefix} closed the connection for {path}"
                    ) from None
                reconnected += 1
                continue
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                reason = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise RegistryUnreachable(
                    f"cannot fetch {path} from the log at {self.prefix}: {reason}"
                ) from None
            if response.status == 404:
                return None
            if response.status in (429, 503) and waited < MAX_RETRIES:
                # A rate limit (the registry's anonymous budget) or a busy server: wait as told.
                retry_after = (response.getheader("Retry-After") or "").strip()
                waited += 1
                time.sleep(
                    min(float(retry_after) if retry_after.isdigit() else 1.0, MAX_RETRY_WAIT)
                )
                continue
            if response.status != 200:
                raise UnexpectedAnswer(f"the log answered {response.status} for {path}")
            return body

    def _read(self, response: http.client.HTTPResponse, limit: int, path: str) -> bytes:
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        # A compressed body is bounded before and after decoding: a gzip bomb stops at limit.
        declared = response.getheader("Content-Length") or ""
        if declared.isdigit() and int(declared) > limit + 1024:
            raise UnexpectedAnswer(f"{path} is over {limit:,} bytes")
        body = response.read(limit + 1025)
        if not response.isclosed():
            # A body longer than any resource here: the caller drops the connection.
            raise UnexpectedAnswer(f"{path} is over {limit:,} bytes")
        if encoding == "gzip":
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                body = inflate.decompress(body, limit + 1)
            except zlib.error:
                raise UnexpectedAnswer(f"{path} is not valid gzip") from None
            if inflate.unconsumed_tail or not inflate.eof:
                raise UnexpectedAnswer(f"{path} is over {limit:,} bytes or cut short")
        elif encoding != "identity":
            raise UnexpectedAnswer(f"{path} came in an encoding not asked for: {encoding}")
        if len(body) > limit:
            raise UnexpectedAnswer(f"{path} is over {limit:,} bytes")
        return body

    # -- the resources -----------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        body = self.get("checkpoint", MAX_CHECKPOINT_BYTES)
        if body is None:
            raise UnexpectedAnswer(f"the log at {self.prefix} has no checkpoint (404)")
        return body

    def resource(self, ref: TileRef) -> bytes:
        """Tile or bundle ``ref``; a partial one gone (the spec lets a log delete it once the
        full one exists) is cut from the full one."""
        body = self.get(ref.path(), max_bytes(ref))
        if body is None and not ref.is_full:
            full = TileRef(ref.level, ref.index, TILE_WIDTH)
            whole = self.get(full.path(), max_bytes(full))
            body = None if whole is None else _prefix(whole, ref)
        if body is None:
            raise UnexpectedAnswer(f"the log at {self.prefix} has no {ref.path()} (404)")
        return body

    def resources(self, refs: Sequence[TileRef]) -> Iterator[bytes]:
        """The bodies of ``refs`` in order, at most ``PREFETCH`` requested ahead."""
        pending: deque[Future[bytes]] = deque()
        queue = iter(refs)
        try:
            for ref in queue:
                pending.append(self._pool.submit(self.resource, ref))
                if len(pending) >= PREFETCH:
                    break
            while pending:
                body = pending.popleft().result()
                ref_next = next(queue, None)
                if ref_next is not None:
                    pending.append(self._pool.submit(self.resource, ref_next))
                yield body
        finally:
            for future in pending:
                future.cancel()


def _prefix(whole: bytes, ref: TileRef) -> bytes:
    """The first ``ref.width`` hashes or entries of the full resource."""
    if not ref.is_entries:
        return whole[: ref.width * 32]
    offset = 0
    for _ in range(ref.width):
        if offset + 2 > len(whole):
            break
        offset += 2 + int.from_bytes(whole[offset : offset + 2], "big")
    return whole[:offset]


__all__ = ["DEFAULT_TIMEOUT", "MAX_PARALLEL", "PREFETCH", "TlogClient", "max_bytes"]
