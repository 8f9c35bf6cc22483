"""A real-name attestation's offline proof (``tracemark-attestation-proof/v1`` and ``/v2``)
and its check.

The document carries one ATTESTATION entry (kind 9, issue 18 item 4): its payload, its leaf
index and timestamp, the RFC 9162 inclusion proof to a signed tree head, that head, and the
pointer to the head's anchor; ``/v2`` adds ``key_enrollment``, the PLATFORM_KEY entry (kind
10) that enrolled the platform key the attestation names, proved under the same head. Nothing
it says of itself is trusted (STYLE 15): the leaves are rebuilt from the payloads, the
caller's pinned trust root decides the domain and the keys, and the key is the platform's
only as far as the log says so. The steps, numbered as the code repeats them:

1. the payload parses, in its canonical form (``registry.attestations.AttestationPayload``);
   its SHA-256 is the leaf's payload hash; step ``entry``;
2. it was attested by the registry key the trust root names at the entry's place in the log,
   under the trusted domain; step ``signature`` / ``domain``; and (a ``/v2`` payload) the
   platform's attestation key it names signed ``PlatformAttestation`` over that platform,
   seller and level under that domain; step ``platform-signature``. A ``/v1`` payload,
   logged before platform keys, carries none: it proves the registry's word only, and the
   result says so (``platform_key`` None);
2c. (a ``/v2`` payload) the proof is ``/v2`` and its ``key_enrollment`` is the logged
   enrollment of that key for that platform (attested by the registry key the root names
   there, its platform signatures valid) at a leaf before the attestation's; step
   ``key-enrollment``. The result says who enrolled the key (``enrolled_by``): the platform
   (its key's proof of possession, and its old key's consent to a rotation) or the operator
   (the registry's word only). A ``/v1`` proof of a ``/v2`` payload is refused: it would take
   the payload's word that the key is the platform's;
3. the leaf, rebuilt (kind 9, good type 0, the seller's subject word, the registry's
   address, the payload hash, the timestamp), is at ``leaf_index`` under the head's root by
   the inclusion proof, and so is the key's enrollment leaf (kind 10); step ``inclusion``;
4. the head is signed by the key the trust root names for its size; step ``tree-head``;
5. with a chain handed in: the trusted contract holds that root for that size
   (``verifier.headcheck.check_head_on_chain``).

Pure except for the chain a caller hands in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from registry.attestations import AttestationPayload, Level, platform_key_subject
from registry.edges import Proof, Uint64
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof, SignatureError, describe_validation
from registry.leaf import NO_GOOD, EntryKind, encode_leaf
from registry.merkle import MAX_TREE_SIZE, hash_leaf, verify_inclusion
from registry.platformkeypayload import PlatformKeyPayload
from registry.treehead import TreeHead
from verifier.bundle import AnchorPointer
from verifier.bundlereport import ChainFinding
from verifier.errors import BundleInvalid
from verifier.headcheck import AnchorView, check_head, check_head_on_chain
from verifier.trust import TrustPolicy, TrustRoot

PROOF_FORMAT: Final = "tracemark-attestation-proof/v1"
"""The format of a proof of an attestation logged before platform keys (a ``/v1`` payload)."""

PROOF_FORMAT_V2: Final = "tracemark-attestation-proof/v2"
"""The format of a proof of a signed attestation: ``/v1`` plus its key's ``key_enrollment``
(a new format, not a member added to ``/v1``: a ``/v1`` reader refuses unknown members)."""

_FORMATS: Final = (PROOF_FORMAT, PROOF_FORMAT_V2)
_HEAD: Final = re.compile(rb'\s*\{\s*"format"\s*:\s*"tracemark-attestation-proof/v[12]"')

MAX_PROOF_BYTES: Final = 64 * 1024
"""Largest proof document parsed: two payloads, a head and at most 128 hashes fit in 32 KiB.
Threat: a crafted file that makes a verifier parse megabytes."""


class KeyEnrollment(BaseModel):
    """The PLATFORM_KEY entry (kind 10) that enrolled an attestation's key: its payload, its
    leaf index and timestamp, and its inclusion proof to the proof's head."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The entry's payload document (``registry.platformkeypayload.PlatformKeyPayload``).
    payload: dict[str, Any]
    leaf_index: Annotated[StrictInt, Field(ge=0, lt=MAX_TREE_SIZE)]
    #: The entry's sequencing time, the leaf's timestamp word.
    timestamp: Uint64
    inclusion_proof: Proof


class AttestationProof(BaseModel):
    """A ``tracemark-attestation-proof/v1`` or ``/v2`` document, as the registry builds it:
    ``key_enrollment`` is in a ``/v2`` document only (``to_json`` leaves it out of ``/v1``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tracemark-attestation-proof/v1", "tracemark-attestation-proof/v2"]
    #: The ATTESTATION entry's payload document (what its leaf's payload hash covers).
    payload: dict[str, Any]
    leaf_index: Annotated[StrictInt, Field(ge=0, lt=MAX_TREE_SIZE)]
    #: The entry's sequencing time, the leaf's timestamp word.
    timestamp: Uint64
    inclusion_proof: Proof
    tree_head: TreeHead
    #: Where the registry says the head was anchored; null when it is not anchored yet.
    anchor: AnchorPointer | None
    #: ``/v2`` only: the enrollment of the platform key the payload names.
    key_enrollment: KeyEnrollment | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> AttestationProof:
        if (self.format == PROOF_FORMAT_V2) != (self.key_enrollment is not None):
            raise ValueError(
                f"a {PROOF_FORMAT_V2} document carries key_enrollment, and only it does"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        document = self.model_dump(mode="json")
        if self.key_enrollment is None:
            del document["key_enrollment"]  # a /v1 document, as /v1 readers know it
        return document

    @classmethod
    def parse(cls, data: bytes | str) -> AttestationProof:
        """Parse a proof file strictly; ``InvalidInput`` for anything else."""
        if len(data) > MAX_PROOF_BYTES:
            raise InvalidInput(f"an attestation proof is larger than {MAX_PROOF_BYTES} bytes")
        try:
            return cls.model_validate(json.loads(data))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                raise InvalidInput(
                    "an attestation proof: " + describe_validation(exc, most=3)
                ) from None
            raise InvalidInput("an attestation proof is not JSON") from None


@dataclass(frozen=True, slots=True)
class ProvedAttestation:
    """What a proof proved: this platform attested this seller (by its keyed reference hash)
    to this level at this time, logged at ``leaf_index`` under a head of ``tree_size``."""

    platform: str
    seller_ref: bytes
    level: Level
    attested_at: int
    leaf_index: int
    tree_size: int
    #: The chain's word when a chain was asked; None offline.
    chain: ChainFinding | None
    #: The platform's attestation key whose signature was checked; None for a v1 payload
    #: (the registry's word only, logged before platform keys).
    platform_key: str | None = None
    #: Who enrolled that key, as its logged enrollment says: "platform" (with its key's
    #: proof of possession) or "operator" (the registry's word only); None for a v1 payload.
    enrolled_by: str | None = None
    #: The leaf of the key's enrollment (kind 10), before ``leaf_index``; None for v1.
    key_leaf_index: int | None = None

    @property
    def status(self) -> str:
        """``verified`` only when the chain held the head's root at the root's depth."""
        if self.chain is None:
            return "unchecked"
        if not self.chain.anchored:
            return "not-anchored"
        return "verified" if self.chain.final else "not-final"

    def summary(self) -> str:
        if self.platform_key is None:
            signed = "no platform signature: the registry's word only"
        elif self.enrolled_by == "operator":
            signed = (
                f"signed by key {self.platform_key}, which the registry's OPERATOR enrolled "
                f"for the platform at leaf {self.key_leaf_index:,}, not the platform itself: "
                "the key is the platform's on the operator's word only"
            )
        else:
            signed = (
                f"signed by its key {self.platform_key}, enrolled by the platform itself at "
                f"leaf {self.key_leaf_index:,}"
            )
        return (
            f"platform {self.platform} attested seller 0x{self.seller_ref.hex()} at level "
            f"{self.level.label} ({signed}; logged at leaf {self.leaf_index:,}, "
            f"head {self.tree_size:,})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "platform": self.platform,
            "seller_ref": "0x" + self.seller_ref.hex(),
            "level": self.level.label,
            "attested_at": self.attested_at,
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "anchored": None if self.chain is None else self.chain.anchored,
            "platform_key": self.platform_key,
            "enrolled_by": self.enrolled_by,
            "key_leaf_index": self.key_leaf_index,
        }


def is_attestation_proof(data: bytes) -> bool:
    """Whether a file is this format's: it names it first (as ``to_json`` writes it), or it
    is a JSON object within ``MAX_PROOF_BYTES`` whose ``format`` is it (keys sorted)."""
    if _HEAD.match(data[:256]) is not None:
        return True
    if len(data) > MAX_PROOF_BYTES or b"tracemark-attestation-proof/v" not in data:
        return False
    try:
        document = json.loads(data)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("format") in _FORMATS


def check_attestation_proof_under(
    proof: AttestationProof, policy: TrustPolicy, chain: AnchorView | None = None
) -> ProvedAttestation:
    """``check_attestation_proof`` under the pinned root of the registry the head's domain
    names (only to pick it: the root's own domain is what the check holds the payload and
    the head to); ``UntrustedRegistry`` when none is pinned."""
    return check_attestation_proof(proof, policy.root_for(proof.tree_head.domain), chain)


def check_attestation_proof(
    proof: AttestationProof, root: TrustRoot, chain: AnchorView | None = None
) -> ProvedAttestation:
    """Prove an attestation under the caller's pinned ``root`` (and, with ``chain``, its
    anchor); ``BundleInvalid`` naming the failed step. Returns what was proved."""
    where = f"attestation at leaf {proof.leaf_index:,}"
    # 1.
    try:
        payload = AttestationPayload.from_document(proof.payload)
    except InvalidInput as exc:
        raise BundleInvalid("entry", f"{where}: its payload: {exc.detail}") from None
    # 2. The attester is the key the trust root names there, never the one the payload says.
    expected = root.key_for_entry(proof.leaf_index)
    if payload.registry != checksum_address(expected):
        raise BundleInvalid(
            "signature",
            f"{where}: attested by {payload.registry}, but trust root {root.label()} names "
            f"{checksum_address(expected)} there",
        )
    root.check_domain(payload.domain, where)
    # 2b. The platform's own word: its key, named in the payload the registry logged (the
    # leaf commits to the pairing), signed this platform, seller and level.
    platform_key = None
    if payload.platform_signature is not None:
        try:
            platform_key = payload.check_platform_signature().signer
        except SignatureError as exc:
            raise BundleInvalid("platform-signature", f"{where}: {exc.detail}") from None
    # 2c. The key is the platform's as far as the log says so, and no further.
    enrolled = _check_key_enrollment(proof, payload, platform_key, root, where)
    # 3.
    leaf = encode_leaf(
        EntryKind.ATTESTATION,
        NO_GOOD,
        payload.subject,
        expected,
        payload.payload_hash(),
        proof.timestamp,
    )
    head = proof.tree_head
    try:
        verify_inclusion(
            hash_leaf(leaf), proof.leaf_index, head.tree_size, proof.inclusion_proof, head.root
        )
    except InvalidProof as exc:
        raise BundleInvalid("inclusion", f"{where}: {exc.detail}") from None
    if enrolled is not None and proof.key_enrollment is not None:
        entry = proof.key_enrollment
        key_leaf = encode_leaf(
            EntryKind.PLATFORM_KEY,
            NO_GOOD,
            platform_key_subject(enrolled.platform),
            root.key_for_entry(entry.leaf_index),
            enrolled.payload_hash(),
            entry.timestamp,
        )
        try:
            verify_inclusion(
                hash_leaf(key_leaf),
                entry.leaf_index,
                head.tree_size,
                entry.inclusion_proof,
                head.root,
            )
        except InvalidProof as exc:
            raise BundleInvalid(
                "inclusion",
                f"{where}: its key's enrollment at leaf {entry.leaf_index:,}: {exc.detail}",
            ) from None
    # 4.
    check_head(head, root)
    # 5.
    finding = None if chain is None else check_head_on_chain(head, proof.anchor, root, chain)
    return ProvedAttestation(
        platform=payload.platform,
        seller_ref=payload.seller_ref,
        level=payload.level,
        attested_at=payload.attested_at,
        leaf_index=proof.leaf_index,
        tree_size=head.tree_size,
        chain=finding,
        platform_key=platform_key,
        enrolled_by=None if enrolled is None else enrolled.enrolled_by,
        key_leaf_index=None if proof.key_enrollment is None else proof.key_enrollment.leaf_index,
    )


def _check_key_enrollment(
    proof: AttestationProof,
    payload: AttestationPayload,
    platform_key: str | None,
    root: TrustRoot,
    where: str,
) -> PlatformKeyPayload | None:
    """Step 2c: the enrollment of the key a ``/v2`` payload names (None for a ``/v1``
    payload, which names none); ``BundleInvalid`` at ``key-enrollment`` when it is missing,
    of another key or platform, not the registry's, not before the attestation, or its
    platform signatures fail. Its inclusion is checked with the attestation's (step 3)."""
    entry = proof.key_enrollment
    if platform_key is None:
        if entry is not None:
            raise BundleInvalid(
                "key-enrollment", f"{where}: a tracemark-attestation/v1 payload names no key"
            )
        return None
    if entry is None:
        raise BundleInvalid(
            "key-enrollment",
            f"{where}: the proof does not show that key {platform_key} was enrolled for "
            f"platform {payload.platform} ({proof.format} carries no key_enrollment: ask the "
            f"registry for a {PROOF_FORMAT_V2} proof)",
        )
    at = f"{where}: its key's enrollment at leaf {entry.leaf_index:,}"
    try:
        enrolled = PlatformKeyPayload.from_document(entry.payload)
    except InvalidInput as exc:
        raise BundleInvalid("key-enrollment", f"{at}: its payload: {exc.detail}") from None
    if enrolled.platform != payload.platform:
        raise BundleInvalid(
            "key-enrollment",
            f"{at} is for platform {enrolled.platform}, not {payload.platform}",
        )
    if enrolled.key != platform_key:
        raise BundleInvalid(
            "key-enrollment", f"{at} enrolled {enrolled.key}, not the signing key {platform_key}"
        )
    if entry.leaf_index >= proof.leaf_index:
        raise BundleInvalid(
            "key-enrollment",
            f"{at} is not before the attestation: the key was not enrolled when it was logged",
        )
    expected = root.key_for_entry(entry.leaf_index)
    if enrolled.registry != checksum_address(expected):
        raise BundleInvalid(
            "key-enrollment",
            f"{at}: attested by {enrolled.registry}, but trust root {root.label()} names "
            f"{checksum_address(expected)} there",
        )
    root.check_domain(enrolled.domain, at)
    try:
        enrolled.check_signatures()
    except SignatureError as exc:
        raise BundleInvalid("key-enrollment", f"{at}: {exc.detail}") from None
    return enrolled


__all__ = [
    "MAX_PROOF_BYTES",
    "PROOF_FORMAT",
    "PROOF_FORMAT_V2",
    "AttestationProof",
    "KeyEnrollment",
    "ProvedAttestation",
    "check_attestation_proof",
    "check_attestation_proof_under",
    "is_attestation_proof",
]
