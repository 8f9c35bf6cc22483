"""The client's calls for real-name attestations (issue 18 item 4)."""

from __future__ import annotations

import re
from typing import Any

from registry.errors import InvalidInput
from registry.parties import check_platform_id
from verifier.attestationproof import AttestationProof
from verifier.schemas.attestations import AttestationIn, AttestationOut, LevelName, SellerLevelOut
from verifier.transport import RegistryTransport, request_model

_SELLER = re.compile(r"0x[0-9a-f]{64}")


class AttestationCalls(RegistryTransport):
    """Attest a seller account's real-name level (a platform key), and read levels and the
    offline proof of an attestation (any caller); check a proof with
    ``verifier.attestationproof.check_attestation_proof``."""

    def attest_seller(
        self, reference: str, level: LevelName, *, idempotency_key: str | None = None
    ) -> AttestationOut:
        """Attest that your platform's account ``reference`` (its opaque id, never personal
        data) is verified to ``level``; a later attestation supersedes it (``none`` withdraws).
        Send an ``idempotency_key`` to make a retry answer the first, not log another."""
        fields: dict[str, Any] = {"reference": reference, "level": level}
        body = request_model(AttestationIn, fields, "the attestation's fields are invalid")
        return self._post(
            "/v1/attestations",
            body.model_dump(mode="json"),
            AttestationOut,
            idempotency_key=idempotency_key,
        )

    def attestation(self, attestation_id: int) -> AttestationOut:
        """One logged attestation."""
        return self._model(
            AttestationOut, self._send("GET", f"/v1/attestations/{int(attestation_id)}")
        )

    def attestation_proof(self, attestation_id: int) -> AttestationProof:
        """The offline proof of a logged attestation (``tracemark-attestation-proof/v1``)."""
        answer = self._send("GET", f"/v1/attestations/{int(attestation_id)}/proof")
        return self._model(AttestationProof, answer)

    def seller_level(self, platform: str, seller: str) -> SellerLevelOut:
        """A seller's current level on ``platform``, by its keyed reference hash."""
        if _SELLER.fullmatch(seller) is None:
            raise InvalidInput("a seller is its keyed reference hash: 0x and 64 hex digits")
        path = f"/v1/attestations/platforms/{check_platform_id(platform)}/sellers/{seller}"
        return self._model(SellerLevelOut, self._send("GET", path))


__all__ = ["AttestationCalls"]
