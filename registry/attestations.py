"""Real-name attestations (实名制, issue 18 item 4): the levels, the subject, the payload.

A platform attests the verification level of a seller account it knows. The attestation
names the account only by its keyed reference hash (``registry.parties.ReferenceKeys``: an
HMAC under a key of the platform's, derived from the registry's master key, so nobody without
that key can test a guess), the same commitment every TRANSFER and evidence export already
carries for that seller: so an attestation discloses nothing a seller's sales did not, and
the risk rule joins it to them by equality. Never the reference, a name, an ID number or a
phone number: the level says *that* the platform checked, not *what* it saw.

CONSENSUS-CRITICAL, as ``registry.payloads``: the ATTESTATION entry's ``payload_hash`` is
SHA-256 of the RFC 8785 JSON of ``AttestationPayload.document()``; ``from_document`` accepts
only what ``document()`` writes back byte for byte. A later layout is a new
``ATTESTATION_FORMAT``, never an edit of this one. Pure: no ORM, no web3.

Two layouts: ``tracemark-attestation/v1`` (the registry's word alone, logged before platform
keys existed; still read) and ``/v2``, which carries the platform's own EIP-712 signature
(``PLATFORM_ATTESTATION``) by the attestation key enrolled for it (``registry.platformkeys``):
the leaf's payload hash commits to the signature and to the key the registry held to be the
platform's at that time, so an offline verifier can tell the platform made the statement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final, Self

from registry.eip712 import Domain, parse_address
from registry.errors import InvalidInput, WrongSigner
from registry.leaf import EntryKind
from registry.parties import check_platform_id
from registry.payloads import Payload, _hex, _keys
from registry.signatures import Signature, verify_signature

ATTESTATION_FORMAT: Final = "tracemark-attestation/v1"
"""The name of the payload's layout, inside it: a reader refuses any other."""

ATTESTATION_FORMAT_V2: Final = "tracemark-attestation/v2"
"""The layout carrying the platform's signature (``PlatformSignature``): every new one."""

PLATFORM_ATTESTATION: Final = "PlatformAttestation"
"""The EIP-712 primary type a platform's attestation key signs (``registry.eip712``)."""

PLATFORM_KEY_ENROLLMENT: Final = "PlatformKeyEnrollment"
"""The EIP-712 primary type a platform's new key signs to enroll itself (its proof of
possession, ``registry.platformkeys.enroll_own_key``)."""

PLATFORM_KEY_ROTATION: Final = "PlatformKeyRotation"
"""The EIP-712 primary type a platform's key in force signs to consent to its successor (a
platform's own rotation, ``registry.platformkeys.enroll_own_key``)."""

ATTESTATION_RECORD: Final = "RealNameAttestation"
"""The ``primary_type`` of the registry's record of an attestation (``signed_records``)."""

_SUBJECT_TAG: Final = b"tracemark/attestation-subject/v1\x00"
_PLATFORM_KEY_TAG: Final = b"tracemark/platform-key-subject/v1\x00"
_HASH_SIZE: Final = 32
_MAX_TIME: Final = 2**64 - 1
MAX_NONCE: Final = 2**53 - 1
"""Largest nonce or deadline of a platform's signature (exact in the payload's JSON)."""


class Level(IntEnum):
    """How far a platform verified a seller account's real name (实名认证), ordered: a higher
    level includes the checks of the lower ones. The names are China's usual practice:

    - ``none``: no real-name check (or a withdrawn one: see supersession);
    - ``phone``: a mobile number in the account's name (手机号实名: carriers register SIM
      cards to an ID since 2013, so a verified number is a weak real-name check);
    - ``id-card``: the name and resident ID number checked against the public-security
      database (身份证二要素/三要素核验);
    - ``face``: an ID check plus a live face matched to the ID photo (人脸识别/活体检测).
    """

    NONE = 0
    PHONE = 1
    ID_CARD = 2
    FACE = 3

    @property
    def label(self) -> str:
        """The level's name on the wire and in the log ("id-card")."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def parse(cls, label: object) -> Level:
        """The level named ``label`` ("none", "phone", "id-card", "face"); ``InvalidInput``."""
        for level in cls:
            if level.label == label:
                return level
        raise InvalidInput(f"a real-name level is one of {', '.join(LEVEL_LABELS)}")


LEVEL_LABELS: Final = tuple(level.label for level in Level)
"""The levels' names, lowest first (the API's enum and the risk rule's setting)."""


def attestation_subject(platform: str, seller_ref: bytes) -> bytes:
    """The fingerprint word of an ATTESTATION leaf: SHA-256 of a tag, the platform and the
    seller's reference hash, so one seller's attestations are found by one index lookup (the
    log's (good_type, fingerprint) index) and can never be taken for a good's entries."""
    check_platform_id(platform)
    if not isinstance(seller_ref, bytes) or len(seller_ref) != _HASH_SIZE:
        raise InvalidInput("a seller's reference hash is 32 bytes")
    return hashlib.sha256(_SUBJECT_TAG + platform.encode("ascii") + b"\x00" + seller_ref).digest()


def platform_key_subject(platform: str) -> bytes:
    """The fingerprint word of a PLATFORM_KEY leaf (kind 10): SHA-256 of
    ``tracemark/platform-key-subject/v1\\0`` and the platform id, so a platform's key
    enrollments are one index lookup, and never a seller's (another tag) or a good's."""
    check_platform_id(platform)
    return hashlib.sha256(_PLATFORM_KEY_TAG + platform.encode("ascii")).digest()


def platform_message(
    platform: str, seller_ref: bytes, level: Level, nonce: int, deadline: int
) -> dict[str, object]:
    """The ``PlatformAttestation`` message a platform signs: its seller (keyed reference hash)
    is verified to ``level``; ``nonce`` (once per key) and ``deadline`` stop a replay."""
    return {
        "platform": platform,
        "sellerRef": seller_ref,
        "level": int(level),
        "nonce": nonce,
        "deadline": deadline,
    }


def enroll_message(platform: str, address: str, nonce: int, deadline: int) -> dict[str, object]:
    """The ``PlatformKeyEnrollment`` message a platform's new key signs."""
    return {"platform": platform, "key": address, "nonce": nonce, "deadline": deadline}


def rotation_message(
    platform: str, old_key: str, new_key: str, nonce: int, deadline: int
) -> dict[str, object]:
    """The ``PlatformKeyRotation`` message a platform's key in force (``old_key``) signs to
    hand over to ``new_key``."""
    return {
        "platform": platform,
        "oldKey": old_key,
        "newKey": new_key,
        "nonce": nonce,
        "deadline": deadline,
    }


@dataclass(frozen=True, slots=True)
class PlatformSignature:
    """The platform's signature of its attestation: by ``signer`` (its attestation key in
    force when logged), over ``PLATFORM_ATTESTATION`` with ``nonce`` and ``deadline``."""

    signer: str
    nonce: int
    deadline: int
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "signer", parse_address(self.signer, what="platform key"))
        # A uint64 in the signed struct, but at most 2**53 - 1: the payload is RFC 8785 JSON,
        # whose numbers are exact only that far.
        for name in ("nonce", "deadline"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NONCE:
                raise InvalidInput(f"a platform signature's {name} is 0 to 2**53 - 1")
        Signature.parse(self.signature)

    def document(self) -> dict[str, Any]:
        return {
            "signer": self.signer,
            "nonce": self.nonce,
            "deadline": self.deadline,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> PlatformSignature:
        _keys("a platform signature", document, {"signer", "nonce", "deadline", "signature"}, set())
        text = document["signature"]
        if not isinstance(text, str):
            raise InvalidInput("a platform signature's signature is 0x-hex")
        return cls(
            signer=document["signer"],
            nonce=document["nonce"],
            deadline=document["deadline"],
            signature=Signature.parse(text).to_bytes(),
        )


@dataclass(frozen=True, slots=True)
class AttestationPayload(Payload):
    """An ATTESTATION entry's payload: platform ``platform`` says its seller account whose
    keyed reference hash is ``seller_ref`` was verified to ``level`` at ``attested_at``; the
    registry (``registry``, under ``domain``) attests that the platform's key said so."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.ATTESTATION})

    platform: str
    seller_ref: bytes
    level: Level
    attested_at: int
    registry: str
    domain: Domain
    #: The platform's own signature (layout v2); None only in v1 payloads logged before.
    platform_signature: PlatformSignature | None = None

    def __post_init__(self) -> None:
        check_platform_id(self.platform)
        if not isinstance(self.seller_ref, bytes) or len(self.seller_ref) != _HASH_SIZE:
            raise InvalidInput("an attestation's seller_ref is 32 bytes")
        if isinstance(self.level, bool) or not isinstance(self.level, int):
            raise InvalidInput("an attestation's level is a Level")
        object.__setattr__(self, "level", Level(self.level))
        at = self.attested_at
        if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at <= _MAX_TIME:
            raise InvalidInput("an attestation's attested_at is Unix seconds")
        object.__setattr__(self, "registry", parse_address(self.registry, what="registry"))

    @property
    def subject(self) -> bytes:
        """The leaf's fingerprint word (``attestation_subject``)."""
        return attestation_subject(self.platform, self.seller_ref)

    def check_platform_signature(self) -> PlatformSignature:
        """Check that the platform's key named in the payload signed this attestation (its
        platform, seller and level) under the payload's domain; ``WrongSigner`` for a v1
        payload (none) or a signature by another key or over another statement."""
        signed = self.platform_signature
        if signed is None:
            raise WrongSigner("a tracemark-attestation/v1 payload carries no platform signature")
        message = platform_message(
            self.platform, self.seller_ref, self.level, signed.nonce, signed.deadline
        )
        verify_signature(
            PLATFORM_ATTESTATION, message, self.domain, signed.signature, signed.signer
        )
        return signed

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": ATTESTATION_FORMAT,
            "attestation": {
                "platform": self.platform,
                "seller_ref": "0x" + self.seller_ref.hex(),
                "level": self.level.label,
                "attested_at": self.attested_at,
            },
            "registry": self.registry,
            "domain": self.domain.as_dict(),
        }
        if self.platform_signature is not None:
            document["format"] = ATTESTATION_FORMAT_V2
            document["platform_signature"] = self.platform_signature.document()
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        v2 = isinstance(document, Mapping) and document.get("format") == ATTESTATION_FORMAT_V2
        required = {"format", "attestation", "registry", "domain"}
        _keys(
            "an attestation payload",
            document,
            required | ({"platform_signature"} if v2 else set()),
            set(),
        )
        if document["format"] not in (ATTESTATION_FORMAT, ATTESTATION_FORMAT_V2):
            raise InvalidInput(
                f"an attestation payload of format {document['format']!r}; "
                f"only {ATTESTATION_FORMAT!r} and {ATTESTATION_FORMAT_V2!r} are known"
            )
        attestation = document["attestation"]
        _keys(
            "an attestation", attestation, {"platform", "seller_ref", "level", "attested_at"}, set()
        )
        parsed = cls(
            platform=attestation["platform"],
            seller_ref=_hex(attestation["seller_ref"], "an attestation's seller_ref"),
            level=Level.parse(attestation["level"]),
            attested_at=attestation["attested_at"],
            registry=document["registry"],
            domain=Domain.from_dict(document["domain"]),
            platform_signature=(
                PlatformSignature.from_document(document["platform_signature"]) if v2 else None
            ),
        )
        return cls._canonical(parsed, document, canonical)


__all__ = [
    "ATTESTATION_FORMAT",
    "ATTESTATION_FORMAT_V2",
    "ATTESTATION_RECORD",
    "LEVEL_LABELS",
    "MAX_NONCE",
    "PLATFORM_ATTESTATION",
    "PLATFORM_KEY_ENROLLMENT",
    "PLATFORM_KEY_ROTATION",
    "AttestationPayload",
    "Level",
    "PlatformSignature",
    "attestation_subject",
    "enroll_message",
    "platform_key_subject",
    "platform_message",
    "rotation_message",
]
