"""The batch proof: a fingerprint's place under the items root a creator signed for a batch.

A bulk registration (or revocation) is one signature over the RFC 9162 root of its
fingerprints (``itemsRoot``); the proof that this signature covers one good is its position,
the batch's count and the audit path, each leaf a 32-byte fingerprint (``merkle.hash_leaf``).
The server builds it from its stored batch tiles, the bundle carries it, the verifier checks
it.

NOTE: pure (no web3, no ORM, no web framework): the verifier kit parses bundles with this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from registry.edges import MAX_UINT32, Hash32, Proof, Uint32


class BatchProof(BaseModel):
    """The fingerprint's place under the items root the creator signed once for a bulk batch
    (the same RFC 9162 tree shape, each leaf a 32-byte fingerprint)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    items_root: Hash32
    position: Uint32
    count: Annotated[StrictInt, Field(ge=1, le=MAX_UINT32)]
    inclusion_proof: Proof

    def to_json(self) -> dict[str, Any]:
        """The proof as JSON: 0x-hex root and nodes, in format order."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> BatchProof:
        """Parse a proof document strictly; raises ``ValidationError``."""
        return cls.model_validate(document)


__all__ = ["BatchProof"]
