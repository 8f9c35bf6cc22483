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
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final, Self

from registry.eip712 import Domain, parse_address
from registry.errors import InvalidInput
from registry.leaf import EntryKind
from registry.parties import check_platform_id
from registry.payloads import Payload, _hex, _keys

ATTESTATION_FORMAT: Final = "tracemark-attestation/v1"
"""The name of the payload's layout, inside it: a reader refuses any other."""

ATTESTATION_RECORD: Final = "RealNameAttestation"
"""The ``primary_type`` of the registry's record of an attestation (``signed_records``)."""

_SUBJECT_TAG: Final = b"tracemark/attestation-subject/v1\x00"
_HASH_SIZE: Final = 32
_MAX_TIME: Final = 2**64 - 1


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

    def document(self) -> dict[str, Any]:
        return {
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

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys(
            "an attestation payload",
            document,
            {"format", "attestation", "registry", "domain"},
            set(),
        )
        if document["format"] != ATTESTATION_FORMAT:
            raise InvalidInput(
                f"an attestation payload of format {document['format']!r}; "
                f"only {ATTESTATION_FORMAT!r} is known"
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
        )
        return cls._canonical(parsed, document, canonical)


__all__ = [
    "ATTESTATION_FORMAT",
    "ATTESTATION_RECORD",
    "LEVEL_LABELS",
    "AttestationPayload",
    "Level",
    "attestation_subject",
]
