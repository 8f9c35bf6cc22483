"""A bulk upload's body: NDJSON or CSV, streamed to a spool file within the cap, its signed
request read (and checked) before the rest is spooled."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request

from api.context import MAX_BULK_BYTES, MAX_JSON_BYTES, ApiContext
from api.errors import PayloadTooLarge, UnsupportedMediaType
from registry.errors import InvalidInput

NDJSON = "application/x-ndjson"
CSV = "text/csv"
#: Bulk bodies are NDJSON (first line: the signed request; then one fingerprint a line) or
#: CSV (a ``fingerprint`` column; the signed request base64url-encoded in this header).
REQUEST_HEADER = "Tracemark-Request"


BULK_BODY = {
    "required": True,
    # The cap the spooling enforces (``ApiContext.max_bulk_bytes``, THREATS 40): 413 past it.
    "x-max-bytes": MAX_BULK_BYTES,
    "content": {
        NDJSON: {
            "schema": {"type": "string", "maxLength": MAX_BULK_BYTES},
            "example": '{"signed": {...}, "royalty_policy": {...}, "metadata": {}}\n0xab…\n',
        },
        CSV: {
            "schema": {"type": "string", "maxLength": MAX_BULK_BYTES},
            "example": "fingerprint\n0xab…\n",
        },
    },
}


async def spool_bulk(
    request: Request,
    ctx: ApiContext,
    header_request: str | None,
    accept: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], Any, bool]:
    """Stream the body to a spool file within the cap; returns (request document, spool, csv).

    ``accept`` checks the signed request as soon as it is read (the header, or the first
    line), so a bad signature is refused before a large body is spooled."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in (NDJSON, CSV):
        raise UnsupportedMediaType(f"send {NDJSON} or {CSV}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > ctx.max_bulk_bytes:
        raise PayloadTooLarge(f"a bulk upload is at most {ctx.max_bulk_bytes:,} bytes")
    csv = media == CSV
    document: dict[str, Any] | None = None
    if csv:
        if header_request is None:
            raise InvalidInput(f"a CSV upload carries the signed request in {REQUEST_HEADER}")
        document = _header_document(header_request)
        accept(document)
    spool = ctx.jobs.spool()
    size = 0
    head = b""
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > ctx.max_bulk_bytes:
                raise PayloadTooLarge(f"a bulk upload is at most {ctx.max_bulk_bytes:,} bytes")
            if document is None:
                head += chunk
                newline = head.find(b"\n")
                if newline < 0:
                    if len(head) > MAX_JSON_BYTES:
                        raise InvalidInput("the first line (the signed request) is too long")
                    continue
                document = _json_document(head[:newline])
                accept(document)
                chunk, head = head[newline + 1 :], b""
            spool.write(chunk)
        if document is None:
            document = _json_document(head)
            accept(document)
    except BaseException:
        spool.close()
        raise
    return document, spool, csv


def _json_document(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise InvalidInput("the first line must be the signed request as JSON") from exc
    if not isinstance(value, dict):
        raise InvalidInput("the first line must be the signed request as a JSON object")
    return value


def _header_document(value: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{REQUEST_HEADER} is not base64url") from exc
    return _json_document(raw)


__all__ = ["BULK_BODY", "CSV", "NDJSON", "REQUEST_HEADER", "spool_bulk"]
