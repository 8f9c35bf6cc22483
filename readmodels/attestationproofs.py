"""Building a real-name attestation's offline proof (``verifier.attestationproof``) from the
registry's log: the entry's payload, its inclusion proof under the head a bundle would be
proved under (``readmodels.bundles``: the largest anchored head covering it, else the latest
signed one), that head and its anchor pointer; for a signed attestation (a ``/v2`` payload),
the PLATFORM_KEY entry that enrolled its key too, proved under the same head
(``tracemark-attestation-proof/v2``).

NOTE: the registry's storage is imported when a function runs, as in ``readmodels.bundles``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readmodels.bundles import _choose_head
from verifier.attestationproof import (
    PROOF_FORMAT,
    PROOF_FORMAT_V2,
    AttestationProof,
    KeyEnrollment,
)

if TYPE_CHECKING:
    from registry.service import Registry


def build_attestation_proof(registry: Registry, attestation_id: int) -> AttestationProof:
    """The proof of attestation ``attestation_id``; ``NotFound`` for none, or for one whose
    key was enrolled before enrollments were logged (no entry to prove it by)."""
    from registry.attestationstore import attestation_payload, read_attestation
    from registry.errors import NotFound
    from registry.platformkeys import logged_enrollment

    attestation = read_attestation(registry, attestation_id)
    entry = registry.entry_at(attestation.leaf_index)
    payload = attestation_payload(registry, attestation.entry_id)
    head, anchor = _choose_head(registry, attestation.leaf_index)
    key_enrollment = None
    signed = payload.platform_signature
    if signed is not None:
        enrolled = logged_enrollment(registry.engine, payload.platform, signed.signer)
        if enrolled is None:
            raise NotFound(
                f"attestation {attestation_id}'s key {signed.signer} has no logged enrollment "
                "(enrolled before enrollments were logged): no proof shows it is the platform's"
            )
        key_enrollment = KeyEnrollment(
            payload=enrolled.payload.document(),
            leaf_index=enrolled.leaf_index,
            timestamp=enrolled.timestamp,
            inclusion_proof=tuple(registry.inclusion_proof(enrolled.leaf_index, head.tree_size)),
        )
    return AttestationProof(
        format=PROOF_FORMAT if key_enrollment is None else PROOF_FORMAT_V2,
        payload=payload.document(),
        leaf_index=attestation.leaf_index,
        timestamp=int(entry.timestamp or 0),  # sequenced by attest: never None
        inclusion_proof=tuple(registry.inclusion_proof(attestation.leaf_index, head.tree_size)),
        tree_head=head,
        anchor=anchor,
        key_enrollment=key_enrollment,
    )


__all__ = ["build_attestation_proof"]
