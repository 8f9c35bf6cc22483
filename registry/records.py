"""Signed records: storing a creator's signed message, which consumes its nonce (the replay
guard), or a record the registry attests itself with its log entry. The message itself and
its document form live in ``registry.signed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import rfc8785
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, func, select
from sqlalchemy.exc import IntegrityError

from registry import log
from registry.eip712 import Domain, address_bytes, checksum_address
from registry.errors import NonceReused
from registry.leaf import EntryKind, payload_hash
from registry.models import SignedRecord
from registry.signed import SignedMessage

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

records_t: Table = SignedRecord.__table__  # type: ignore[attr-defined]


def checksum(address: bytes) -> str:
    """EIP-55 form of 20 address bytes."""
    return checksum_address(address)


def next_registry_nonce(conn: Connection, registry: bytes) -> int:
    """The next nonce of a record the registry signs itself (a TRANSFER's, a
    CREATOR_IDENTITY's): one sequence per registry address, drawn under the log's lock, which
    the caller holds (two writers would otherwise draw the same nonce)."""
    last = conn.execute(
        select(func.max(records_t.c.nonce)).where(records_t.c.signer == registry)
    ).scalar()
    return int(last or 0) + 1


def insert_registry_record(
    conn: Connection,
    *,
    primary_type: str,
    signer: bytes,
    payload: str,
    digest: bytes,
    now: int,
    nonce: int | None = None,
) -> int:
    """Store a record the registry attests itself (a TRANSFER, a CREATOR_IDENTITY, a key
    hand-over): no deadline, and by default the registry's next nonce (the caller holds the
    log's lock). ``payload`` is the canonical JSON whose SHA-256 is ``digest``. Returns its id."""
    record_id = conn.execute(
        records_t.insert()
        .values(
            primary_type=primary_type,
            signer=signer,
            nonce=next_registry_nonce(conn, signer) if nonce is None else nonce,
            deadline=0,
            payload=payload,
            payload_hash=digest,
            created_at=datetime.fromtimestamp(now, UTC),
        )
        .returning(records_t.c.id)
    ).scalar_one()
    return int(record_id)


class AttestedPayload(Protocol):
    """A payload the registry attests itself, as it is stored: its canonical JSON and that
    JSON's SHA-256 (``registry.payloads.Payload``, and the kit's CREATOR_IDENTITY payload,
    which the registry does not import)."""

    def to_json(self) -> bytes: ...
    def payload_hash(self) -> bytes: ...


def log_registry_record(
    conn: Connection,
    payload: AttestedPayload,
    *,
    primary_type: str,
    kind: EntryKind,
    good_type: int,
    fingerprint: bytes,
    signer: bytes,
    now: int,
    nonce: int | None = None,
) -> tuple[int, bytes]:
    """Store a record the registry attests itself (see ``insert_registry_record``) and queue
    its entry, whose actor is the registry; returns (entry id, payload hash). The caller
    holds the log's lock and owns the transaction: the record and its entry, both or neither.
    """
    digest = payload.payload_hash()
    record_id = insert_registry_record(
        conn,
        primary_type=primary_type,
        signer=signer,
        payload=payload.to_json().decode("utf-8"),
        digest=digest,
        now=now,
        nonce=nonce,
    )
    entry_id = log.queue_entry(
        conn,
        kind=kind,
        good_type=good_type,
        fingerprint=fingerprint,
        actor=signer,
        payload_hash=digest,
        record_id=record_id,
    )
    return entry_id, digest


class LoggedRecord(NamedTuple):
    """A registry record's entry, sequenced: where it stands in the log."""

    entry_id: int
    leaf_index: int
    timestamp: int
    payload_hash: bytes


def log_registry_record_at_once(
    conn: Connection,
    payload: AttestedPayload,
    *,
    primary_type: str,
    kind: EntryKind,
    good_type: int,
    fingerprint: bytes,
    account: LocalAccount,
    domain: Domain,
    now: int,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
) -> LoggedRecord:
    """``log_registry_record`` signed by ``account``, then its entry sequenced at once and the
    head published: a TRANSFER's and a DELIVERY's answer names the entry's leaf, so neither
    waits for the sequencer. The caller holds the log's lock."""
    entry_id, digest = log_registry_record(
        conn,
        payload,
        primary_type=primary_type,
        kind=kind,
        good_type=good_type,
        fingerprint=fingerprint,
        signer=address_bytes(account.address),
        now=now,
    )
    leaf_index, timestamp = _sequence_through(conn, entry_id, now)
    log.publish_tree_head(
        conn,
        account=account,
        domain=domain,
        now=timestamp,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )
    return LoggedRecord(entry_id, leaf_index, timestamp, digest)


def _sequence_through(conn: Connection, entry_id: int, now: int) -> tuple[int, int]:
    """Sequence the queue up to and including ``entry_id``; its (leaf index, timestamp)."""
    stamp = log.sequencer_time(conn, now)
    c = log.entries_t.c
    while True:
        row = conn.execute(select(c.leaf_index, c.timestamp).where(c.id == entry_id)).one()
        if row.leaf_index is not None:
            return int(row.leaf_index), int(row.timestamp)
        log.integrate_queue(conn, limit=10_000, now=stamp)


def insert_record(
    conn: Connection, signed: SignedMessage, payload: Mapping[str, Any], *, now: int
) -> tuple[int, bytes]:
    """Store a signed record, consuming its (signer, nonce); returns (record id, payload hash).

    Runs in a savepoint so that a replayed nonce raises ``NonceReused`` and leaves the
    caller's transaction usable (THREATS 17: exactly one of two concurrent uses wins).
    """
    canonical = rfc8785.dumps(dict(payload)).decode("utf-8")
    digest = payload_hash(payload)
    try:
        with conn.begin_nested():
            record_id = conn.execute(
                records_t.insert()
                .values(
                    primary_type=signed.primary_type,
                    signer=signed.signer_bytes,
                    nonce=int(signed.message["nonce"]),
                    deadline=int(signed.message["deadline"]),
                    payload=canonical,
                    payload_hash=digest,
                    created_at=datetime.fromtimestamp(now, UTC),
                )
                .returning(records_t.c.id)
            ).scalar_one()
    except IntegrityError as exc:
        raise NonceReused(
            f"nonce {int(signed.message['nonce'])} of {signed.signer} was already used; "
            "sign again with a fresh nonce"
        ) from exc
    return int(record_id), digest
