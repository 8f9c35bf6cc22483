"""The creator's side: keys on the creator's machine, fingerprints made locally, messages signed.

Codes never leave this module's caller: a bulk file is read line by line, each code is
normalised and HMAC'd under the creator's code key, and only fingerprints (spooled to a
temporary file, 32 bytes each) and one signature over their items root go to a registry.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from registry.codekeys import key_commitment, key_id
from registry.codesfile import PreparedBatch
from registry.eip712 import Domain
from registry.errors import ConfigurationError, InvalidInput
from registry.fingerprints import CODE_KEY_SIZE, GoodType, Use
from registry.keyring import create_account, load_account, read_secret, write_secret
from registry.requests import RegistrationRequest, RevocationRequest, metadata_hash
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.signatures import sign
from registry.signed import SignedMessage

ACCOUNT_FILE = "creator.key"
CODE_KEY_FILE = "code.key"
#: A code key made by ``tracemark keys rotate``: ``code-<kid>.key``, next to the first one.
ROTATED_CODE_KEY_GLOB = "code-*.key"
#: The kid of the current code key, once the creator has rotated (public: a kid is not
#: secret); without it the current key is ``code.key``.
CURRENT_CODE_KEY_FILE = "code.current"
#: A signed message is valid this long by default: long enough for a 10^6-code upload.
DEFAULT_VALIDITY_SECONDS = 3_600


@dataclass(frozen=True)
class CreatorKeys:
    """A creator's account (signs) and code key (fingerprints codes), from a keys directory."""

    account: LocalAccount
    #: The current code key: what new codes are fingerprinted and registered under.
    code_key: bytes | None
    #: Every code key in the keys directory (the current one too), by kid: older keys are
    #: kept, so that codes made under them can still be fingerprinted and retired.
    code_keys: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @classmethod
    def create(cls, keys_dir: Path) -> CreatorKeys:
        account = create_account(keys_dir / ACCOUNT_FILE)
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        write_secret(keys_dir / CODE_KEY_FILE, code_key.hex().encode() + b"\n")
        return cls(account, code_key, {key_id(key_commitment(code_key)): code_key})

    @classmethod
    def load(cls, keys_dir: Path) -> CreatorKeys:
        account_path = keys_dir / ACCOUNT_FILE
        if not account_path.exists():
            raise ConfigurationError(f"no creator key in {keys_dir}; run: tracemark keys new")
        found: dict[str, bytes] = {}
        first = None
        paths = sorted(keys_dir.glob(ROTATED_CODE_KEY_GLOB))
        if (keys_dir / CODE_KEY_FILE).exists():
            paths.insert(0, keys_dir / CODE_KEY_FILE)
        for path in paths:
            key = _read_code_key(path)
            kid = key_id(key_commitment(key))
            if path.name not in (CODE_KEY_FILE, f"code-{kid}.key"):
                raise ConfigurationError(f"{path} holds the code key {kid}, not the one named")
            found[kid] = key
            first = key if path.name == CODE_KEY_FILE else first
        code_key = first
        current_path = keys_dir / CURRENT_CODE_KEY_FILE
        if current_path.exists():
            kid = current_path.read_text().strip()
            if kid not in found:
                raise ConfigurationError(f"{current_path} names {kid!r}: no such code key here")
            code_key = found[kid]
        return cls(load_account(account_path), code_key, found)

    @staticmethod
    def rotate_code_key(keys_dir: Path) -> str:
        """Make a new code key, ``code-<kid>.key``, and make it the current one; the older
        files are kept. Returns its kid."""
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        kid = key_id(key_commitment(code_key))
        write_secret(keys_dir / f"code-{kid}.key", code_key.hex().encode() + b"\n")
        # Atomic: a crash leaves the old current key or the new one, never half a name.
        staging = keys_dir / (CURRENT_CODE_KEY_FILE + ".tmp")
        staging.write_text(kid + "\n")
        os.replace(staging, keys_dir / CURRENT_CODE_KEY_FILE)
        return kid

    @property
    def current_kid(self) -> str | None:
        return None if self.code_key is None else key_id(key_commitment(self.code_key))

    def require_code_key(self) -> bytes:
        if self.code_key is None:
            raise ConfigurationError("this keys directory has no code key; run: tracemark keys new")
        return self.code_key

    def commitment_of(self, kid: str) -> bytes:
        """The commitment of a code key named by its kid (a local key file), or given whole
        as 0x and 64 hex digits (a key whose file is gone)."""
        text = kid.strip().lower()
        if text.startswith("0x") and len(text) == 66:
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                pass
        elif text in self.code_keys:
            return key_commitment(self.code_keys[text])
        raise InvalidInput(
            f"no code key {kid!r} in this keys directory; give its kid (tracemark keys show) "
            "or its whole commitment (0x and 64 hex digits)"
        )

    def _sign(self, primary_type: str, message: dict[str, Any], domain: Domain) -> SignedMessage:
        signature = sign(primary_type, message, domain, bytes(self.account.key))
        return SignedMessage(primary_type, message, signature, self.address)


def _read_code_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(read_secret(path).decode().strip())
    except ValueError:
        key = b""
    if len(key) != CODE_KEY_SIZE:
        raise ConfigurationError(f"{path} is not a code key ({CODE_KEY_SIZE} bytes as hex)")
    return key


def fresh_nonce() -> int:
    """A random 63-bit nonce: no counter to keep in sync between a creator's machines."""
    return secrets.randbits(63)


def sign_enrollment(keys: CreatorKeys, domain: Domain, *, now: int) -> SignedMessage:
    message = {
        "keyCommitment": key_commitment(keys.require_code_key()),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return keys._sign("CodeKeyEnrollment", message, domain)


def sign_retirement(
    keys: CreatorKeys, domain: Domain, *, key_commitment: bytes, now: int
) -> SignedMessage:
    message = {
        "keyCommitment": key_commitment,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return keys._sign("CodeKeyRetirement", message, domain)


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
    message = {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(royalty_policy),
        "metadata": metadata_hash(metadata),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RegistrationRequest(
        keys._sign("Registration", message, domain), royalty_policy, dict(metadata), new_product
    )


def sign_revocation(
    keys: CreatorKeys,
    domain: Domain,
    *,
    good_type: GoodType,
    fingerprint: bytes,
    reason: str,
    now: int,
) -> RevocationRequest:
    message = {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        "reason": reason,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RevocationRequest(keys._sign("Revocation", message, domain))


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
    message = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(royalty_policy),
        "metadata": metadata_hash(metadata),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RegistrationRequest(
        keys._sign("BatchRegistration", message, domain),
        royalty_policy,
        dict(metadata),
        new_product,
    )


def sign_batch_revocation(
    keys: CreatorKeys,
    domain: Domain,
    batch: PreparedBatch,
    *,
    good_type: GoodType,
    reason: str,
    now: int,
) -> RevocationRequest:
    message = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        "reason": reason,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RevocationRequest(keys._sign("BatchRevocation", message, domain))
