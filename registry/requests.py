"""Creators' signed requests: a registration or a revocation with the documents it commits to.

Pure (no database): the creator's CLI and the platform's client build them, the registry
checks them before it writes anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785

from registry.eip712 import Domain
from registry.errors import InvalidInput
from registry.fingerprints import EMPTY_FILE_FINGERPRINT, GoodType, Use
from registry.leaf import payload_hash
from registry.payloads import RegistrationPayload, RevocationPayload
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.signed import SignedMessage

#: A product slug: lowercase, digits and dashes, as in a URL path segment.
PRODUCT_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: Public metadata travels in every payload and proof bundle: keep it small.
MAX_METADATA_BYTES = 4_096


def metadata_hash(metadata: Mapping[str, Any]) -> bytes:
    return payload_hash(metadata)


def check_metadata(metadata: Mapping[str, Any]) -> None:
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata must be a JSON object")
    try:
        size = len(rfc8785.dumps(dict(metadata)))
    except (TypeError, ValueError, rfc8785.CanonicalizationError) as exc:
        raise InvalidInput(f"metadata is not canonical JSON: {exc}") from exc
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is {size:,} bytes; at most {MAX_METADATA_BYTES:,}")


def signed_good_type(signed: SignedMessage) -> GoodType:
    """The good type a signed request names (its ``goodType`` field)."""
    try:
        return GoodType(int(signed.message["goodType"]))
    except ValueError as exc:
        raise InvalidInput(f"goodType {signed.message['goodType']} is unknown") from exc


@dataclass(frozen=True)
class RegistrationRequest:
    """A signed ``Registration`` or ``BatchRegistration`` with the documents it commits to."""

    signed: SignedMessage
    royalty_policy: RoyaltyPolicy
    metadata: Mapping[str, Any]
    #: The caller means to start a new product with this registration. Not signed: a guard
    #: against a mistyped slug silently starting a second product line, not an authority.
    new_product: bool = False

    @property
    def creator(self) -> bytes:
        return self.signed.signer_bytes

    @property
    def good_type(self) -> GoodType:
        return signed_good_type(self.signed)

    @property
    def use(self) -> Use:
        try:
            return Use(int(self.signed.message["use"]))
        except ValueError as exc:
            raise InvalidInput(f"use {self.signed.message['use']} is unknown (1 or 2)") from exc

    def check(self, domain: Domain, *, now: int) -> None:
        """Steps: (1) the signature, (2) the documents match their signed hashes,
        (3) the product and use make sense for the good type, (4) a file is not empty."""
        # 1. Signature, signer and deadline.
        self.signed.verify(domain, now=now)
        message = self.signed.message
        # 2. The policy and metadata that travel with the message are the signed ones.
        if policy_hash(self.royalty_policy) != message["royaltyPolicy"]:
            raise InvalidInput("royaltyPolicy is not the SHA-256 of the royalty policy sent")
        check_metadata(self.metadata)
        if metadata_hash(self.metadata) != message["metadata"]:
            raise InvalidInput("metadata is not the SHA-256 of the metadata document sent")
        # 3. Products: codes need one, because a product is how a platform names the key.
        good_type, _ = self.good_type, self.use
        product = str(message["product"])
        if product and not PRODUCT_SLUG.match(product):
            raise InvalidInput(
                f"product {product!r} is not a slug (lowercase letters, digits, dashes)"
            )
        if good_type is GoodType.CODE and not product:
            raise InvalidInput("a code must name its product")
        # 4. An empty file is not a good (a batch carries no fingerprint in its message).
        if good_type is GoodType.FILE and message.get("fingerprint") == EMPTY_FILE_FINGERPRINT:
            raise InvalidInput("the file is empty: an empty file is not a good")

    def payload(self, domain: Domain) -> RegistrationPayload:
        """The REGISTER (or CONFLICT) entry's payload document."""
        return RegistrationPayload(self.signed, domain, self.royalty_policy, dict(self.metadata))


#: A revocation reason is public and travels in proofs: keep it short.
MAX_REASON_LENGTH = 280


@dataclass(frozen=True)
class RevocationRequest:
    """A signed ``Revocation`` or ``BatchRevocation``."""

    signed: SignedMessage

    @property
    def good_type(self) -> GoodType:
        return signed_good_type(self.signed)

    def check(self, domain: Domain, *, now: int) -> None:
        self.signed.verify(domain, now=now)
        reason = str(self.signed.message["reason"])
        if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            raise InvalidInput(f"a revocation needs a reason of 1 to {MAX_REASON_LENGTH} chars")

    def payload(self, domain: Domain) -> RevocationPayload:
        """The REVOKE entry's payload document."""
        return RevocationPayload(self.signed, domain)
