"""Building a real-name attestation's offline proof (``verifier.attestationproof``) from the
registry's log: the entry's payload, its inclusion proof under the head a bundle would be
proved under (``readmodels.bundles``: the largest anchored head covering it, else the latest
signed one), that head and its anchor pointer.

NOTE: the registry's storage is imported when a function runs, as in ``readmodels.bundles``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readmodels.bundles import _choose_head
from verifier.attestationproof import PROOF_FORMAT, AttestationProof

if TYPE_CHECKING:
    from registry.service import Registry


def build_attestation_proof(registry: Registry, attestation_id: int) -> AttestationProof:
    """The proof of attestation ``attestation_id``; ``NotFound`` for none."""
    from registry.attestationstore import attestation_payload, read_attestation

    attestation = read_attestation(registry, attestation_id)
    entry = registry.entry_at(attestation.leaf_index)
    head, anchor = _choose_head(registry, attestation.leaf_index)
    return AttestationProof(
        format=PROOF_FORMAT,
        payload=attestation_payload(registry, attestation.entry_id).document(),
        leaf_index=attestation.leaf_index,
        timestamp=int(entry.timestamp or 0),  # sequenced by attest: never None
        inclusion_proof=tuple(registry.inclusion_proof(attestation.leaf_index, head.tree_size)),
        tree_head=head,
        anchor=anchor,
    )


__all__ = ["build_attestation_proof"]
