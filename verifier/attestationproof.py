"""A real-name attestation's offline proof (``tracemark-attestation-proof/v1``) and its check.

The document carries one ATTESTATION entry (kind 9, issue 18 item 4): its payload, its leaf
index and timestamp, the RFC 9162 inclusion proof to a signed tree head, that head, and the
pointer to the head's anchor. Nothing it says of itself is trusted (STYLE 15): the leaf is
rebuilt from the payload, and the caller's pinned trust root decides the domain and the
keys. The steps, numbered as the code repeats them:

1. the payload parses, in its canonical form (``registry.attestations.AttestationPayload``);
   its SHA-256 is the leaf's payload hash; step ``entry``;
2. it was attested by the registry key the trust root names at the entry's place in the log,
   under the trusted domain; step ``signature`` / ``domain``; and (a ``/v2`` payload) the
   platform's attestation key it names signed ``PlatformAttestation`` over that platform,
   seller and level under that domain; step ``platform-signature``. A ``/v1`` payload,
   logged before platform keys, carries none: it proves the registry's word only, and the
   result says so (``platform_key`` None);
3. the leaf, rebuilt (kind 9, good type 0, the seller's subject word, the registry's
   address, the payload hash, the timestamp), is at ``leaf_index`` under the head's root by
   the inclusion proof; step ``inclusion``;
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

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from registry.attestations import AttestationPayload, Level
from registry.edges import Proof, Uint64
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof, SignatureError, describe_validation
from registry.leaf import NO_GOOD, EntryKind, encode_leaf
from registry.merkle import MAX_TREE_SIZE, hash_leaf, verify_inclusion
from registry.treehead import TreeHead
from verifier.bundle import AnchorPointer
from verifier.bundlereport import ChainFinding
from verifier.errors import BundleInvalid
from verifier.headcheck import AnchorView, check_head, check_head_on_chain
from verifier.trust import TrustPolicy, TrustRoot

PROOF_FORMAT: Final = "tracemark-attestation-proof/v1"
"""The proof document's ``format``; a reader refuses any other."""

_HEAD: Final = re.compile(rb'\s*\{\s*"format"\s*:\s*"tracemark-attestation-proof/v1"')

MAX_PROOF_BYTES: Final = 64 * 1024
"""Largest proof document parsed: one payload, a head and at most 64 hashes fit in 16 KiB.
Threat: a crafted file that makes a verifier parse megabytes."""


class AttestationProof(BaseModel):
    """A ``tracemark-attestation-proof/v1`` document, as the registry builds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tracemark-attestation-proof/v1"]
    #: The ATTESTATION entry's payload document (what its leaf's payload hash covers).
    payload: dict[str, Any]
    leaf_index: Annotated[StrictInt, Field(ge=0, lt=MAX_TREE_SIZE)]
    #: The entry's sequencing time, the leaf's timestamp word.
    timestamp: Uint64
    inclusion_proof: Proof
    tree_head: TreeHead
    #: Where the registry says the head was anchored; null when it is not anchored yet.
    anchor: AnchorPointer | None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

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

    @property
    def status(self) -> str:
        """``verified`` only when the chain held the head's root at the root's depth."""
        if self.chain is None:
            return "unchecked"
        if not self.chain.anchored:
            return "not-anchored"
        return "verified" if self.chain.final else "not-final"

    def summary(self) -> str:
        signed = (
            f"signed by its key {self.platform_key}"
            if self.platform_key is not None
            else "no platform signature: the registry's word only"
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
        }


def is_attestation_proof(data: bytes) -> bool:
    """Whether a file is this format's: it names it first (as ``to_json`` writes it), or it
    is a JSON object within ``MAX_PROOF_BYTES`` whose ``format`` is it (keys sorted)."""
    if _HEAD.match(data[:256]) is not None:
        return True
    if len(data) > MAX_PROOF_BYTES or PROOF_FORMAT.encode() not in data:
        return False
    try:
        document = json.loads(data)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("format") == PROOF_FORMAT


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
    )


__all__ = [
    "MAX_PROOF_BYTES",
    "PROOF_FORMAT",
    "AttestationProof",
    "ProvedAttestation",
    "check_attestation_proof",
    "check_attestation_proof_under",
    "is_attestation_proof",
]
