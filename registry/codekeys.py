"""Code keys: a creator enrols the key its code fingerprints are made with; we keep it sealed.

At rest a code key is AES-256-GCM under the master key, with the creator's address as
associated data, so a sealed key copied onto another creator's row does not open.

A creator may rotate: enrol a new key (its *current* key from then on) while codes registered
under the older ones keep verifying, since a code lookup tries every live key, newest first.
A signed ``CodeKeyRetirement`` retires one: its sealed copy is destroyed and it is no longer
tried, while the goods registered under it keep their entries and verify by fingerprint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Select, Table, select, update

from registry.codekeyring import key_commitment, key_id
from registry.eip712 import Domain
from registry.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from registry.fingerprints import CODE_KEY_SIZE
from registry.models import CodeKey
from registry.records import checksum, insert_record
from registry.signed import SignedMessage, record_payload

code_keys_t: Table = CodeKey.__table__  # type: ignore[attr-defined]

_AAD_PREFIX = b"tracemark/code-key/v1\x00"
_NONCE_SIZE = 12

MAX_LIVE_CODE_KEYS: Final = 8
"""Live (unretired) code keys a creator may hold. Every live key is one more HMAC per code
lookup and one more candidate in its query: without a cap a creator could make each lookup
for its codes (or a prober's lookups naming it) arbitrarily expensive."""


def seal(master_key: bytes, creator: bytes, code_key: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + AESGCM(master_key).encrypt(nonce, code_key, _AAD_PREFIX + creator)


def unseal(master_key: bytes, creator: bytes, sealed: bytes) -> bytes:
    try:
        return AESGCM(master_key).decrypt(
            sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], _AAD_PREFIX + creator
        )
    except InvalidTag as exc:
        raise ConfigurationError(
            f"the code key of {checksum(creator)} does not open under this master key"
        ) from exc


@dataclass(frozen=True)
class CodeKeyResult:
    """What an enrolment or a retirement did to one of a creator's code keys."""

    creator: str
    key_commitment: bytes
    #: "enrolled", or "already-enrolled" for a repeat of the same key; "retired", or
    #: "already-retired" for a key retired before
    status: str

    @property
    def kid(self) -> str:
        return key_id(self.key_commitment)

    def as_dict(self) -> dict[str, Any]:
        """The result as the API answers it (``CodeKeyOut``, ``CodeKeyRetireOut``)."""
        return {
            "creator": self.creator,
            "key_commitment": "0x" + self.key_commitment.hex(),
            "status": self.status,
            "kid": self.kid,
        }


def enroll_code_key(
    conn: Connection,
    signed: SignedMessage,
    code_key: bytes,
    domain: Domain,
    master_key: bytes,
    *,
    now: int,
) -> CodeKeyResult:
    """Store a creator's code key, sealed, after checking the signed commitment to it."""
    signed.verify(domain, now=now)
    if len(code_key) != CODE_KEY_SIZE:
        raise InvalidInput(f"a code key is {CODE_KEY_SIZE} bytes")
    commitment = key_commitment(code_key)
    if commitment != signed.message["keyCommitment"]:
        raise InvalidInput("keyCommitment is not the SHA-256 of the code key sent")
    creator = signed.signer_bytes
    # FOR UPDATE (PostgreSQL): two enrolments of one creator take turns, so the cap holds.
    rows = conn.execute(
        select(code_keys_t.c.key_commitment, code_keys_t.c.retired_at)
        .where(code_keys_t.c.creator == creator)
        .with_for_update()
    ).all()
    for existing, retired_at in rows:
        if bytes(existing) == commitment:
            if retired_at is not None:
                raise Conflict(
                    f"code key {key_id(commitment)} of {signed.signer} was retired; "
                    "a retired key is never enrolled again: make a new one"
                )
            return CodeKeyResult(signed.signer, commitment, "already-enrolled")
    if sum(1 for _, retired_at in rows if retired_at is None) >= MAX_LIVE_CODE_KEYS:
        raise Conflict(
            f"{signed.signer} holds {MAX_LIVE_CODE_KEYS} live code keys, the most allowed; "
            "retire one before enrolling another"
        )
    record_id, _ = insert_record(conn, signed, record_payload(signed, domain), now=now)
    conn.execute(
        code_keys_t.insert().values(
            creator=creator,
            key_commitment=commitment,
            sealed_key=seal(master_key, creator, code_key),
            record_id=record_id,
            created_at=datetime.fromtimestamp(now, UTC),
        )
    )
    return CodeKeyResult(signed.signer, commitment, "enrolled")


def retire_code_key(
    conn: Connection, signed: SignedMessage, domain: Domain, *, now: int
) -> CodeKeyResult:
    """Retire one of the signer's code keys (a signed ``CodeKeyRetirement``): its sealed copy
    is destroyed and code lookups stop trying it; its goods and their entries are untouched.

    The record is stored (its nonce consumed) before anything else: a replay of the same
    signed retirement is refused, while a fresh retirement of a retired key is idempotent.
    """
    signed.verify(domain, now=now)
    creator = signed.signer_bytes
    commitment = bytes(signed.message["keyCommitment"])
    where = (code_keys_t.c.creator == creator) & (code_keys_t.c.key_commitment == commitment)
    retired_at = conn.execute(
        select(code_keys_t.c.retired_at).where(where).with_for_update()
    ).one_or_none()
    if retired_at is None:
        raise NotFound(f"{signed.signer} has no code key {key_id(commitment)}")
    insert_record(conn, signed, record_payload(signed, domain), now=now)
    if retired_at[0] is not None:
        return CodeKeyResult(signed.signer, commitment, "already-retired")
    conn.execute(
        update(code_keys_t)
        .where(where)
        # NOTE: the sealed copy is overwritten, not kept "just in case": a leaked key must
        # stop being usable through the registry, and the master key opens every sealed one.
        .values(sealed_key=b"", retired_at=datetime.fromtimestamp(now, UTC))
    )
    return CodeKeyResult(signed.signer, commitment, "retired")


@dataclass(frozen=True)
class CodeKeyInfo:
    """One of a creator's code keys, as the creator may list them (never the key)."""

    key_commitment: bytes
    created_at: int
    retired_at: int | None

    @property
    def kid(self) -> str:
        return key_id(self.key_commitment)


def _newest_first(creator: bytes) -> Select[Any]:
    # The record id breaks ties between two keys enrolled in the same second.
    return (
        select(
            code_keys_t.c.key_commitment,
            code_keys_t.c.sealed_key,
            code_keys_t.c.created_at,
            code_keys_t.c.retired_at,
        )
        .where(code_keys_t.c.creator == creator)
        .order_by(code_keys_t.c.created_at.desc(), code_keys_t.c.record_id.desc())
    )


def code_keys_info(conn: Connection, creator: bytes) -> list[CodeKeyInfo]:
    """Every code key the creator enrolled, retired ones included, newest first."""
    rows = conn.execute(_newest_first(creator)).all()
    return [
        CodeKeyInfo(
            bytes(commitment),
            _seconds(created_at),
            None if retired_at is None else _seconds(retired_at),
        )
        for commitment, _, created_at, retired_at in rows
    ]


def _seconds(moment: datetime) -> int:
    # SQLite hands back naive datetimes; they were stored as UTC.
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def live_code_keys(conn: Connection, creator: bytes, master_key: bytes) -> list[bytes]:
    """The creator's live code keys, unsealed, newest (its current key) first: what a code
    lookup tries. Empty when it has none."""
    rows = conn.execute(_newest_first(creator).where(code_keys_t.c.retired_at.is_(None))).all()
    return [unseal(master_key, creator, bytes(sealed)) for _, sealed, _, _ in rows]


def code_key_of(conn: Connection, creator: bytes, master_key: bytes) -> bytes:
    """The creator's current code key (its newest live one), unsealed."""
    keys = live_code_keys(conn, creator, master_key)
    if not keys:
        raise NotFound(f"{checksum(creator)} has not enrolled a code key")
    return keys[0]
