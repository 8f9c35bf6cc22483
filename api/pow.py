"""Proof of work for public code lookups: stateless challenges, checked in O(1), spent once.

Why (THREATS 38, issue 12): a point card's PIN is a short secret, and the anonymous code
lookup is an oracle for it. Per-IP buckets do not slow an attacker who rotates addresses, so
every public code lookup (anonymous, or a creator session asking about codes that are not its
own) must carry a proof of work bound to exactly that request. A guess then costs CPU time
whatever address it comes from; the global budget (``api.ratelimit.CODE_LOOKUP_ALL``) caps
the total on top. Keyed platforms never see any of this.

The format (NOTE: the page, ``api/static/pow-worker.js``, computes the same bytes; a change
here is a change there):

1. ``POST /v1/verify/challenge`` answers ``{challenge, difficulty, expires_at}``. The
   challenge is base64url (RFC 4648 §5, unpadded, canonical) of
   ``version (1) || random (16) || expires_at (8, big-endian) || difficulty (1) || mac (32)``,
   the MAC being HMAC-SHA256 under ``Registry.derived_key("verify-pow")`` of what precedes
   it: the server keeps nothing until the challenge is used.
2. The body binding is SHA-256 of the UTF-8 JSON array
   ``["tracemark/verify-pow/v1", good_type, creator, product, code]`` (compact, ``null`` for
   an absent product, no ASCII escaping; the strings exactly as sent in the body).
3. The seed is SHA-256(challenge's ASCII || binding); the client finds an 8-byte ``nonce``
   such that SHA-256(seed || nonce) starts with ``difficulty`` zero bits (one SHA-256 block a
   try, for the page and an attacker alike), and sends ``X-Tracemark-Pow: <challenge>.<nonce
   as 16 hex digits>`` with the lookup.
4. The server checks the shape, the MAC, the expiry, the work against this body, and that the
   challenge was not spent; then spends it (in this process: see ``SpentChallenges``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from api.ratelimit import RateLimited
from registry.errors import InvalidInput
from verifier.pow import (
    BINDING_TAG,
    MAX_POW_BITS,
    POW_HEADER,
    body_binding,
    leading_zero_bits,
    solve,
    work_digest,
)

#: The challenge format's version byte.
POW_VERSION: Final = 1
#: Leading zero bits asked by default: ~2^18 SHA-256 blocks a guess. Measured (README):
#: ~0.3 s of one core in Python's hashlib, well under a second in Chromium's Web Worker.
DEFAULT_POW_BITS: Final = 18
#: How long a challenge may be used after it is issued (seconds): long enough to solve it on a
#: slow phone, short enough that the spent set stays small.
DEFAULT_CHALLENGE_TTL: Final = 120
#: Spent challenges remembered at once. Each costs its issuer ~2^bits hashes, so filling this
#: within one TTL takes an attacker ~100 core-seconds of work a second; when full, lookups
#: are refused (429) rather than letting a spent challenge be forgotten early.
MAX_SPENT: Final = 200_000

_RANDOM_BYTES: Final = 16
_MAC_BYTES: Final = 32
_BODY_BYTES: Final = 1 + _RANDOM_BYTES + 8 + 1
_CHALLENGE_BYTES: Final = _BODY_BYTES + _MAC_BYTES
#: The challenge's base64url length (58 bytes, unpadded).
CHALLENGE_LENGTH: Final = (_CHALLENGE_BYTES * 8 + 5) // 6
_NONCE_HEX: Final = 16
_PROOF_RE = re.compile(
    r"([A-Za-z0-9_-]{" + str(CHALLENGE_LENGTH) + r"})\.([0-9a-f]{" + str(_NONCE_HEX) + r"})\Z"
)


class ProofOfWorkRequired(InvalidInput):
    """A public code lookup without a proof of work (428): fetch a challenge, solve it."""

    code = "proof-of-work-required"
    # RFC 6585 §3: the request must meet a precondition first (here: carry a proof of work).
    http_status = 428
    diagnostics = "Fetch a challenge (POST /v1/verify/challenge), solve it, send the lookup again."


class ProofOfWorkRefused(InvalidInput):
    """A proof of work that does not hold: malformed, forged, expired, for another body, too
    little work, or already used (400); the detail says which. Fetch a new challenge."""

    code = "proof-of-work-refused"
    diagnostics = "Fetch a new challenge and solve it for this very request body."


@dataclass(frozen=True)
class Challenge:
    """One issued challenge, as ``POST /v1/verify/challenge`` answers it."""

    challenge: str
    difficulty: int
    expires_at: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SpentChallenges:
    """Challenges used once, remembered until they expire (a bounded set, one lock).

    NOTE: this is per process. With several API replicas a challenge spent on one could be
    spent again on another (at most once per replica); a multi-replica deployment shares the
    set (Redis ``SET key NX EX ttl``, or a PostgreSQL table keyed by the random part).
    """

    def __init__(self, *, max_spent: int = MAX_SPENT) -> None:
        self._max = max_spent
        self._spent: set[bytes] = set()
        # Insertion order, which is close to expiry order (every challenge has the same TTL).
        self._order: deque[tuple[int, bytes]] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._spent)

    def spend(self, ident: bytes, expires_at: int, now: float) -> bool:
        """Mark ``ident`` spent; False if it was already. Raises ``RateLimited`` when full."""
        with self._lock:
            order = self._order
            while order and order[0][0] < now:
                self._spent.discard(order.popleft()[1])
            if ident in self._spent:
                return False
            if len(self._spent) >= self._max:
                raise RateLimited(
                    "too many code lookups in flight; retry shortly",
                    retry_after=max(1, int(order[0][0] - now) + 1),
                    bucket="proof_of_work",
                )
            self._spent.add(ident)
            order.append((expires_at, ident))
            return True


class ProofOfWork:
    """Issues and checks challenges: a key, a difficulty, a TTL and the spent set."""

    def __init__(
        self,
        key: bytes,
        *,
        bits: int = DEFAULT_POW_BITS,
        ttl: int = DEFAULT_CHALLENGE_TTL,
        clock: Callable[[], float] = time.time,
        spent: SpentChallenges | None = None,
    ) -> None:
        if not 0 <= bits <= MAX_POW_BITS:
            raise ValueError(f"a difficulty is 0 to {MAX_POW_BITS} bits")
        if ttl < 1:
            raise ValueError("a challenge must live at least a second")
        self._key = key
        self.bits = bits
        self.ttl = ttl
        self._clock = clock
        self._spent = spent if spent is not None else SpentChallenges()

    def issue(self) -> Challenge:
        expires_at = int(self._clock()) + self.ttl
        body = (
            bytes([POW_VERSION])
            + secrets.token_bytes(_RANDOM_BYTES)
            + expires_at.to_bytes(8, "big")
            + bytes([self.bits])
        )
        token = _b64encode(body + self._mac(body))
        return Challenge(challenge=token, difficulty=self.bits, expires_at=expires_at)

    def check(self, proof: str | None, binding: bytes) -> None:
        """Accept ``proof`` (the header's value) for the body ``binding`` and spend it, or
        raise ``ProofOfWorkRequired`` / ``ProofOfWorkRefused``. O(1): two SHA-256 and an HMAC."""
        if proof is None:
            raise ProofOfWorkRequired(
                f"an anonymous code lookup needs a proof of work: POST /v1/verify/challenge, "
                f"solve it for this body and send it in {POW_HEADER} (see the README)"
            )
        # 1. The shape: a challenge of the right length and 16 hex digits.
        found = _PROOF_RE.match(proof.strip())
        if found is None:
            raise ProofOfWorkRefused(f"{POW_HEADER} is <challenge>.<nonce as 16 hex digits>")
        token, nonce_hex = found.groups()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise ProofOfWorkRefused("the challenge is not base64url") from None
        # Canonical only: one string per challenge, or a spent one could be spent again
        # under another spelling.
        if len(raw) != _CHALLENGE_BYTES or _b64encode(raw) != token:
            raise ProofOfWorkRefused("the challenge is not one this registry issued")
        body, mac = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
        # 2. The MAC, before anything in the challenge is believed.
        if raw[0] != POW_VERSION or not hmac.compare_digest(mac, self._mac(body)):
            raise ProofOfWorkRefused("the challenge is not one this registry issued")
        expires_at = int.from_bytes(body[1 + _RANDOM_BYTES : 1 + _RANDOM_BYTES + 8], "big")
        bits = body[-1]
        # 3. Not expired, and asking at least today's difficulty (a setting may have risen).
        now = self._clock()
        if not now < expires_at:
            raise ProofOfWorkRefused("the challenge has expired: fetch a new one")
        if bits < self.bits:
            raise ProofOfWorkRefused("the challenge asks less work than now required")
        # 4. The work, for this very body.
        if not leading_zero_bits(work_digest(token, binding, bytes.fromhex(nonce_hex)), bits):
            raise ProofOfWorkRefused(
                "the proof of work does not hold for this request's body "
                "(solved for another body, or not solved)"
            )
        # 5. Once.
        if not self._spent.spend(body[1 : 1 + _RANDOM_BYTES], expires_at, now):
            raise ProofOfWorkRefused("the challenge was used already: fetch a new one")

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


__all__ = [
    "BINDING_TAG",
    "DEFAULT_CHALLENGE_TTL",
    "DEFAULT_POW_BITS",
    "MAX_POW_BITS",
    "POW_HEADER",
    "Challenge",
    "ProofOfWork",
    "ProofOfWorkRefused",
    "ProofOfWorkRequired",
    "SpentChallenges",
    "body_binding",
    "leading_zero_bits",
    "solve",
    "work_digest",
]
