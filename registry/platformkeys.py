"""Platforms' attestation keys (issue 18 item 4): the secp256k1 key (an Ethereum address)
whose signature makes a real-name attestation the platform's own statement.

An API key authenticates a platform to the registry; it cannot show a third party anything.
So a platform enrolls an attestation key, and signs each attestation with it (EIP-712
``PlatformAttestation``, ``registry.attestations``): any wallet or HSM can, and the registry's
existing EIP-712 code checks it. The operator enrolls one (``tracemark platform-keys
enroll``), as it creates API keys, or the platform does (``enroll_own_key``: its API key
authorises it, and the key's own EIP-712 signature of ``PlatformKeyEnrollment`` proves the
platform holds it, so nobody enrolls a key it cannot sign with).

A key is enrolled at most once per platform: rotation only moves forward (a superseded key
never returns), which also makes a replayed enrollment a refused one.

Rotation: a platform's newest key is the one in force; enrolling another supersedes it. An
attestation logged under an older key stays valid: its payload carries the key that was in
force, and the registry's signed log commits to that pairing, so an offline verifier checks
the signature against it without this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Table, select

from registry.attestations import PLATFORM_KEY_ENROLLMENT, enroll_message
from registry.db import read_transaction, write_transaction
from registry.eip712 import ZERO_ADDRESS, Domain, address_bytes, checksum_address, parse_address
from registry.errors import Conflict, InvalidInput
from registry.models import PlatformKeyRow
from registry.parties import check_platform_id
from registry.signatures import check_deadline, verify_signature

platform_keys_t: Table = PlatformKeyRow.__table__  # type: ignore[attr-defined]

ENROLLERS: Final = ("operator", "platform")
"""Who may enroll a platform's key: the operator (CLI) or the platform itself."""


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """One enrolled attestation key (a ``platform_keys`` row)."""

    id: int
    platform: str
    address: str
    enrolled_at: int
    enrolled_by: str

    @classmethod
    def from_row(cls, row: Any) -> PlatformKey:
        return cls(
            id=int(row.id),
            platform=str(row.platform),
            address=checksum_address(bytes(row.address)),
            enrolled_at=int(row.enrolled_at),
            enrolled_by=str(row.enrolled_by),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "platform": self.platform,
            "address": self.address,
            "enrolled_at": self.enrolled_at,
            "enrolled_by": self.enrolled_by,
        }


def enroll_platform_key(
    engine: Engine, platform: str, address: str, now: int, *, by: str = "operator"
) -> PlatformKey:
    """Enroll ``address`` as ``platform``'s attestation key, superseding its current one."""
    check_platform_id(platform)
    address = parse_address(address, what="platform key")
    if address == ZERO_ADDRESS:
        raise InvalidInput("the zero address is never a platform's key")
    if by not in ENROLLERS:
        raise InvalidInput(f"a key is enrolled by one of {', '.join(ENROLLERS)}")
    with write_transaction(engine) as conn:
        c = platform_keys_t.c
        known = select(c.id).where(c.platform == platform, c.address == address_bytes(address))
        if conn.execute(known.limit(1)).first() is not None:
            raise Conflict(f"{address} was already enrolled for {platform}: enroll a new key")
        row_id = conn.execute(
            platform_keys_t.insert()
            .values(
                platform=platform,
                address=address_bytes(address),
                enrolled_at=now,
                enrolled_by=by,
            )
            .returning(platform_keys_t.c.id)
        ).scalar_one()
    return PlatformKey(int(row_id), platform, address, now, by)


def enroll_own_key(
    engine: Engine,
    domain: Domain,
    *,
    platform: str,
    address: str,
    nonce: int,
    deadline: int,
    signature: bytes,
    now: int,
) -> PlatformKey:
    """``platform`` (authenticated by its API key) enrolls ``address``, which proves it holds
    the key by signing ``PlatformKeyEnrollment`` under ``domain`` before ``deadline``;
    ``WrongSigner``, ``ExpiredDeadline``, ``Conflict`` for a key enrolled before."""
    check_platform_id(platform)
    address = parse_address(address, what="platform key")
    check_deadline(deadline, now)
    message = enroll_message(platform, address, nonce, deadline)
    verify_signature(PLATFORM_KEY_ENROLLMENT, message, domain, signature, address)
    return enroll_platform_key(engine, platform, address, now, by="platform")


def key_in_force(conn: Connection, platform: str) -> PlatformKey | None:
    """``platform``'s newest enrolled key (it supersedes every earlier one), or None."""
    c = platform_keys_t.c
    row = conn.execute(
        select(platform_keys_t).where(c.platform == platform).order_by(c.id.desc()).limit(1)
    ).first()
    return None if row is None else PlatformKey.from_row(row)


def platform_keys(engine: Engine, platform: str | None = None) -> list[PlatformKey]:
    """Every enrolled key, oldest first (one platform's with ``platform``)."""
    c = platform_keys_t.c
    query = select(platform_keys_t).order_by(c.id)
    if platform is not None:
        query = query.where(c.platform == check_platform_id(platform))
    with read_transaction(engine) as conn:
        return [PlatformKey.from_row(row) for row in conn.execute(query)]


__all__ = [
    "ENROLLERS",
    "PlatformKey",
    "enroll_own_key",
    "enroll_platform_key",
    "key_in_force",
    "platform_keys",
    "platform_keys_t",
]
