"""Real-name attestations in storage: logging one (an ATTESTATION entry, kind 9) with its row,
and reading a seller's current level.

A platform, authenticated by its API key, states the level of one of its own seller accounts
and signs that statement with its enrolled attestation key (``registry.platformkeys``, EIP-712
``PlatformAttestation``); the registry checks the signature (the key in force, the deadline,
the nonce once per key), attests it (actor = the registry's key, the platform's signature and
key in the payload, ``tracemark-attestation/v2``), logs it at once (the answer names its
leaf, and a proof of it can be built straight away) and keeps a row for the fast read. The
platform gives the account's reference; the registry keeps and logs only its keyed hash
(``registry.parties``).

Supersession: a seller's current level is its newest attestation, whatever its level; a
platform withdraws a level by attesting ``none``. Every attestation stays in the log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, Table, select

from registry import log
from registry.attestations import (
    ATTESTATION_RECORD,
    MAX_NONCE,
    PLATFORM_ATTESTATION,
    AttestationPayload,
    Level,
    PlatformSignature,
    attestation_subject,
    platform_message,
)
from registry.db import read_transaction, write_transaction
from registry.eip712 import address_bytes, typed_data
from registry.errors import NonceReused, NoPlatformKey, NotFound, WrongSigner
from registry.leaf import NO_GOOD, EntryKind
from registry.models import RealNameAttestationRow
from registry.parties import check_platform_id
from registry.platformkeys import key_in_force
from registry.records import checksum, log_registry_record_at_once
from registry.signatures import Signature, check_deadline, verify_signature

if TYPE_CHECKING:
    from registry.service import Registry

attestations_t: Table = RealNameAttestationRow.__table__  # type: ignore[attr-defined]

SIGNING_WINDOW: Final = 600
"""Seconds a proposed statement (``statement_to_sign``) may wait for its signature."""


@dataclass(frozen=True, slots=True)
class Attestation:
    """One logged attestation (a ``realname_attestations`` row)."""

    id: int
    platform: str
    seller_ref: bytes
    level: Level
    attested_at: int
    entry_id: int
    leaf_index: int
    #: The platform key that signed it; None for one logged before platform keys (0033).
    signer: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Attestation:
        return cls(
            id=int(row.id),
            platform=str(row.platform),
            seller_ref=bytes(row.seller_ref),
            level=Level(int(row.level)),
            attested_at=int(row.attested_at),
            entry_id=int(row.entry_id),
            leaf_index=int(row.leaf_index),
            signer=None if row.signer is None else checksum(bytes(row.signer)),
        )


def statement_to_sign(
    registry: Registry, *, platform: str, reference: str, level: Level
) -> dict[str, object]:
    """The EIP-712 typed data (``eth_signTypedData_v4``) of ``platform``'s attestation of its
    account ``reference`` at ``level``, with a fresh random nonce and a deadline
    ``SIGNING_WINDOW`` seconds away: what the platform's key signs for ``attest``."""
    check_platform_id(platform)
    message = platform_message(
        platform,
        registry.reference_hash(platform, reference),
        level,
        secrets.randbelow(MAX_NONCE + 1),
        registry.clock() + SIGNING_WINDOW,
    )
    return typed_data(PLATFORM_ATTESTATION, message, registry.domain)


def _check_platform_signature(
    conn: Connection, message: dict[str, object], signature: bytes, registry: Registry, now: int
) -> PlatformSignature:
    """The platform's signature of ``message``, checked: by its key in force, before its
    deadline, with a nonce that key never used. ``NoPlatformKey``, ``WrongSigner``,
    ``ExpiredDeadline``, ``NonceReused``, ``MalformedSignature``."""
    platform = str(message["platform"])
    key = key_in_force(conn, platform)
    if key is None:
        raise NoPlatformKey(f"platform {platform} has no attestation key enrolled")
    nonce, deadline = int(str(message["nonce"])), int(str(message["deadline"]))
    check_deadline(deadline, now)
    try:
        verify_signature(PLATFORM_ATTESTATION, message, registry.domain, signature, key.address)
    except WrongSigner:
        raise WrongSigner(
            f"the attestation was not signed by {platform}'s attestation key {key.address} "
            "over this platform, seller and level"
        ) from None
    c = attestations_t.c
    used = conn.execute(
        select(c.id).where(c.signer == address_bytes(key.address), c.nonce == nonce).limit(1)
    ).first()
    if used is not None:
        raise NonceReused(f"nonce {nonce} of {key.address} was already used; sign again")
    return PlatformSignature(key.address, nonce, deadline, Signature.parse(signature).to_bytes())


def attest(
    registry: Registry,
    *,
    platform: str,
    reference: str,
    level: Level,
    nonce: int,
    deadline: int,
    signature: bytes,
) -> Attestation:
    """Log ``platform``'s attestation, signed by its attestation key (``PlatformAttestation``
    over its account ``reference``'s keyed hash, ``level``, ``nonce`` and ``deadline``), that
    ``reference`` is verified to ``level``: checked, the entry sequenced and a head published
    in one transaction with the row."""
    check_platform_id(platform)
    seller_ref = registry.reference_hash(platform, reference)
    message = platform_message(platform, seller_ref, level, nonce, deadline)
    with write_transaction(registry.engine) as conn:
        # Serialises the registry's nonce sequence and the log (as a TRANSFER does).
        log.lock_log(conn)
        account = registry._signing_account(conn)
        now = registry.clock()
        # Under the log's lock: a key rotation or a same-nonce twin cannot slip in between.
        signed = _check_platform_signature(conn, message, signature, registry, now)
        payload = AttestationPayload(
            platform=platform,
            seller_ref=seller_ref,
            level=level,
            attested_at=now,
            registry=checksum(address_bytes(account.address)),
            domain=registry.domain,
            platform_signature=signed,
        )
        logged = log_registry_record_at_once(
            conn,
            payload,
            primary_type=ATTESTATION_RECORD,
            kind=EntryKind.ATTESTATION,
            good_type=NO_GOOD,
            fingerprint=attestation_subject(platform, seller_ref),
            account=account,
            domain=registry.domain,
            now=now,
            state_map=registry._committing,
            checkpoint_signer=registry.checkpoint_signer,
        )
        row_id = conn.execute(
            attestations_t.insert()
            .values(
                platform=platform,
                seller_ref=seller_ref,
                level=int(level),
                attested_at=now,
                entry_id=logged.entry_id,
                leaf_index=logged.leaf_index,
                signer=address_bytes(signed.signer),
                nonce=signed.nonce,
            )
            .returning(attestations_t.c.id)
        ).scalar_one()
    return Attestation(
        int(row_id),
        platform,
        seller_ref,
        level,
        now,
        logged.entry_id,
        logged.leaf_index,
        signed.signer,
    )


def attestation(conn: Connection, attestation_id: int) -> Attestation:
    """The attestation of id ``attestation_id``; ``NotFound``."""
    row = conn.execute(select(attestations_t).where(attestations_t.c.id == attestation_id)).first()
    if row is None:
        raise NotFound(f"no attestation {attestation_id}")
    return Attestation.from_row(row)


def current_attestation(conn: Connection, platform: str, seller_ref: bytes) -> Attestation | None:
    """The seller's newest attestation (it supersedes every earlier one), or None."""
    c = attestations_t.c
    row = conn.execute(
        select(attestations_t)
        .where(c.platform == platform, c.seller_ref == seller_ref)
        .order_by(c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else Attestation.from_row(row)


def current_levels(conn: Connection) -> dict[tuple[str, bytes], tuple[Level, int]]:
    """Every attested seller's current (level, attested_at), by (platform, seller_ref): what
    the ``unattested-seller`` rule reads in one pass."""
    c = attestations_t.c
    levels: dict[tuple[str, bytes], tuple[Level, int]] = {}
    for row in conn.execute(
        select(c.platform, c.seller_ref, c.level, c.attested_at).order_by(c.id)
    ):
        levels[(str(row.platform), bytes(row.seller_ref))] = (
            Level(int(row.level)),
            int(row.attested_at),
        )
    return levels


def read_attestation(registry: Registry, attestation_id: int) -> Attestation:
    """``attestation`` in a read transaction of its own."""
    with read_transaction(registry.engine) as conn:
        return attestation(conn, attestation_id)


def read_current(registry: Registry, platform: str, seller_ref: bytes) -> Attestation | None:
    """``current_attestation`` in a read transaction of its own."""
    with read_transaction(registry.engine) as conn:
        return current_attestation(conn, platform, seller_ref)


def attestation_payload(registry: Registry, entry_id: int) -> AttestationPayload:
    """The logged payload of an attestation's entry (what its leaf's payload hash covers)."""
    from registry.records import records_t

    with read_transaction(registry.engine) as conn:
        document = conn.execute(
            select(records_t.c.payload)
            .select_from(log.entries_t.join(records_t, records_t.c.id == log.entries_t.c.record_id))
            .where(log.entries_t.c.id == entry_id)
        ).scalar_one()
    return AttestationPayload.from_json(document)


__all__ = [
    "SIGNING_WINDOW",
    "Attestation",
    "attest",
    "attestation",
    "attestation_payload",
    "attestations_t",
    "current_attestation",
    "current_levels",
    "read_attestation",
    "read_current",
    "statement_to_sign",
]
