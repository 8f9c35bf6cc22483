"""Code keys: a creator enrols the key its code fingerprints are made with; we keep it sealed.

At rest a code key is AES-256-GCM under the master key, with the creator's address as
associated data, so a sealed key copied onto another creator's row does not open.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Table, select

from registry.eip712 import Domain
from registry.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from registry.fingerprints import CODE_KEY_SIZE
from registry.models import CodeKey
from registry.records import SignedMessage, checksum, insert_record, record_payload

code_keys_t: Table = CodeKey.__table__  # type: ignore[attr-defined]

_AAD_PREFIX = b"tracemark/code-key/v1\x00"
_NONCE_SIZE = 12


def key_commitment(code_key: bytes) -> bytes:
    """What a ``CodeKeyEnrollment`` signs: SHA-256 of the key, never the key itself."""
    return hashlib.sha256(code_key).digest()


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
class EnrollmentResult:
    creator: str
    key_commitment: bytes
    #: "enrolled", or "already-enrolled" for a repeat of the same key
    status: str


def enroll_code_key(
    conn: Connection,
    signed: SignedMessage,
    code_key: bytes,
    domain: Domain,
    master_key: bytes,
    *,
    now: int,
) -> EnrollmentResult:
    """Store a creator's code key, sealed, after checking the signed commitment to it."""
    signed.verify(domain, now=now)
    if len(code_key) != CODE_KEY_SIZE:
        raise InvalidInput(f"a code key is {CODE_KEY_SIZE} bytes")
    commitment = key_commitment(code_key)
    if commitment != signed.message["keyCommitment"]:
        raise InvalidInput("keyCommitment is not the SHA-256 of the code key sent")
    creator = signed.signer_bytes
    existing = conn.execute(
        select(code_keys_t.c.key_commitment).where(code_keys_t.c.creator == creator)
    ).scalar()
    if existing is not None:
        if bytes(existing) == commitment:
            return EnrollmentResult(signed.signer, commitment, "already-enrolled")
        raise Conflict(
            f"{signed.signer} already enrolled a different code key; "
            "codes registered under it would no longer verify, so it cannot be replaced"
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
    return EnrollmentResult(signed.signer, commitment, "enrolled")


def code_key_of(conn: Connection, creator: bytes, master_key: bytes) -> bytes:
    """The creator's code key, unsealed; for answering a platform that presents a code."""
    sealed = conn.execute(
        select(code_keys_t.c.sealed_key).where(code_keys_t.c.creator == creator)
    ).scalar()
    if sealed is None:
        raise NotFound(f"{checksum(creator)} has not enrolled a code key")
    return unseal(master_key, creator, bytes(sealed))
