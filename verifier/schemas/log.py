"""Wire schemas of what auditors read about the log: the registry's identity and proofs."""

from __future__ import annotations

from typing import Any

from registry.edges import AddressText
from verifier.schemas.fields import (
    Strict,
)


class RegistryOut(Strict):
    """Who this registry is: the key that signs its heads and receipts, and the EIP-712 domain
    (the chain and anchor contract) that creators sign under."""

    address: AddressText
    domain: dict[str, Any]
    chain_id: int
    contract: AddressText
    #: Where the registry serves its trust root, and that root's fingerprint: compare it out
    #: of band before pinning it (``tracemark trust add``).
    trust_root_url: str
    trust_fingerprint: str


# An RFC 9162 proof as ``/v1/log/proof/*`` answers it: an inclusion proof names its
# ``leaf_index``, a consistency proof its ``from_size``; nodes are ``0x`` hex. NOTE: a comment,
# not a docstring: a docstring would become the schema's description in the OpenAPI document.
class ProofOut(Strict):
    tree_size: int
    proof: list[str]
    leaf_index: int | None = None
    from_size: int | None = None
