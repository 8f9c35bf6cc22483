"""Signing and checking webhooks the Standard Webhooks way (what a platform's receiver imports).

A webhook is three headers over the exact body (https://www.standardwebhooks.com, "Signature
scheme"):

- ``webhook-id``: the message id, the same on every retry of one event (dedupe on it);
- ``webhook-timestamp``: Unix seconds of this attempt;
- ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` values, each over
  ``"{webhook-id}.{webhook-timestamp}.{body}"`` under the subscription's secret.

The secret is ``whsec_`` and the base64 of the key bytes; the HMAC key is the decoded bytes.
A receiver calls ``verify_webhook(secret, request.headers, raw_body)`` on the raw body (before
any JSON parsing) and rejects the request if it raises. Pure: standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Final

from registry.errors import TracemarkError

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: Random bytes in a secret we issue (Standard Webhooks: 24 to 64).
SECRET_BYTES: Final = 32
#: Shortest and longest key a receiver accepts: a shorter one is guessable, a longer one is
#: not a secret we issued.
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64
#: Default freshness window (seconds, both directions): bounds how long a captured request
#: can be replayed against a receiver that does not dedupe on ``webhook-id``.
DEFAULT_TOLERANCE: Final = 300
#: Longest ``webhook-id`` and ``webhook-signature`` a receiver looks at (bounded parsing).
MAX_ID_LENGTH: Final = 256
MAX_SIGNATURE_HEADER: Final = 4096
SIGNATURE_VERSION: Final = "v1"


class WebhookVerificationError(TracemarkError):
    """A webhook that must be rejected: a header missing or malformed, stale, or unsigned."""

    code = "webhook-verification-failed"


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret."""
    body = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the webhook secret is not whsec_<base64>") from exc
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise WebhookVerificationError(
            f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes"
        )
    return key


def encode_secret(key: bytes) -> str:
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one attempt."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_secret(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION}," + base64.b64encode(digest).decode("ascii")


def webhook_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_webhook(secret, msg_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict with other capitalisation
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None:
        raise WebhookVerificationError(f"the {name} header is missing")
    return value


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    *,
    now: int | None = None,
) -> None:
    """Return if ``body`` with ``headers`` was signed with ``secret`` within ``tolerance``
    seconds of ``now``; raise ``WebhookVerificationError`` otherwise."""
    key_check = decode_secret(secret)  # a bad secret is the caller's error: say so first
    # 1. The three headers are there and bounded.
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or len(msg_id) > MAX_ID_LENGTH or len(signatures) > MAX_SIGNATURE_HEADER:
        raise WebhookVerificationError("webhook-id or webhook-signature is malformed")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds")
    # 2. The timestamp is fresh, in both directions (a future one is a replay waiting).
    timestamp = int(stamp)
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is {current - timestamp} s from now (tolerance {tolerance} s)"
        )
    # 3. One of the v1 signatures is ours (several during a secret rotation); others ignored.
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = hmac.new(key_check, signed, hashlib.sha256).digest()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return
    raise WebhookVerificationError("no webhook-signature matches the body under this secret")


__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "decode_secret",
    "encode_secret",
    "sign_webhook",
    "verify_webhook",
    "webhook_headers",
]
