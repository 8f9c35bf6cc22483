"""Real-name attestations in storage: logging one (an ATTESTATION entry, kind 9) with its row,
and reading a seller's current level.

A platform, authenticated by its API key, states the level of one of its own seller accounts;
the registry attests that statement as it attests a TRANSFER (actor = the registry's key,
the platform in the payload), logs it at once (the answer names its leaf, and a proof of it
can be built straight away) and keeps a row for the fast read. The platform gives the
account's reference; the registry keeps and logs only its keyed hash (``registry.parties``).

Supersession: a seller's current level is its newest attestation, whatever its level; a
platform withdraws a level by attesting ``none``. Every attestation stays in the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select

from registry import log
from registry.attestations import (
    ATTESTATION_RECORD,
    AttestationPayload,
    Level,
    attestation_subject,
)
from registry.db import read_transaction, write_transaction
from registry.eip712 import address_bytes
from registry.errors import NotFound
from registry.leaf import NO_GOOD, EntryKind
from registry.models import RealNameAttestationRow
from registry.parties import check_platform_id
from registry.records import checksum, log_registry_record_at_once

if TYPE_CHECKING:
    from registry.service import Registry

attestations_t: Table = RealNameAttestationRow.__table__  # type: ignore[attr-defined]


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
        )


def attest(registry: Registry, *, platform: str, reference: str, level: Level) -> Attestation:
    """Log ``platform``'s attestation that its account ``reference`` is verified to
    ``level``: the entry sequenced and a head published in one transaction with the row."""
    check_platform_id(platform)
    seller_ref = registry.reference_hash(platform, reference)
    with write_transaction(registry.engine) as conn:
        # Serialises the registry's nonce sequence and the log (as a TRANSFER does).
        log.lock_log(conn)
        account = registry._signing_account(conn)
        now = registry.clock()
        payload = AttestationPayload(
            platform=platform,
            seller_ref=seller_ref,
            level=level,
            attested_at=now,
            registry=checksum(address_bytes(account.address)),
            domain=registry.domain,
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
            )
            .returning(attestations_t.c.id)
        ).scalar_one()
    return Attestation(
        int(row_id), platform, seller_ref, level, now, logged.entry_id, logged.leaf_index
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
    "Attestation",
    "attest",
    "attestation",
    "attestation_payload",
    "attestations_t",
    "current_attestation",
    "current_levels",
    "read_attestation",
    "read_current",
]
