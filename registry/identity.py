"""Creator identities in storage: writing a CREATOR_IDENTITY entry (kind 6) with its row in
``creator_identities``, and reading them back.

The registry attests what it fetched (actor = the registry's own address, as for a TRANSFER);
the payload is built by ``verifier.identityclaim.CreatorIdentityPayload`` (the one type of
that document, in the kit because it carries the creator's statement) and arrives here as
that type, seen through ``IdentityPayload``. The entry is queued for the sequencer like a
registration; the row is the fast read behind verify answers and is the newest check of each
creator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Table, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from registry import log
from registry.db import read_transaction, write_transaction
from registry.eip712 import address_bytes
from registry.errors import InvalidInput
from registry.leaf import NO_GOOD, EntryKind, subject_fingerprint
from registry.log import entries_t
from registry.models import CreatorIdentityRow
from registry.records import log_registry_record, records_t

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from registry.entries import LoggedEntry
    from registry.service import Registry

identities_t: Table = CreatorIdentityRow.__table__  # type: ignore[attr-defined]

#: The signed record's ``primary_type`` of an identity entry's payload.
RECORD_TYPE = "CreatorIdentity"
STATUSES = frozenset({"verified", "lapsed"})


class IdentityFields(Protocol):
    """The claim a CREATOR_IDENTITY payload makes (``verifier.identityclaim.IdentityClaim``)."""

    @property
    def domain(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def checked_at(self) -> int: ...
    @property
    def url(self) -> str: ...


class IdentityPayload(Protocol):
    """A CREATOR_IDENTITY payload as the registry stores it
    (``verifier.identityclaim.CreatorIdentityPayload``; NOTE: a protocol, because the registry
    does not import the kit that defines it)."""

    @property
    def identity(self) -> IdentityFields: ...
    def to_json(self) -> bytes: ...
    def payload_hash(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class IdentityRow:
    """A creator's identity as last checked (a ``creator_identities`` row)."""

    creator: bytes
    domain: str
    name: str
    status: str
    checked_at: int
    url: str
    entry_id: int

    @classmethod
    def from_row(cls, row: Any) -> IdentityRow:
        return cls(
            creator=bytes(row.creator),
            domain=str(row.domain),
            name=str(row.name),
            status=str(row.status),
            checked_at=int(row.checked_at),
            url=str(row.url),
            entry_id=int(row.entry_id),
        )


def record_identity(
    conn: Connection,
    *,
    creator: bytes,
    payload: IdentityPayload,
    account: LocalAccount,
    now: int,
) -> int:
    """Queue a CREATOR_IDENTITY entry for ``payload`` and make its row the creator's current
    identity; returns the entry's id. The caller owns the transaction (both or neither)."""
    identity = payload.identity
    status = identity.status
    if status not in STATUSES:
        raise InvalidInput("an identity's status is 'verified' or 'lapsed'")
    registry = address_bytes(account.address)
    # Serialises the registry's nonce sequence (and orders the entry against the sequencer).
    log.lock_log(conn)
    entry_id, _ = log_registry_record(
        conn,
        payload,
        primary_type=RECORD_TYPE,
        kind=EntryKind.CREATOR_IDENTITY,
        good_type=NO_GOOD,
        fingerprint=subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator),
        signer=registry,
        now=now,
    )
    values = {
        "creator": creator,
        "domain": identity.domain,
        "name": identity.name,
        "status": status,
        "checked_at": int(identity.checked_at),
        "url": identity.url,
        "entry_id": entry_id,
    }
    insert = (sqlite_insert if conn.dialect.name == "sqlite" else pg_insert)(identities_t)
    conn.execute(
        insert.values(**values).on_conflict_do_update(
            index_elements=[identities_t.c.creator],
            set_={k: v for k, v in values.items() if k != "creator"},
        )
    )
    return entry_id


def identity_of(conn: Connection, creator: bytes) -> IdentityRow | None:
    """The creator's identity as last checked, verified or lapsed; None if never proved."""
    row = conn.execute(select(identities_t).where(identities_t.c.creator == creator)).first()
    return None if row is None else IdentityRow.from_row(row)


def identities(conn: Connection, *, status: str | None = None) -> list[IdentityRow]:
    """Every creator's identity (optionally only those with ``status``), oldest check first."""
    query = select(identities_t).order_by(identities_t.c.checked_at, identities_t.c.creator)
    if status is not None:
        query = query.where(identities_t.c.status == status)
    return [IdentityRow.from_row(row) for row in conn.execute(query)]


def identity_payload_of(conn: Connection, entry_id: int) -> dict[str, Any]:
    """The payload document of an identity entry (what its leaf's payload hash covers)."""
    import json

    row = conn.execute(
        select(records_t.c.payload)
        .select_from(entries_t.join(records_t, records_t.c.id == entries_t.c.record_id))
        .where(entries_t.c.id == entry_id)
    ).scalar_one()
    document: dict[str, Any] = json.loads(row)
    return document


def latest_identity_entry(
    source: Connection | Registry, creator: bytes, *, below: int | None = None
) -> LoggedEntry | None:
    """The newest *logged* (sequenced) CREATOR_IDENTITY entry of ``creator``, verified or
    lapsed, or None: what a proof bundle carries next to the creator's address. A queued
    entry has no leaf yet and is skipped; ``below`` keeps to leaves under a tree size (the
    bundle's head)."""
    from registry.entries import LoggedEntry

    if not isinstance(source, Connection):
        with read_transaction(source.engine) as conn:
            return latest_identity_entry(conn, creator, below=below)
    c = entries_t.c
    row = source.execute(
        select(entries_t)
        # NOTE: "kind <> 1" as written, so that the partial index on (good_type, fingerprint)
        # serves it (see ``Registry.history``).
        .where(
            text("kind <> 1"),
            c.kind == int(EntryKind.CREATOR_IDENTITY),
            c.good_type == NO_GOOD,
            c.fingerprint == subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator),
            c.leaf_index.is_not(None),
            *(() if below is None else (c.leaf_index < below,)),
        )
        .order_by(c.leaf_index.desc())
        .limit(1)
    ).first()
    return None if row is None else LoggedEntry.from_row(row._mapping)


def identity_entries(conn: Connection, creator: bytes) -> list[LoggedEntry]:
    """Every CREATOR_IDENTITY entry of ``creator`` in log order (queued ones last)."""
    from registry.entries import LoggedEntry

    c = entries_t.c
    rows = list(
        conn.execute(
            select(entries_t).where(
                text("kind <> 1"),
                c.kind == int(EntryKind.CREATOR_IDENTITY),
                c.good_type == NO_GOOD,
                c.fingerprint == subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator),
            )
        )
    )
    rows.sort(key=lambda r: (r.leaf_index is None, r.leaf_index or 0, r.id))
    return [LoggedEntry.from_row(row._mapping) for row in rows]


def save_identity(registry: Registry, *, creator: bytes, payload: IdentityPayload) -> int:
    """``record_identity`` in a transaction of its own on the registry's database."""
    with write_transaction(registry.engine) as conn:
        return record_identity(
            conn, creator=creator, payload=payload, account=registry.account, now=registry.clock()
        )


__all__ = [
    "RECORD_TYPE",
    "IdentityFields",
    "IdentityPayload",
    "IdentityRow",
    "identities",
    "identities_t",
    "identity_entries",
    "identity_of",
    "identity_payload_of",
    "latest_identity_entry",
    "record_identity",
    "save_identity",
]
