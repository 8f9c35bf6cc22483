"""The client's calls for real-name attestations (issue 18 item 4).

Attesting is two calls: the registry proposes the ``PlatformAttestation`` typed data (the
seller's keyed reference hash only it can compute, a fresh nonce, a deadline), the client
checks it names what was asked and signs it with the platform's attestation key
(eth-account: a private key, or any signer with ``sign_typed_data`` such as a
``LocalAccount``), then sends the signed attestation.
"""

from __future__ import annotations

import re
from typing import Any

from eth_account import Account

from registry.attestations import (
    PLATFORM_ATTESTATION,
    PLATFORM_KEY_ENROLLMENT,
    PLATFORM_KEY_ROTATION,
    enroll_message,
    rotation_message,
)
from registry.eip712 import Domain, typed_data
from registry.errors import InvalidInput
from registry.parties import check_platform_id
from verifier.attestationproof import AttestationProof
from verifier.schemas.attestations import (
    AttestationIn,
    AttestationOut,
    KeyEnrollmentIn,
    LevelName,
    PlatformKeyOut,
    SellerLevelOut,
    StatementIn,
    StatementOut,
)
from verifier.transport import RegistryTransport, request_model

_SELLER = re.compile(r"0x[0-9a-f]{64}")
_LEVELS: dict[str, int] = {"none": 0, "phone": 1, "id-card": 2, "face": 3}


def sign_statement(statement: StatementOut, signing_key: Any) -> str:
    """The 0x-hex signature of a proposed statement by ``signing_key`` (a private key's bytes
    or hex, or an object with eth-account's ``sign_typed_data``)."""
    return _sign(statement.typed_data, signing_key)


def _sign(typed: dict[str, Any], signing_key: Any) -> str:
    if hasattr(signing_key, "sign_typed_data"):
        signed = signing_key.sign_typed_data(full_message=typed)
    else:
        signed = Account.sign_typed_data(signing_key, full_message=typed)
    return "0x" + bytes(signed.signature).hex()


def _address(signing_key: Any) -> str:
    if hasattr(signing_key, "address"):
        return str(signing_key.address)
    return str(Account.from_key(signing_key).address)


class AttestationCalls(RegistryTransport):
    """Attest a seller account's real-name level (a platform key), and read levels and the
    offline proof of an attestation (any caller); check a proof with
    ``verifier.attestationproof.check_attestation_proof``."""

    def enroll_attestation_key(
        self,
        platform: str,
        signing_key: Any,
        *,
        domain: Domain,
        nonce: int,
        deadline: int,
        current_key: Any = None,
    ) -> PlatformKeyOut:
        """Enroll ``signing_key`` as your platform's attestation key (it supersedes the current
        one): the key signs ``PlatformKeyEnrollment`` under ``domain`` (take it from your
        pinned trust root, not from the server), its proof of possession; ``current_key``, the
        key in force (needed once one is), signs ``PlatformKeyRotation``, its consent."""
        platform = check_platform_id(platform)
        address = _address(signing_key)
        message = enroll_message(platform, address, nonce, deadline)
        fields: dict[str, Any] = {
            "address": address,
            "nonce": nonce,
            "deadline": deadline,
            "signature": _sign(typed_data(PLATFORM_KEY_ENROLLMENT, message, domain), signing_key),
        }
        if current_key is not None:
            consent = rotation_message(platform, _address(current_key), address, nonce, deadline)
            fields["consent_signature"] = _sign(
                typed_data(PLATFORM_KEY_ROTATION, consent, domain), current_key
            )
        body = request_model(KeyEnrollmentIn, fields, "the key enrollment's fields are invalid")
        return self._post("/v1/attestations/keys", body.model_dump(mode="json"), PlatformKeyOut)

    def attestation_statement(self, reference: str, level: LevelName) -> StatementOut:
        """The registry's proposed ``PlatformAttestation`` statement for ``reference`` at
        ``level``, to sign with your attestation key (``sign_statement``)."""
        fields: dict[str, Any] = {"reference": reference, "level": level}
        body = request_model(StatementIn, fields, "the attestation's fields are invalid")
        statement = self._post(
            "/v1/attestations/statement", body.model_dump(mode="json"), StatementOut
        )
        typed = statement.typed_data
        message = typed.get("message")
        # Sign only what was asked: a registry proposing another statement gets no signature.
        if (
            typed.get("primaryType") != PLATFORM_ATTESTATION
            or not isinstance(message, dict)
            or message.get("level") != _LEVELS[level]
            or message.get("sellerRef") != statement.seller_ref
            or message.get("nonce") != statement.nonce
            or message.get("deadline") != statement.deadline
        ):
            raise InvalidInput("the registry proposed another statement than asked: not signing")
        return statement

    def attest_seller(
        self,
        reference: str,
        level: LevelName,
        *,
        signing_key: Any,
        idempotency_key: str | None = None,
    ) -> AttestationOut:
        """Attest that your platform's account ``reference`` (its opaque id, never personal
        data) is verified to ``level``, signed with your platform's enrolled attestation key
        ``signing_key`` (``sign_statement``); a later attestation supersedes it (``none``
        withdraws). Send an ``idempotency_key`` to make a retry answer the first."""
        statement = self.attestation_statement(reference, level)
        fields: dict[str, Any] = {
            "reference": reference,
            "level": level,
            "nonce": statement.nonce,
            "deadline": statement.deadline,
            "signature": sign_statement(statement, signing_key),
        }
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
        """The offline proof of a logged attestation (``tracemark-attestation-proof/v2``, or
        ``/v1`` for one logged before platform keys)."""
        answer = self._send("GET", f"/v1/attestations/{int(attestation_id)}/proof")
        return self._model(AttestationProof, answer)

    def seller_level(self, platform: str, seller: str) -> SellerLevelOut:
        """A seller's current level on ``platform``, by its keyed reference hash."""
        if _SELLER.fullmatch(seller) is None:
            raise InvalidInput("a seller is its keyed reference hash: 0x and 64 hex digits")
        path = f"/v1/attestations/platforms/{check_platform_id(platform)}/sellers/{seller}"
        return self._model(SellerLevelOut, self._send("GET", path))


__all__ = ["AttestationCalls", "sign_statement"]
