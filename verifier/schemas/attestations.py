"""Wire schema of real-name attestations (实名制, issue 18 item 4)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StringConstraints

from verifier.schemas.fields import Strict

#: ``registry.attestations.LEVEL_LABELS``, lowest first.
LevelName = Literal["none", "phone", "id-card", "face"]
Count = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]
HashHex = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-f]{64}$")]


class AttestationIn(Strict):
    """A platform's attestation of one of its seller accounts. ``reference`` is the account's
    opaque id on the platform (the ``seller.reference`` its transfers and orders give): the
    registry keeps only its keyed hash. Never a name, an ID number or a phone number."""

    reference: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    level: LevelName


class AttestationOut(Strict):
    """One logged attestation: the seller by its keyed reference hash, the level, when, and
    the ATTESTATION entry's leaf (its proof: ``GET /v1/attestations/{id}/proof``)."""

    id: Count
    platform: str
    seller_ref: HashHex
    level: LevelName
    attested_at: Count
    leaf_index: Count


class SellerLevelOut(Strict):
    """A seller's current real-name level: its newest attestation's (``none`` without one)."""

    platform: str
    seller_ref: HashHex
    level: LevelName
    #: The newest attestation, which superseded every earlier one; null if never attested.
    attestation: AttestationOut | None


__all__ = ["AttestationIn", "AttestationOut", "LevelName", "SellerLevelOut"]
