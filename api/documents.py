"""Wire documents (``verifier.schemas``) into the registry's signed requests."""

from __future__ import annotations

from typing import Any

from registry.errors import InvalidInput
from registry.requests import RegistrationRequest, RevocationRequest, check_metadata
from registry.royalty import RoyaltyPolicy
from registry.signed import SignedMessage
from verifier.schemas import (
    BatchRegistrationIn,
    BatchRevocationIn,
    RegistrationIn,
    RevocationIn,
    SignedDocument,
)


def signed(document: SignedDocument, expect: str) -> SignedMessage:
    return SignedMessage.from_document(document.model_dump(), expect=expect)


def registration_request(
    body: RegistrationIn | BatchRegistrationIn, *, batch: bool
) -> RegistrationRequest:
    metadata: dict[str, Any] = body.metadata
    check_metadata(metadata)
    return RegistrationRequest(
        signed(body.signed, "BatchRegistration" if batch else "Registration"),
        RoyaltyPolicy.parse(body.royalty_policy),
        metadata,
        body.new_product,
    )


def revocation_request(body: RevocationIn | BatchRevocationIn, *, batch: bool) -> RevocationRequest:
    return RevocationRequest(signed(body.signed, "BatchRevocation" if batch else "Revocation"))


def require_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value
