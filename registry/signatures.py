"""secp256k1 signatures over EIP-712 digests: the one accepted form, signing and recovery.

CONSENSUS-CRITICAL: which signatures are accepted (65 bytes, v in {27, 28}, low s) is what
stops a malleable twin of a stored signature from being accepted (THREATS 14).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import coincurve

from registry.eip712 import (
    HEX_DIGITS,
    ZERO_ADDRESS,
    Domain,
    checksum_address,
    digest,
    keccak,
    parse_address,
)
from registry.errors import ExpiredDeadline, InvalidInput, MalformedSignature, WrongSigner

SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""Order of the secp256k1 group (SEC 2 §2.4.1)."""

SECP256K1_HALF_N: Final = SECP256K1_N // 2
"""Largest accepted s (EIP-2, OpenZeppelin ECDSA): a higher s is the malleable twin."""

SIGNATURE_SIZE: Final = 65
"""r (32) || s (32) || v (1), the only signature form accepted (THREATS 15)."""


@dataclass(frozen=True, slots=True)
class Signature:
    """A secp256k1 signature in the one form accepted: v in {27, 28}, 0 < r < n, 0 < s <= n/2.

    Anything else cannot be built (``MalformedSignature``), so a malleable twin of a valid
    signature never reaches recovery (THREATS 14).
    """

    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        for name in ("r", "s", "v"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise MalformedSignature(f"signature {name} must be an integer")
        if self.v in (0, 1):
            raise MalformedSignature("signature v must be 27 or 28; re-encode v = 0 / 1 as 27 / 28")
        if self.v not in (27, 28):
            raise MalformedSignature("signature v must be 27 or 28")
        if not 0 < self.r < SECP256K1_N:
            raise MalformedSignature("signature r is zero or not below the secp256k1 order n")
        if not 0 < self.s < SECP256K1_N:
            raise MalformedSignature("signature s is zero or not below the secp256k1 order n")
        if self.s > SECP256K1_HALF_N:
            # EIP-2: (r, n - s, v ^ 1) verifies too; only the low-s one of the pair is valid.
            raise MalformedSignature(
                "signature s is above n/2 (the malleable high-s twin); send the low-s form"
            )

    @classmethod
    def parse(cls, signature: bytes | str) -> Signature:
        """Parse 65 bytes r || s || v, raw or as 0x-hex."""
        if isinstance(signature, str):
            digits = signature[2:]
            if signature[:2] != "0x" or not set(digits) <= HEX_DIGITS or len(digits) % 2:
                raise MalformedSignature("a signature as text must be 0x and hex digits")
            signature = bytes.fromhex(digits)
        if not isinstance(signature, bytes):
            raise MalformedSignature("a signature must be bytes or 0x-hex text")
        if len(signature) == 64:
            raise MalformedSignature(
                "64-byte compact signatures (EIP-2098) are not accepted; send 65 bytes r||s||v"
            )
        if len(signature) != SIGNATURE_SIZE:
            raise MalformedSignature(
                f"a signature must be 65 bytes r||s||v, got {len(signature)} bytes"
            )
        return cls(
            r=int.from_bytes(signature[:32], "big"),
            s=int.from_bytes(signature[32:64], "big"),
            v=signature[64],
        )

    def to_bytes(self) -> bytes:
        """65 bytes r || s || v."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes((self.v,))

    def to_hex(self) -> str:
        """0x-hex of ``to_bytes``."""
        return "0x" + self.to_bytes().hex()


def recover_signer(digest: bytes, signature: Signature) -> str:
    """The checksummed address whose key made ``signature`` over ``digest``.

    Raises ``WrongSigner`` when no key recovers or the recovery yields the zero address
    (THREATS 16), never a third-party exception.
    """
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise InvalidInput("a digest must be exactly 32 bytes")
    if not isinstance(signature, Signature):
        raise MalformedSignature("signature must be a parsed Signature")
    # libsecp256k1's recoverable form: r || s || recovery id, where v = 27 + recovery id.
    recoverable = signature.to_bytes()[:64] + bytes((signature.v - 27,))
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            recoverable, digest, hasher=None
        )
    except ValueError:
        raise WrongSigner("the signature does not recover to any public key") from None
    # An Ethereum address is the last 20 bytes of keccak256 of the 64-byte public key.
    address = keccak(public_key.format(compressed=False)[1:])[-20:]
    if address == bytes(20):
        raise WrongSigner("the signature recovers to the zero address")
    return checksum_address(address)


def verify_signature(
    primary_type: str,
    message: Mapping[str, object],
    domain: Domain,
    signature: bytes | str,
    claimed_signer: str,
) -> Signature:
    """Check that ``claimed_signer`` signed ``message`` under ``domain``; return the signature.

    1. The signature is 65 bytes, v in {27, 28}, low s (``MalformedSignature``).
    2. The claimed signer is an address and not the zero address (``WrongSigner``).
    3. The message matches its struct type (``InvalidInput``).
    4. The address recovered from the EIP-712 digest equals the claimed signer
       (``WrongSigner``); a signature made under another chain, contract or domain version
       recovers another address and fails here (THREATS 12, 13).

    Deadlines and nonces are the caller's (``check_deadline``, the (signer, nonce) table).
    """
    # 1.
    parsed = Signature.parse(signature)
    # 2.
    signer = parse_address(claimed_signer, what="signer")
    if signer == ZERO_ADDRESS:
        raise WrongSigner("the zero address is never a signer")
    # 3.
    signing_hash = digest(primary_type, message, domain)
    # 4. Both sides are checksummed, so comparing them is comparing the 20 bytes.
    if recover_signer(signing_hash, parsed) != signer:
        raise WrongSigner(
            "the signature was not made by the claimed signer under this domain "
            f"(chain {domain.chain_id}, contract {domain.verifying_contract}, "
            f"version {domain.version})"
        )
    return parsed


def check_deadline(deadline: int, now: int) -> None:
    """Raise ``ExpiredDeadline`` when ``now`` is after ``deadline`` (both Unix seconds).

    A deadline is the last second a signature is valid, as ``block.timestamp <= deadline`` in
    EIP-2612's ``permit``.
    """
    for what, value in (("deadline", deadline), ("now", now)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"{what} must be an integer (Unix seconds)")
    if now > deadline:
        raise ExpiredDeadline(f"the signed deadline {deadline} has passed (now {now})")


def sign(
    primary_type: str, message: Mapping[str, object], domain: Domain, private_key: bytes
) -> bytes:
    """Sign a message: 65 bytes r || s || v with v in {27, 28} and low s, like eth-account.

    libsecp256k1 signs deterministically (RFC 6979) and always returns the low-s form.
    """
    if not isinstance(private_key, bytes) or len(private_key) != 32:
        raise InvalidInput("a private key must be exactly 32 bytes")
    signing_hash = digest(primary_type, message, domain)
    try:
        key = coincurve.PrivateKey(private_key)
    except ValueError:
        raise InvalidInput("a private key must be a secp256k1 scalar in 1..n-1") from None
    recoverable = key.sign_recoverable(signing_hash, hasher=None)
    return recoverable[:64] + bytes((27 + recoverable[64],))


__all__ = [
    "SECP256K1_HALF_N",
    "SECP256K1_N",
    "SIGNATURE_SIZE",
    "Signature",
    "check_deadline",
    "recover_signer",
    "sign",
    "verify_signature",
]
