"""Test helpers for platforms' attestation keys (issue 18 item 4): a platform's signing key,
enrolled, and an attestation signed with it as a platform would."""

from __future__ import annotations

from typing import Final

from eth_account import Account

from registry.attestations import PLATFORM_ATTESTATION, Level, platform_message
from registry.attestationstore import Attestation, attest
from registry.db import read_transaction
from registry.platformkeys import enroll_platform_key, key_in_force
from registry.service import Registry
from registry.signatures import sign

#: Test keys only (never used for anything real): the platforms' attestation keys.
PLATFORM_KEYS: Final = {
    "cardhub": bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"),
    "keyshop": bytes.fromhex("8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"),
}


def platform_address(platform: str) -> str:
    return str(Account.from_key(PLATFORM_KEYS[platform]).address)


def enroll(registry: Registry, platform: str, key: bytes | None = None) -> str:
    """Enroll ``key`` (default: the platform's test key) for ``platform``; its address."""
    address = str(Account.from_key(key or PLATFORM_KEYS[platform]).address)
    enroll_platform_key(registry, platform, address)
    return address


def sign_attestation(
    registry: Registry,
    platform: str,
    reference: str,
    level: Level,
    nonce: int,
    deadline: int,
    key: bytes | None = None,
) -> bytes:
    message = platform_message(
        platform, registry.reference_hash(platform, reference), level, nonce, deadline
    )
    return sign(PLATFORM_ATTESTATION, message, registry.domain, key or PLATFORM_KEYS[platform])


_nonces = iter(range(1, 2**62))


def signed_attest(
    registry: Registry, *, platform: str, reference: str, level: Level
) -> Attestation:
    """``attest`` as a platform does it: signed by its test key (enrolled first if none is)."""
    with read_transaction(registry.engine) as conn:
        enrolled = key_in_force(conn, platform)
    if enrolled is None:
        enroll(registry, platform)
    nonce, deadline = next(_nonces), registry.clock() + 600
    signature = sign_attestation(registry, platform, reference, level, nonce, deadline)
    return attest(
        registry,
        platform=platform,
        reference=reference,
        level=level,
        nonce=nonce,
        deadline=deadline,
        signature=signature,
    )
