"""Parties to a transfer: the platform-id grammar and the keyed hash of a platform's reference.

A holder is a ``(platform id, reference)`` pair (DESIGN "Holders, transfers, royalties"); the
registry keeps only a hash of the reference, and that hash goes into every TRANSFER entry,
hence into every public proof bundle. So it must not let anyone recover or guess the
reference: it is HMAC-SHA256 under a key of the holder's platform, itself derived from the
registry's master key (``Registry.derived_key``). Nobody without the master key can test a
guess ("carol"), and the same reference on two platforms gives unrelated hashes.

NOTE: consensus-relevant. The hash is written into TRANSFER payloads, which are hashed into
the log's leaves: changing how it is computed changes every future payload, never an old one.
Holdings written before keyed references (scheme ``LEGACY``: SHA-256 under a fixed tag) keep
their scheme per row, because the registry never had the plain references to re-key them;
they are compared under their own scheme (``matches``) and become keyed when the good next
moves.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import IntEnum
from typing import Final, TypeGuard

from registry.errors import InvalidInput

#: Longest platform id (an API key's platform, e.g. "cardhub").
MAX_PLATFORM_LENGTH: Final = 64
#: Longest reference a platform may give for a person (a user id, an agent's account).
MAX_REFERENCE_LENGTH: Final = 256
#: The grammar of a platform id, the same as API keys' (``api.auth.parse_platform_id``):
#: lower-case ASCII letters, digits and inner dashes. It keeps NUL, control, bidi and other
#: format characters out of the signed log, where a name that reads as another would mislead
#: anyone reading a trace.
PLATFORM_ID_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
_PLATFORM_RE: Final = re.compile(PLATFORM_ID_PATTERN)

#: Domain separation for the unkeyed hash written before keyed references (scheme LEGACY).
LEGACY_REFERENCE_TAG: Final = b"tracemark/party/v1\x00"
#: What the master key is derived for (``Registry.derived_key``) to key references.
REFERENCE_KEY_PURPOSE: Final = "party-reference/v2"
#: Domain separation for a platform's own key, derived from the reference key.
_PLATFORM_KEY_TAG: Final = b"tracemark/party-key/v2\x00"


class ReferenceScheme(IntEnum):
    """How a stored reference hash was made (``holdings.holder_ref_scheme``)."""

    #: SHA-256(tag ‖ platform ‖ 0 ‖ reference): guessable from public data; old rows only.
    LEGACY = 1
    #: HMAC-SHA256 under the platform's key (``ReferenceKeys``): what every new row uses.
    KEYED = 2


def is_platform_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a platform id (``PLATFORM_ID_PATTERN``): the one test every
    parser of a platform id (API keys, distribution policies, parties) makes."""
    return isinstance(value, str) and _PLATFORM_RE.fullmatch(value) is not None


def check_platform_id(platform: object) -> str:
    """``platform`` if it is a well-formed platform id; else ``InvalidInput``."""
    if not is_platform_id(platform):
        raise InvalidInput(
            f"a platform id is 1-{MAX_PLATFORM_LENGTH} lower-case letters, digits and dashes "
            "(not at either end)"
        )
    return platform


def legacy_reference_hash(platform: str, reference: str) -> bytes:
    """The unkeyed hash of scheme LEGACY, kept only to recognise holdings written with it."""
    return hashlib.sha256(
        LEGACY_REFERENCE_TAG + platform.encode("utf-8") + b"\x00" + reference.encode("utf-8")
    ).digest()


class ReferenceKeys:
    """Hashes platforms' references under per-platform keys derived from one secret.

    ``secret`` is ``Registry.derived_key(REFERENCE_KEY_PURPOSE)``: 32 bytes that never leave the
    registry. A platform's key is HMAC-SHA256(secret, tag ‖ platform id), so keys of two
    platforms are unrelated and no platform can compute another's hashes.
    """

    __slots__ = ("_keys", "_secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise InvalidInput("a reference key is at least 32 bytes")
        self._secret = secret
        self._keys: dict[str, bytes] = {}

    def platform_key(self, platform: str) -> bytes:
        key = self._keys.get(platform)
        if key is None:
            key = hmac.new(
                self._secret, _PLATFORM_KEY_TAG + platform.encode("utf-8"), hashlib.sha256
            ).digest()
            if len(self._keys) < 4096:  # a bounded cache: platform ids come from requests
                self._keys[platform] = key
        return key

    def reference_hash(self, platform: str, reference: str) -> bytes:
        """What the registry keeps of a party (scheme KEYED)."""
        return hmac.new(
            self.platform_key(platform), reference.encode("utf-8"), hashlib.sha256
        ).digest()

    def matches(
        self, stored: bytes, scheme: ReferenceScheme | int, platform: str, reference: str
    ) -> bool:
        """Whether ``reference`` on ``platform`` is the party stored as ``stored``, under the
        scheme the stored hash was made with."""
        if ReferenceScheme(scheme) is ReferenceScheme.LEGACY:
            candidate = legacy_reference_hash(platform, reference)
        else:
            candidate = self.reference_hash(platform, reference)
        return hmac.compare_digest(candidate, stored)

    def __repr__(self) -> str:  # never the secret
        return "ReferenceKeys(<secret>)"


__all__ = [
    "LEGACY_REFERENCE_TAG",
    "MAX_PLATFORM_LENGTH",
    "MAX_REFERENCE_LENGTH",
    "PLATFORM_ID_PATTERN",
    "REFERENCE_KEY_PURPOSE",
    "ReferenceKeys",
    "ReferenceScheme",
    "check_platform_id",
    "is_platform_id",
    "legacy_reference_hash",
]
