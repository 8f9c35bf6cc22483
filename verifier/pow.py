"""The client's half of the proof of work a public code lookup carries (``api.pow`` is the
server's): the body binding, the work, and a solver. One definition for the server, the
Python client and the tests; the page (``api/static/pow-worker.js``) computes the same bytes.

Pure: hashlib and json only.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

#: The request header that carries a proof.
POW_HEADER: Final = "X-Tracemark-Pow"
#: Domain separation for the body binding (a format constant: the page uses it too).
BINDING_TAG: Final = "tracemark/verify-pow/v1"
#: The most a registry may ask: at 32 bits the page would work for minutes (a client refuses
#: a challenge asking more rather than spin).
MAX_POW_BITS: Final = 32


def body_binding(good_type: str, creator: str | None, product: str | None, code: str) -> bytes:
    """SHA-256 of the lookup's canonical body (step 2 of ``api.pow``'s docstring)."""
    document = json.dumps(
        [BINDING_TAG, good_type, creator, product, code], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(document.encode("utf-8", "surrogatepass")).digest()


def work_digest(challenge: str, binding: bytes, nonce: bytes) -> bytes:
    """SHA-256(SHA-256(challenge || binding) || nonce): what must start with zero bits."""
    seed = hashlib.sha256(challenge.encode("ascii") + binding).digest()
    return hashlib.sha256(seed + nonce).digest()


def leading_zero_bits(digest: bytes, bits: int) -> bool:
    """Whether ``digest`` starts with at least ``bits`` zero bits."""
    return int.from_bytes(digest[:8], "big") >> (64 - bits) == 0 if bits else True


def solve(challenge: str, difficulty: int, binding: bytes) -> str:
    """The header value for ``challenge`` and this body: the first nonce that works.

    For clients and tests in Python; the page solves it in a Web Worker.
    """
    seed = hashlib.sha256(challenge.encode("ascii") + binding).digest()
    shift = 64 - difficulty
    counter = 0
    while True:
        nonce = counter.to_bytes(8, "big")
        digest = hashlib.sha256(seed + nonce).digest()
        if difficulty == 0 or int.from_bytes(digest[:8], "big") >> shift == 0:
            return f"{challenge}.{nonce.hex()}"
        counter += 1


__all__ = [
    "BINDING_TAG",
    "MAX_POW_BITS",
    "POW_HEADER",
    "body_binding",
    "leading_zero_bits",
    "solve",
    "work_digest",
]
