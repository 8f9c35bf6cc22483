"""The payload documents whose SHA-256 is in every leaf: one frozen type per entry kind.

CONSENSUS-CRITICAL: an entry's ``payload_hash`` is SHA-256 of the RFC 8785 JSON of its
payload (DESIGN "Entries and leaves"); ``to_json`` writes exactly the bytes the registry has
always written, and ``from_json`` accepts only a document ``to_json`` gives back byte for
byte, so a parsed payload can never hash to anything but what was logged.

The CREATOR_IDENTITY payload is the identity claim's document (``verifier.identityclaim``,
which holds the creator's statement it carries); the TRANSFER payload is in
``registry.transferpayload``; the other kinds are below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Self, overload

from registry.canonicaljson import canonical_json
from registry.edges import parse_hash32, to_hex
from registry.eip712 import Domain, parse_address
from registry.errors import InvalidInput
from registry.fingerprints import FINGERPRINT_SIZE
from registry.leaf import EntryKind
from registry.royalty import RoyaltyPolicy, policy_document
from registry.signatures import SIGNATURE_SIZE
from registry.signed import SignedMessage

MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""Largest payload JSON ``from_json`` parses.

A payload is one signed message, its domain, a royalty policy of at most 16 recipients and at
most 4 KiB of metadata: far below this. Threat: a stored or shipped document crafted to make
the reader parse and hash megabytes.
"""


class Payload:
    """What every payload type shares: its JSON, its hash, and the strict parse (the
    CREATOR_IDENTITY payload, ``verifier.identityclaim.CreatorIdentityPayload``, too)."""

    __slots__ = ()

    def document(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        """Parse a payload document. ``canonical=False`` skips the check that it is in its
        canonical form, for a caller that proves it otherwise (comparing ``payload_hash()``
        with the digest of the document as shipped, as the bundle check does)."""
        raise NotImplementedError

    def to_json(self) -> bytes:
        """The RFC 8785 JSON of ``document()``: the bytes the leaf's payload hash covers."""
        return canonical_json(self.document())

    def payload_hash(self) -> bytes:
        """SHA-256 of ``to_json()``: the leaf's ``payload_hash`` (a batch's seed, in a batch)."""
        return hashlib.sha256(self.to_json()).digest()

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        """Parse a payload's JSON (as stored, or as shipped in a bundle); see ``from_document``."""
        if len(data) > MAX_PAYLOAD_BYTES:
            raise InvalidInput(f"a payload is larger than the limit of {MAX_PAYLOAD_BYTES} bytes")
        try:
            document = json.loads(data)
        except ValueError:
            raise InvalidInput("a payload is not JSON") from None
        if not isinstance(document, dict):
            raise InvalidInput("a payload is a JSON object")
        return cls.from_document(document)

    @classmethod
    def _canonical(cls, parsed: Self, document: Mapping[str, Any], canonical: bool) -> Self:
        # Parsing normalises (checksummed addresses, decimal uint64s): a document that
        # normalises to something else would hash differently from the parsed value.
        if canonical and canonical_json(parsed.document()) != canonical_json(dict(document)):
            raise InvalidInput(f"the {cls.__name__} document is not in its canonical form")
        return parsed


def _keys(what: str, document: object, required: set[str], optional: set[str]) -> None:
    if not isinstance(document, Mapping):
        raise InvalidInput(f"{what} is a JSON object")
    missing, extra = required - set(document), set(document) - required - optional
    if missing or extra:
        raise InvalidInput(
            f"{what} has the keys {sorted(required)}"
            + (f" and optionally {sorted(optional)}" if optional else "")
            + f"; missing {sorted(missing)}, unknown {sorted(extra)}"
        )


def _hex(value: object, what: str) -> bytes:
    """A document's 0x-hex text as bytes; the payload's constructor checks their length."""
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise InvalidInput(f"{what} is 0x-hex")


def _signed_message(signed: object, what: str, signed_types: frozenset[str]) -> SignedMessage:
    primary_type = signed.get("type") if isinstance(signed, Mapping) else None
    if not isinstance(primary_type, str) or primary_type not in signed_types:
        raise InvalidInput(f"a {what} payload holds no {primary_type!r}")
    assert isinstance(signed, Mapping)
    return SignedMessage.from_document(signed, expect=str(primary_type))


@dataclass(frozen=True, slots=True)
class RegistrationPayload(Payload):
    """A REGISTER entry's payload, and a CONFLICT's (the losing claim keeps its document):
    the creator's signed (batch) registration, the domain it was signed under, and the royalty
    policy and metadata whose hashes the message signs."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.REGISTER, EntryKind.CONFLICT})
    signed_types: ClassVar[frozenset[str]] = frozenset({"Registration", "BatchRegistration"})

    signed: SignedMessage
    domain: Domain
    royalty_policy: RoyaltyPolicy | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.signed.primary_type not in self.signed_types:
            raise InvalidInput(f"a registration payload holds no {self.signed.primary_type}")
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise InvalidInput("a registration's metadata is a JSON object")

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "signed": self.signed.document(),
            "domain": self.domain.as_dict(),
        }
        if self.royalty_policy is not None:
            document["royalty_policy"] = policy_document(self.royalty_policy)
        if self.metadata is not None:
            document["metadata"] = dict(self.metadata)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        # NOTE: the policy and metadata are optional as record_payload always allowed (a
        # payload without attachments); every registration the registry builds has both.
        _keys(
            "a registration payload", document, {"signed", "domain"}, {"royalty_policy", "metadata"}
        )
        parsed = cls(
            signed=_signed_message(document["signed"], "registration", cls.signed_types),
            domain=Domain.from_dict(document["domain"]),
            royalty_policy=(
                RoyaltyPolicy.parse(document["royalty_policy"])
                if "royalty_policy" in document
                else None
            ),
            metadata=document.get("metadata"),
        )
        return cls._canonical(parsed, document, canonical)


@dataclass(frozen=True, slots=True)
class RevocationPayload(Payload):
    """A REVOKE entry's payload: the creator's signed (batch) revocation and its domain."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.REVOKE})
    signed_types: ClassVar[frozenset[str]] = frozenset({"Revocation", "BatchRevocation"})

    signed: SignedMessage
    domain: Domain

    def __post_init__(self) -> None:
        if self.signed.primary_type not in self.signed_types:
            raise InvalidInput(f"a revocation payload holds no {self.signed.primary_type}")

    def document(self) -> dict[str, Any]:
        return {"signed": self.signed.document(), "domain": self.domain.as_dict()}

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys("a revocation payload", document, {"signed", "domain"}, set())
        parsed = cls(
            signed=_signed_message(document["signed"], "revocation", cls.signed_types),
            domain=Domain.from_dict(document["domain"]),
        )
        return cls._canonical(parsed, document, canonical)


@dataclass(frozen=True, slots=True)
class KeyHandoverPayload(Payload):
    """A KEY_HANDOVER entry's payload: the outgoing registry key's EIP-712 ``KeyHandover``
    signature naming the new key and the first tree size it signs (issue 11)."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.KEY_HANDOVER})

    old_key: str
    new_key: str
    tree_size: int
    signature: bytes
    domain: Domain

    def __post_init__(self) -> None:
        object.__setattr__(self, "old_key", parse_address(self.old_key, what="old_key"))
        object.__setattr__(self, "new_key", parse_address(self.new_key, what="new_key"))
        if (
            not isinstance(self.tree_size, int)
            or isinstance(self.tree_size, bool)
            or not 1 <= self.tree_size < 2**64
        ):
            raise InvalidInput("a hand-over's tree_size is an integer from 1 to 2^64 - 1")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput(f"a hand-over's signature is {SIGNATURE_SIZE} bytes")

    def document(self) -> dict[str, Any]:
        return {
            "handover": {
                "old_key": self.old_key,
                "new_key": self.new_key,
                "tree_size": self.tree_size,
            },
            "signature": "0x" + self.signature.hex(),
            "domain": self.domain.as_dict(),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys("a hand-over payload", document, {"handover", "signature", "domain"}, set())
        handover = document["handover"]
        _keys("a hand-over", handover, {"old_key", "new_key", "tree_size"}, set())
        parsed = cls(
            old_key=handover["old_key"],
            new_key=handover["new_key"],
            tree_size=handover["tree_size"],
            signature=_hex(document["signature"], "a hand-over's signature"),
            domain=Domain.from_dict(document["domain"]),
        )
        return cls._canonical(parsed, document, canonical)


STATE_MAP_FORMAT: Final = "tracemark-statemap/v1"
"""The map a STATE_COMMITMENT names: the hashing of ``registry.statemap`` (keys, history-chain
values, the sparse Merkle tree). A later map would be a new name, never a silent change."""


@dataclass(frozen=True, slots=True)
class StateCommitmentPayload(Payload):
    """A STATE_COMMITMENT entry's payload (issue 14): the state map's root over the log's
    first ``covers`` leaves. ``covers`` is the commitment's own leaf index, so the map holds
    exactly the goods' entries at leaf indices below it; the root is also the leaf's
    fingerprint word, which a verifier compares with this document."""

    kinds: ClassVar[frozenset[EntryKind]] = frozenset({EntryKind.STATE_COMMITMENT})

    map_root: bytes
    covers: int

    def __post_init__(self) -> None:
        if not isinstance(self.map_root, bytes) or len(self.map_root) != FINGERPRINT_SIZE:
            raise InvalidInput(f"a state commitment's map_root is {FINGERPRINT_SIZE} bytes")
        if (
            not isinstance(self.covers, int)
            or isinstance(self.covers, bool)
            or not 0 <= self.covers < 2**64 - 1
        ):
            raise InvalidInput("a state commitment's covers is an integer from 0 to 2^64 - 2")

    def document(self) -> dict[str, Any]:
        return {
            "map": STATE_MAP_FORMAT,
            "map_root": to_hex(self.map_root),
            "covers": self.covers,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any], *, canonical: bool = True) -> Self:
        _keys("a state commitment payload", document, {"map", "map_root", "covers"}, set())
        if document["map"] != STATE_MAP_FORMAT:
            raise InvalidInput(
                f"a state commitment names the map {document['map']!r}; "
                f"only {STATE_MAP_FORMAT!r} is known"
            )
        try:
            map_root = parse_hash32(document["map_root"])
        except ValueError as exc:
            raise InvalidInput(f"a state commitment's map_root {exc}") from None
        parsed = cls(map_root=map_root, covers=document["covers"])
        return cls._canonical(parsed, document, canonical)


@overload
def _amount(value: object, what: str, *, required: Literal[True]) -> int: ...
@overload
def _amount(value: object, what: str) -> int | None: ...
def _amount(value: object, what: str, *, required: bool = False) -> int | None:
    # Amounts are integers in minor units, written as decimal strings (exact past 2^53).
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.isdigit():
        raise InvalidInput(f"{what} is a decimal string of minor units")
    return int(value)


SignedPayload = RegistrationPayload | RevocationPayload
"""A payload that carries a creator's signed message (REGISTER, CONFLICT, REVOKE)."""


def signed_payload_from_json(data: bytes | str) -> SignedPayload:
    """A stored signed-record payload, registration or revocation, by its signed type."""
    try:
        document = json.loads(data) if len(data) <= MAX_PAYLOAD_BYTES else None
    except ValueError:
        raise InvalidInput("a payload is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("signed"), Mapping):
        raise InvalidInput("a signed payload is a JSON object holding a signed message")
    if str(document["signed"].get("type")) in RevocationPayload.signed_types:
        return RevocationPayload.from_document(document)
    return RegistrationPayload.from_document(document)


__all__ = [
    "MAX_PAYLOAD_BYTES",
    "STATE_MAP_FORMAT",
    "KeyHandoverPayload",
    "Payload",
    "RegistrationPayload",
    "RevocationPayload",
    "SignedPayload",
    "StateCommitmentPayload",
    "signed_payload_from_json",
]
