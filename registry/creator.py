"""The creator's side: keys on the creator's machine, fingerprints made locally, messages signed.

Codes never leave this module's caller: a bulk file is read line by line, each code is
normalised and HMAC'd under the creator's code key, and only fingerprints (spooled to a
temporary file, 32 bytes each) and one signature over their items root go to a registry.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from registry.codekeyring import ACCOUNT_FILE, CodeKeyring, key_commitment
from registry.codesfile import PreparedBatch
from registry.eip712 import Domain
from registry.fingerprints import GoodType, Use
from registry.keyring import create_account, load_account
from registry.requests import RegistrationRequest, RevocationRequest, metadata_hash
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.signatures import sign
from registry.signed import SignedMessage

#: A signed message is valid this long by default: long enough for a 10^6-code upload.
DEFAULT_VALIDITY_SECONDS = 3_600


@dataclass(frozen=True)
class CreatorKeys:
    """A creator's account (signs) and code keys (fingerprint codes), from a keys directory
    (the code keys alone: ``registry.codekeyring``)."""

    account: LocalAccount
    #: The current code key: what new codes are fingerprinted and registered under.
    code_key: bytes | None
    #: Every code key in the keys directory (the current one too), by kid: older keys are
    #: kept, so that codes made under them can still be fingerprinted and retired.
    code_keys: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def code_keyring(self) -> CodeKeyring:
        return CodeKeyring(self.code_key, self.code_keys)

    @classmethod
    def create(cls, keys_dir: Path) -> CreatorKeys:
        account = create_account(keys_dir / ACCOUNT_FILE)
        ring = CodeKeyring.create(keys_dir)
        return cls(account, ring.current, ring.keys)

    @classmethod
    def load(cls, keys_dir: Path) -> CreatorKeys:
        ring = CodeKeyring.load(keys_dir)  # refuses a directory without the account's key
        return cls(load_account(keys_dir / ACCOUNT_FILE), ring.current, ring.keys)

    @staticmethod
    def rotate_code_key(keys_dir: Path) -> str:
        """Make a new code key and make it the current one (``CodeKeyring.rotate``)."""
        return CodeKeyring.rotate(keys_dir)

    @property
    def current_kid(self) -> str | None:
        return self.code_keyring.current_kid

    def require_code_key(self) -> bytes:
        return self.code_keyring.require_current()

    def commitment_of(self, kid: str) -> bytes:
        """The commitment of a code key named by its kid, or given whole
        (``CodeKeyring.commitment_of``)."""
        return self.code_keyring.commitment_of(kid)

    def _sign(
        self, primary_type: str, fields: dict[str, Any], domain: Domain, *, now: int
    ) -> SignedMessage:
        """Sign ``fields`` as a ``primary_type`` write, fresh (a random nonce) and valid for
        ``DEFAULT_VALIDITY_SECONDS`` from ``now``: every struct ends with nonce and deadline."""
        message = {**fields, "nonce": fresh_nonce(), "deadline": now + DEFAULT_VALIDITY_SECONDS}
        signature = sign(primary_type, message, domain, bytes(self.account.key))
        return SignedMessage(primary_type, message, signature, self.address)


def fresh_nonce() -> int:
    """A random 63-bit nonce: no counter to keep in sync between a creator's machines."""
    return secrets.randbits(63)


def _product_terms(
    product: str, use: Use, royalty_policy: RoyaltyPolicy, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """What a Registration and a BatchRegistration both sign about the goods: their product,
    use, and the hashes of their royalty policy and metadata."""
    return {
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(royalty_policy),
        "metadata": metadata_hash(metadata),
    }


def sign_enrollment(keys: CreatorKeys, domain: Domain, *, now: int) -> SignedMessage:
    fields = {"keyCommitment": key_commitment(keys.require_code_key())}
    return keys._sign("CodeKeyEnrollment", fields, domain, now=now)


def sign_retirement(
    keys: CreatorKeys, domain: Domain, *, key_commitment: bytes, now: int
) -> SignedMessage:
    return keys._sign("CodeKeyRetirement", {"keyCommitment": key_commitment}, domain, now=now)


def sign_registration(
    keys: CreatorKeys,
    domain: Domain,
    *,
    good_type: GoodType,
    fingerprint: bytes,
    product: str,
    use: Use,
    royalty_policy: RoyaltyPolicy,
    metadata: Mapping[str, Any],
    now: int,
    new_product: bool = False,
) -> RegistrationRequest:
    fields = {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        **_product_terms(product, use, royalty_policy, metadata),
    }
    signed = keys._sign("Registration", fields, domain, now=now)
    return RegistrationRequest(signed, royalty_policy, dict(metadata), new_product)


def sign_revocation(
    keys: CreatorKeys,
    domain: Domain,
    *,
    good_type: GoodType,
    fingerprint: bytes,
    reason: str,
    now: int,
) -> RevocationRequest:
    fields = {"goodType": int(good_type), "fingerprint": fingerprint, "reason": reason}
    return RevocationRequest(keys._sign("Revocation", fields, domain, now=now))


def sign_batch_registration(
    keys: CreatorKeys,
    domain: Domain,
    batch: PreparedBatch,
    *,
    good_type: GoodType,
    product: str,
    use: Use,
    royalty_policy: RoyaltyPolicy,
    metadata: Mapping[str, Any],
    now: int,
    new_product: bool = False,
) -> RegistrationRequest:
    fields = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        **_product_terms(product, use, royalty_policy, metadata),
    }
    signed = keys._sign("BatchRegistration", fields, domain, now=now)
    return RegistrationRequest(signed, royalty_policy, dict(metadata), new_product)


def sign_batch_revocation(
    keys: CreatorKeys,
    domain: Domain,
    batch: PreparedBatch,
    *,
    good_type: GoodType,
    reason: str,
    now: int,
) -> RevocationRequest:
    fields = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        "reason": reason,
    }
    return RevocationRequest(keys._sign("BatchRevocation", fields, domain, now=now))
