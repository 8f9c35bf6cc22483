"""The documents the client sends: signed requests as the API takes them, and bulk NDJSON bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from registry.errors import (
    InvalidInput,
)
from registry.requests import RegistrationRequest, RevocationRequest
from registry.royalty import policy_document
from registry.signed import SignedMessage

NDJSON_LINES_PER_CHUNK: Final = 4_096
"""Fingerprint lines per chunk of a bulk upload (~270 KiB): few writes, little memory."""


def registration_document(request: RegistrationRequest) -> dict[str, Any]:
    """A (batch) registration as the API takes it (``RegistrationIn``)."""
    return {
        "signed": request.signed.document(),
        "royalty_policy": policy_document(request.royalty_policy),
        "metadata": dict(request.metadata),
        "new_product": request.new_product,
    }


def revocation_document(request: RevocationRequest) -> dict[str, Any]:
    """A (batch) revocation as the API takes it (``RevocationIn``)."""
    return {"signed": request.signed.document()}


def enrollment_document(signed: SignedMessage, code_key: bytes) -> dict[str, Any]:
    """A code-key enrolment as the API takes it (``CodeKeyIn``): the key travels once, over
    TLS, and is kept sealed at rest."""
    if len(code_key) != 32:
        raise InvalidInput("a code key is exactly 32 bytes")
    return {"signed": signed.document(), "code_key": "0x" + code_key.hex()}


def ndjson_batch(document: Mapping[str, Any], fingerprints: Iterable[bytes]) -> Iterator[bytes]:
    """A bulk body, lazily: the signed request on the first line, then one ``0x`` fingerprint
    a line, in upload order; ``NDJSON_LINES_PER_CHUNK`` lines a chunk, so 10^6 fingerprints
    never sit in memory."""
    yield json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"
    lines: list[bytes] = []
    for number, fingerprint in enumerate(fingerprints, start=1):
        if not isinstance(fingerprint, bytes) or len(fingerprint) != 32:
            raise InvalidInput(f"item {number}: a fingerprint is exactly 32 bytes")
        lines.append(b"0x%s\n" % fingerprint.hex().encode("ascii"))
        if len(lines) == NDJSON_LINES_PER_CHUNK:
            yield b"".join(lines)
            lines.clear()
    if lines:
        yield b"".join(lines)
