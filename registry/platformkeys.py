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

Rotation: a platform's newest key is the one in force; enrolling another supersedes it. A
platform's own rotation needs the consent of its key in force (its EIP-712
``PlatformKeyRotation`` over the new key), so whoever holds only the platform's API key
cannot replace its attestation key; the operator may still enroll a key (a platform that lost
its key needs a way back), and the log says the operator did. An attestation logged under an
older key stays valid: its payload carries the key that was in force.

Every enrollment is a PLATFORM_KEY entry (kind 10, ``registry.platformkeypayload``) written
in the transaction of its row: the log, not this table, says which keys were a platform's and
who enrolled them, and an attestation's offline proof carries its key's entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, select

from registry import log
from registry.attestations import (
    PLATFORM_KEY_ENROLLMENT,
    PLATFORM_KEY_ROTATION,
    PlatformSignature,
    enroll_message,
    platform_key_subject,
    rotation_message,
)
from registry.db import read_transaction, write_transaction
from registry.eip712 import ZERO_ADDRESS, address_bytes, checksum_address, parse_address
from registry.errors import Conflict, InvalidInput, RotationUnconsented, WrongSigner
from registry.leaf import NO_GOOD, EntryKind
from registry.models import PlatformKeyRow
from registry.parties import check_platform_id
from registry.platformkeypayload import ENROLLERS, PLATFORM_KEY_RECORD, PlatformKeyPayload
from registry.records import checksum, log_registry_record_at_once
from registry.signatures import Signature, check_deadline, verify_signature

if TYPE_CHECKING:
    from registry.service import Registry

platform_keys_t: Table = PlatformKeyRow.__table__  # type: ignore[attr-defined]


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
    registry: Registry,
    platform: str,
    address: str,
    *,
    by: str = "operator",
    possession: PlatformSignature | None = None,
    consent_signature: bytes | None = None,
) -> PlatformKey:
    """Enroll ``address`` as ``platform``'s attestation key, superseding its current one: a
    PLATFORM_KEY entry (kind 10) logged at once, a head published, and the row, in one
    transaction. ``by`` the operator: no signature of the platform's, and the entry says so.
    ``by`` the platform: ``possession`` (checked by ``enroll_own_key``) and, when a key is in
    force, ``consent_signature``, that key's ``PlatformKeyRotation`` signature over this one
    with the possession's nonce and deadline (``RotationUnconsented`` without it,
    ``WrongSigner`` by another key). ``Conflict`` for a key enrolled before."""
    check_platform_id(platform)
    address = parse_address(address, what="platform key")
    if address == ZERO_ADDRESS:
        raise InvalidInput("the zero address is never a platform's key")
    if by not in ENROLLERS:
        raise InvalidInput(f"a key is enrolled by one of {', '.join(ENROLLERS)}")
    with write_transaction(registry.engine) as conn:
        # Serialises the registry's nonce sequence and the log; and, under it, the key in
        # force cannot change between the consent's check and the new key's entry.
        log.lock_log(conn)
        c = platform_keys_t.c
        known = select(c.id).where(c.platform == platform, c.address == address_bytes(address))
        if conn.execute(known.limit(1)).first() is not None:
            raise Conflict(f"{address} was already enrolled for {platform}: enroll a new key")
        current = key_in_force(conn, platform)
        superseded = None if current is None else current.address
        consent = None
        if by == "platform":
            if possession is None:
                raise InvalidInput("a platform enrolls a key with the key's own signature")
            consent = _consent(registry, platform, possession, superseded, consent_signature)
        account = registry._signing_account(conn)
        now = registry.clock()
        payload = PlatformKeyPayload(
            platform=platform,
            key=address,
            enrolled_by=by,
            enrolled_at=now,
            supersedes=superseded,
            registry=checksum(address_bytes(account.address)),
            domain=registry.domain,
            possession=possession if by == "platform" else None,
            consent=consent if by == "platform" else None,
        )
        log_registry_record_at_once(
            conn,
            payload,
            primary_type=PLATFORM_KEY_RECORD,
            kind=EntryKind.PLATFORM_KEY,
            good_type=NO_GOOD,
            fingerprint=platform_key_subject(platform),
            account=account,
            domain=registry.domain,
            now=now,
            state_map=registry._committing,
            checkpoint_signer=registry.checkpoint_signer,
        )
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


def _consent(
    registry: Registry,
    platform: str,
    possession: PlatformSignature,
    superseded: str | None,
    signature: bytes | None,
) -> PlatformSignature | None:
    """The consent of ``platform``'s key in force (``superseded``, read under the log's lock
    by the caller) to its successor, checked; None for a first key, which has none to ask."""
    address = possession.signer
    if superseded is None:
        if signature is not None:
            raise InvalidInput(f"platform {platform} has no key in force to consent to a rotation")
        return None
    if signature is None:
        raise RotationUnconsented(
            f"platform {platform}'s key in force {superseded} did not consent to {address}: "
            "have it sign PlatformKeyRotation, or ask the operator to enroll the key"
        )
    nonce, deadline = possession.nonce, possession.deadline
    message = rotation_message(platform, superseded, address, nonce, deadline)
    try:
        verify_signature(PLATFORM_KEY_ROTATION, message, registry.domain, signature, superseded)
    except WrongSigner:
        raise WrongSigner(
            f"the rotation to {address} was not signed by {platform}'s key in force {superseded}"
        ) from None
    return PlatformSignature(superseded, nonce, deadline, Signature.parse(signature).to_bytes())


def enroll_own_key(
    registry: Registry,
    *,
    platform: str,
    address: str,
    nonce: int,
    deadline: int,
    signature: bytes,
    consent_signature: bytes | None = None,
) -> PlatformKey:
    """``platform`` (authenticated by its API key) enrolls ``address``, which proves it holds
    the key by signing ``PlatformKeyEnrollment`` under the registry's domain before
    ``deadline``; when a key is in force, that key consents with ``consent_signature``
    (``PlatformKeyRotation`` over the old and the new key, the same nonce and deadline).
    ``WrongSigner``, ``ExpiredDeadline``, ``RotationUnconsented``, ``Conflict`` for a key
    enrolled before."""
    check_platform_id(platform)
    address = parse_address(address, what="platform key")
    check_deadline(deadline, registry.clock())
    message = enroll_message(platform, address, nonce, deadline)
    verify_signature(PLATFORM_KEY_ENROLLMENT, message, registry.domain, signature, address)
    possession = PlatformSignature(address, nonce, deadline, Signature.parse(signature).to_bytes())
    # The consent's signer is the key in force: read, and the consent checked, under the lock.
    return enroll_platform_key(
        registry,
        platform,
        address,
        by="platform",
        possession=possession,
        consent_signature=consent_signature,
    )


def key_in_force(conn: Connection, platform: str) -> PlatformKey | None:
    """``platform``'s newest enrolled key (it supersedes every earlier one), or None."""
    c = platform_keys_t.c
    row = conn.execute(
        select(platform_keys_t).where(c.platform == platform).order_by(c.id.desc()).limit(1)
    ).first()
    return None if row is None else PlatformKey.from_row(row)


@dataclass(frozen=True, slots=True)
class LoggedEnrollment:
    """A key's PLATFORM_KEY entry, as the log holds it: what an attestation's proof carries."""

    payload: PlatformKeyPayload
    leaf_index: int
    timestamp: int


def logged_enrollment(engine: Engine, platform: str, address: str) -> LoggedEnrollment | None:
    """The PLATFORM_KEY entry that enrolled ``address`` for ``platform`` (sequenced), or None:
    a key enrolled before enrollments were logged has none. Found by the platform's subject
    word (one index lookup), then by the key its payload names."""
    from registry.records import records_t

    address = parse_address(address, what="platform key")
    e = log.entries_t.c
    query = (
        select(e.leaf_index, e.timestamp, records_t.c.payload)
        .select_from(log.entries_t.join(records_t, records_t.c.id == e.record_id))
        .where(
            e.good_type == NO_GOOD,
            e.fingerprint == platform_key_subject(platform),
            e.kind == int(EntryKind.PLATFORM_KEY),
            e.leaf_index.is_not(None),
        )
        .order_by(e.leaf_index)
    )
    with read_transaction(engine) as conn:
        rows = conn.execute(query).all()
    for leaf_index, timestamp, document in rows:
        payload = PlatformKeyPayload.from_json(document)
        if payload.platform == platform and payload.key == address:
            return LoggedEnrollment(payload, int(leaf_index), int(timestamp))
    return None


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
    "LoggedEnrollment",
    "PlatformKey",
    "enroll_own_key",
    "enroll_platform_key",
    "key_in_force",
    "logged_enrollment",
    "platform_keys",
    "platform_keys_t",
]
