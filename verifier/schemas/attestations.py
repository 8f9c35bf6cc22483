"""Wire schema of real-name attestations (实名制, issue 18 item 4)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StringConstraints

from verifier.schemas.fields import Strict

#: ``registry.attestations.LEVEL_LABELS``, lowest first.
LevelName = Literal["none", "phone", "id-card", "face"]
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
HashHex = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]
#: A nonce or deadline: a uint64 in the signed struct, at most 2**53 - 1 (exact in JSON).
Uint64 = Annotated[StrictInt, Field(ge=0, le=2**53 - 1)]
SignatureHex = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class StatementIn(Strict):
    """What a platform is about to attest: its account ``reference`` (its opaque id on the
    platform, as in its transfers and orders; never a name, an ID number or a phone number)
    is verified to ``level``."""

    reference: Reference
    level: LevelName


class StatementOut(Strict):
    """The statement to sign with the platform's attestation key: EIP-712 typed data
    (``eth_signTypedData_v4``) of primary type ``PlatformAttestation`` over the seller's keyed
    reference hash, the level, a fresh nonce and a deadline."""

    seller_ref: HashHex
    nonce: Uint64
    deadline: Uint64
    typed_data: dict[str, Any]


class AttestationIn(Strict):
    """A platform's attestation of one of its seller accounts, signed by its enrolled
    attestation key: ``PlatformAttestation(platform, sellerRef, level, nonce, deadline)``
    under the registry's EIP-712 domain (``POST /v1/attestations/statement`` proposes it).
    ``reference`` is the account's opaque id: the registry keeps only its keyed hash."""

    reference: Reference
    level: LevelName
    nonce: Uint64
    deadline: Uint64
    #: 65 bytes r || s || v (v 27 or 28, low s), 0x-hex.
    signature: SignatureHex


class AttestationOut(Strict):
    """One logged attestation: the seller by its keyed reference hash, the level, when, and
    the ATTESTATION entry's leaf (its proof: ``GET /v1/attestations/{id}/proof``)."""

    id: Count
    platform: str
    seller_ref: HashHex
    level: LevelName
    attested_at: Count
    leaf_index: Count
    #: The platform's attestation key that signed it (null for one logged before keys).
    signer: str | None = None


class KeyEnrollmentIn(Strict):
    """A platform enrolls its own attestation key: ``address`` signs
    ``PlatformKeyEnrollment(platform, key, nonce, deadline)`` under the registry's EIP-712
    domain (its proof of possession). It supersedes the platform's current key, which must
    consent: ``consent_signature`` is that key's ``PlatformKeyRotation(platform, oldKey,
    newKey, nonce, deadline)`` with the same nonce and deadline (``rotation-unconsented``
    without it). The enrollment is logged (a PLATFORM_KEY entry)."""

    address: Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
    nonce: Uint64
    deadline: Uint64
    #: 65 bytes r || s || v (v 27 or 28, low s), 0x-hex, by ``address``'s key.
    signature: SignatureHex
    #: The key in force's consent to the rotation, 0x-hex; null for a platform's first key.
    consent_signature: SignatureHex | None = None


class PlatformKeyOut(Strict):
    """An enrolled attestation key: the newest of a platform's is in force."""

    id: Count
    platform: str
    address: str
    enrolled_at: Count
    #: "operator" (the CLI) or "platform" (this route).
    enrolled_by: str


class SellerLevelOut(Strict):
    """A seller's current real-name level: its newest attestation's (``none`` without one)."""

    platform: str
    seller_ref: HashHex
    level: LevelName
    #: The newest attestation, which superseded every earlier one; null if never attested.
    attestation: AttestationOut | None


__all__ = [
    "AttestationIn",
    "AttestationOut",
    "KeyEnrollmentIn",
    "LevelName",
    "PlatformKeyOut",
    "SellerLevelOut",
    "StatementIn",
    "StatementOut",
]
