"""A PLATFORM_KEY entry's payload (kind 10, issue 18 item 4): a platform's attestation key
enrolled, who enrolled it, the key it superseded, and the signatures that let anyone check it.

CONSENSUS-CRITICAL, as ``registry.payloads``: the entry's ``payload_hash`` is SHA-256 of the
RFC 8785 JSON of ``PlatformKeyPayload.document()``; ``from_document`` accepts only what
``document()`` writes back byte for byte. A later layout is a new ``PLATFORM_KEY_FORMAT``.
Pure: no ORM, no web3.

Why it is logged: an attestation's payload names the key that signed it, but the pairing of
key and platform was only a row of the registry's. Logged, the pairing is public: a platform
(or a monitor) sees every key enrolled in its name, and whether the operator enrolled it
(``enrolled_by: operator``, no signature of the platform's) or the platform did (the new
key's ``PlatformKeyEnrollment`` signature, its proof of possession, and, when it replaced a
key, the old key's ``PlatformKeyRotation`` consent). An attestation's offline proof carries
its key's enrollment (``verifier.attestationproof``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from registry.attestations import (
    PLATFORM_KEY_ENROLLMENT,
    PLATFORM_KEY_ROTATION,
    PlatformSignature,
    enroll_message,
    platform_key_subject,
    rotation_message,
)
from registry.eip712 import ZERO_ADDRESS, Domain, parse_address
from registry.errors import InvalidInput
from registry.leaf import EntryKind
from registry.parties import check_platform_id
from registry.payloads import Payload, _keys
from registry.signatures import verify_signature

PLATFORM_KEY_FORMAT: Final = "tracemark-platform-key/v1"
"""The name of the payload's layout, inside it: a reader refuses any other."""

PLATFORM_KEY_RECORD: Final = "PlatformKeyEnrolled"
"""The ``primary_type`` of the registry's record of an enrollment (``signed_records``)."""

ENROLLERS: Final = ("operator", "platform")
"""Who may enroll a platform's key: the operator (CLI) or the platform itself (its API)."""

_MAX_TIME: Final = 2**64 - 1


@dataclass(frozen=True, slots=True)
class PlatformKeyPayload(Payload):
    """A PLATFORM_KEY entry's payload: ``key`` is ``platform``'s attestation key from
    ``enrolled_at``, enrolled by ``enrolled_by``, superseding ``supersedes`` (None for its
    first key); the registry (``registry``, under ``domain``) attests it.

    Signatures, one shape only: the platform's enrollment carries ``possession`` (by ``key``)
    and, when it supersedes a key, ``consent`` (by ``supersedes``); the operator's carries
    neither (it has none of the platform's to give: that is what ``enrolled_by`` says)."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.PLATFORM_KEY})

    platform: str
    key: str
    enrolled_by: str
    enrolled_at: int
    supersedes: str | None
    registry: str
    domain: Domain
    #: The new key's ``PlatformKeyEnrollment`` signature (its proof of possession).
    possession: PlatformSignature | None = None
    #: The superseded key's ``PlatformKeyRotation`` signature (its consent).
    consent: PlatformSignature | None = None

    def __post_init__(self) -> None:
        check_platform_id(self.platform)
        object.__setattr__(self, "key", parse_address(self.key, what="platform key"))
        if self.key == ZERO_ADDRESS:
            raise InvalidInput("the zero address is never a platform's key")
        if self.supersedes is not None:
            old = parse_address(self.supersedes, what="superseded key")
            if old == self.key:
                raise InvalidInput("a platform key never supersedes itself")
            object.__setattr__(self, "supersedes", old)
        at = self.enrolled_at
        if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= _MAX_TIME:
            raise InvalidInput("a key enrollment's enrolled_at is Unix seconds")
        object.__setattr__(self, "registry", parse_address(self.registry, what="registry"))
        if self.enrolled_by == "operator":
            if self.possession is not None or self.consent is not None:
                raise InvalidInput("an operator's enrollment carries no platform signature")
        elif self.enrolled_by == "platform":
            if self.possession is None or self.possession.signer != self.key:
                raise InvalidInput("a platform's enrollment carries its new key's signature")
            if (self.supersedes is None) != (self.consent is None):
                raise InvalidInput(
                    "a platform's enrollment carries the superseded key's consent, and only then"
                )
            if self.consent is not None and self.consent.signer != self.supersedes:
                raise InvalidInput("the consent to a rotation is the superseded key's")
        else:
            raise InvalidInput(f"a key is enrolled by one of {', '.join(ENROLLERS)}")

    @property
    def subject(self) -> bytes:
        """The leaf's fingerprint word (``platform_key_subject``)."""
        return platform_key_subject(self.platform)

    def check_signatures(self) -> None:
        """Check the platform's signatures under the payload's domain: the new key's proof of
        possession and the old key's consent (none for an operator's enrollment);
        ``WrongSigner`` for either by another key or over another platform or key."""
        if self.possession is not None:
            signed = self.possession
            message = enroll_message(self.platform, self.key, signed.nonce, signed.deadline)
            verify_signature(
                PLATFORM_KEY_ENROLLMENT, message, self.domain, signed.signature, self.key
            )
        if self.consent is not None and self.supersedes is not None:
            signed = self.consent
            message = rotation_message(
                self.platform, self.supersedes, self.key, signed.nonce, signed.deadline
            )
            verify_signature(
                PLATFORM_KEY_ROTATION, message, self.domain, signed.signature, self.supersedes
            )

    def document(self) -> dict[str, Any]:
        return {
            "format": PLATFORM_KEY_FORMAT,
            "enrollment": {
                "platform": self.platform,
                "key": self.key,
                "enrolled_by": self.enrolled_by,
                "enrolled_at": self.enrolled_at,
                "supersedes": self.supersedes,
            },
            "possession": None if self.possession is None else self.possession.document(),
            "consent": None if self.consent is None else self.consent.document(),
            "registry": self.registry,
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        required = {"format", "enrollment", "possession", "consent", "registry", "domain"}
        _keys("a platform key payload", document, required, set())
        if document["format"] != PLATFORM_KEY_FORMAT:
            raise InvalidInput(
                f"a platform key payload of format {document['format']!r}; "
                f"only {PLATFORM_KEY_FORMAT!r} is known"
            )
        enrollment = document["enrollment"]
        fields = {"platform", "key", "enrolled_by", "enrolled_at", "supersedes"}
        _keys("a key enrollment", enrollment, fields, set())
        possession, consent = document["possession"], document["consent"]
        parsed = cls(
            platform=enrollment["platform"],
            key=enrollment["key"],
            enrolled_by=enrollment["enrolled_by"],
            enrolled_at=enrollment["enrolled_at"],
            supersedes=enrollment["supersedes"],
            registry=document["registry"],
            domain=Domain.from_dict(document["domain"]),
            possession=None if possession is None else PlatformSignature.from_document(possession),
            consent=None if consent is None else PlatformSignature.from_document(consent),
        )
        return cls._canonical(parsed, document, canonical)


__all__ = [
    "ENROLLERS",
    "PLATFORM_KEY_FORMAT",
    "PLATFORM_KEY_RECORD",
    "PlatformKeyPayload",
]
