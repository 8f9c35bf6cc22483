"""Creators' session tokens after Sign-In with Ethereum: ``tm_siwe_<claims>.<mac>``.

Stateless, HMAC-SHA256 under ``registry.derived_key("siwe-token")``, bound to the chain,
expiring; any token that is not exactly one this registry issued is ``Unauthorized``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Final

from api.principal import CREATOR_SCOPE, Unauthorized

TOKEN_PREFIX: Final = "tm_siwe_"  # noqa: S105 (a prefix, not a secret)
#: A session token lives an hour unless the SIWE message's Expiration Time ends it sooner.
TOKEN_TTL: Final = 3600
#: Longest token accepted: bounds the MAC and JSON work an unauthenticated caller can cause.
MAX_TOKEN_LENGTH: Final = 512

_B64URL_RE = re.compile(r"[A-Za-z0-9_-]+\Z")


@dataclass(frozen=True)
class CreatorClaims:
    """What a valid creator token says."""

    address: str
    chain_id: int
    issued_at: int
    expires_at: int


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Unpadded base64url (RFC 4648 §5), canonical only: unused trailing bits are zero
    (§3.5), so each token has exactly one spelling."""
    if not _B64URL_RE.match(text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _token_mac(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def issue_creator_token(
    key: bytes, address: str, *, chain_id: int, now: int, expires_at: int
) -> str:
    """``tm_siwe_`` + base64url(JSON claims) + ``.`` + base64url(HMAC-SHA256 of what precedes)."""
    if expires_at <= now:
        raise ValueError("a token must expire after it is issued")
    claims = {
        "sub": address,
        "scope": CREATOR_SCOPE,
        "iat": now,
        "exp": expires_at,
        "chain": chain_id,
    }
    document = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode("utf-8")
    body = TOKEN_PREFIX + _b64encode(document)
    return body + "." + _b64encode(_token_mac(key, body))


def verify_creator_token(key: bytes, token: str, *, now: int, chain_id: int) -> CreatorClaims:
    """The claims of a token this registry issued for this chain and that has not expired.

    Raises ``Unauthorized`` (generic detail) for anything else.
    """
    if len(token) > MAX_TOKEN_LENGTH or not token.startswith(TOKEN_PREFIX):
        raise Unauthorized()
    body, dot, mac_text = token.rpartition(".")
    try:
        mac = _b64decode(mac_text) if dot else b""
        # 1. The MAC, before anything in the token is believed or even parsed.
        if not hmac.compare_digest(mac, _token_mac(key, body)):
            raise Unauthorized()
        claims = json.loads(_b64decode(body[len(TOKEN_PREFIX) :]))
    except (ValueError, binascii.Error, UnicodeError):
        raise Unauthorized() from None
    # 2. The claims' shape (ours, so a mismatch means a bug or a key reused elsewhere).
    if not isinstance(claims, dict) or claims.get("scope") != CREATOR_SCOPE:
        raise Unauthorized()
    address, iat, exp, chain = (claims.get(k) for k in ("sub", "iat", "exp", "chain"))
    if not (
        isinstance(address, str)
        and isinstance(iat, int)
        and isinstance(exp, int)
        and isinstance(chain, int)
    ):
        raise Unauthorized()
    # 3. Bound to this chain, and not expired.
    if chain != chain_id or not now < exp:
        raise Unauthorized()
    return CreatorClaims(address=address, chain_id=chain, issued_at=iat, expires_at=exp)


__all__ = [
    "MAX_TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "TOKEN_TTL",
    "CreatorClaims",
    "issue_creator_token",
    "verify_creator_token",
]
