"""Registering goods: one signed ``Registration``, or a ``BatchRegistration`` of 10^6 codes.

Rules (DESIGN.md, THREATS 5): one accepted REGISTER per (good_type, fingerprint); the same
creator again gets the existing entry back and nothing is written; another creator's claim
is logged as a CONFLICT entry, never applied, so log order proves who was first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import IntegrityError

from registry import log
from registry.batches import (
    BatchIngest,
    BatchResult,
    Existing,
    Progress,
    Row,
    Tally,
    open_batch,
    run_batch,
)
from registry.eip712 import Domain
from registry.errors import InvalidInput, UnknownProduct
from registry.fingerprints import GoodType, Use, fingerprint_hex
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models import Product
from registry.records import checksum, insert_record
from registry.requests import RegistrationRequest

products_t: Table = Product.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class EntryRef:
    """Where a request landed in the log: the entry, and whether it is already sequenced."""

    entry_id: int
    kind: EntryKind
    good_type: GoodType
    fingerprint: bytes
    actor: str
    leaf_index: int | None
    #: "queued", "already-registered" (idempotent repeat) or "conflict" (another's claim)
    status: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "kind": self.kind.name,
            "good_type": self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "actor": self.actor,
            "leaf_index": self.leaf_index,
            "status": self.status,
        }


def ensure_product(
    conn: Connection, request: RegistrationRequest, record_id: int, now: int
) -> int | None:
    """The product's id; a new one is created by its first signed registration, when the
    request says it means to. A product's ``use`` never changes."""
    slug, creator, use = str(request.signed.message["product"]), request.creator, request.use
    if not slug:
        return None
    c = products_t.c
    row = conn.execute(select(c.id, c.use).where(c.creator == creator, c.slug == slug)).first()
    if row is None and not request.new_product:
        raise UnknownProduct(
            f"{request.signed.signer} has no product {slug!r}; check the slug, or ask to "
            "create it (tracemark: --new-product)"
        )
    if row is not None:
        if int(row.use) != int(use):
            raise InvalidInput(
                f"product {slug!r} is {Use(int(row.use)).name.lower()}; "
                f"it cannot take {use.name.lower()} goods"
            )
        return int(row.id)
    return int(
        conn.execute(
            products_t.insert()
            .values(
                creator=creator,
                slug=slug,
                use=int(use),
                first_record_id=record_id,
                created_at=datetime.fromtimestamp(now, UTC),
            )
            .returning(c.id)
        ).scalar_one()
    )


def registered_entry(conn: Connection, good_type: int, fingerprint: bytes) -> EntryRef | None:
    c = entries_t.c
    row = conn.execute(
        select(c.id, c.actor, c.leaf_index).where(
            c.kind == int(EntryKind.REGISTER),
            c.good_type == good_type,
            c.fingerprint == fingerprint,
        )
    ).first()
    if row is None:
        return None
    return EntryRef(
        int(row.id),
        EntryKind.REGISTER,
        GoodType(good_type),
        fingerprint,
        checksum(bytes(row.actor)),
        row.leaf_index,
        "registered",
    )


def register_good(
    conn: Connection, request: RegistrationRequest, domain: Domain, *, now: int
) -> EntryRef:
    """Queue one signed registration (or its CONFLICT entry); idempotent for its creator."""
    request.check(domain, now=now)
    message = request.signed.message
    good_type = int(request.good_type)
    fingerprint = bytes(message["fingerprint"])
    creator = request.creator

    existing = registered_entry(conn, good_type, fingerprint)
    if existing is not None and existing.actor == request.signed.signer:
        # The same creator again: hand back the original entry, consume nothing.
        return EntryRef(**{**existing.__dict__, "status": "already-registered"})

    payload = request.payload(domain).document()
    record_id, digest = insert_record(conn, request.signed, payload, now=now)
    product = ensure_product(conn, request, record_id, now)
    kind = EntryKind.CONFLICT if existing is not None else EntryKind.REGISTER
    queue = partial(
        log.queue_entry,
        conn,
        good_type=good_type,
        fingerprint=fingerprint,
        actor=creator,
        payload_hash=digest,
        record_id=record_id,
        product_id=product,
    )
    try:
        with conn.begin_nested():
            entry_id = queue(kind=kind)
    except IntegrityError:
        # Another creator's REGISTER committed between our read and our insert (possible on
        # PostgreSQL): the unique index decided who was first, so ours is the CONFLICT.
        kind = EntryKind.CONFLICT
        entry_id = queue(kind=kind)
    status = "conflict" if kind is EntryKind.CONFLICT else "queued"
    return EntryRef(
        int(entry_id),
        kind,
        GoodType(good_type),
        fingerprint,
        request.signed.signer,
        None,
        status,
    )


def register_batch(
    conn: Connection,
    request: RegistrationRequest,
    fingerprints: Iterable[bytes],
    domain: Domain,
    *,
    now: int,
    progress: Progress | None = None,
) -> BatchResult:
    """Sequence a signed bulk batch straight into the log (it is already one transaction).

    The signature is checked before the stream is read; the stream must then hash to the
    signed items root, or the caller's transaction rolls back with nothing written.
    """
    batch = open_batch(conn, request, domain, now=now)
    record_id = batch.record_id
    creator = request.creator
    product = ensure_product(conn, request, record_id, now)

    def rule(ingest: BatchIngest, chunk: list[bytes], first: int, tally: Tally) -> list[Row]:
        existing = ingest.registered(chunk)
        if not existing and len(set(chunk)) == len(chunk):
            # NOTE: the common case of a fresh batch (no good of the chunk registered, none
            # twice in it): every good is a REGISTER, decided in C-speed checks and one
            # comprehension instead of the loop's lookups a good. Same rows as the loop.
            tally.appended += len(chunk)
            register = int(EntryKind.REGISTER)
            return [
                (register, fingerprint, creator, position, product)
                for position, fingerprint in enumerate(chunk, first)
            ]
        rows: list[Row] = []
        seen: dict[bytes, int] = {}
        for offset, fingerprint in enumerate(chunk):
            position = first + offset
            earlier = existing.get(fingerprint)
            if fingerprint in seen or (earlier is not None and earlier.record_id == record_id):
                repeat = seen.get(fingerprint, _position(earlier))
                raise InvalidInput(
                    f"item {position + 1} repeats item {repeat + 1} of the same batch; "
                    "every good appears once"
                )
            seen[fingerprint] = position
            if earlier is not None and earlier.actor == creator:
                tally.skipped += 1  # the same creator again: idempotent
                continue
            kind = EntryKind.CONFLICT if earlier is not None else EntryKind.REGISTER
            tally.conflicts += kind is EntryKind.CONFLICT
            tally.appended += kind is EntryKind.REGISTER
            rows.append((int(kind), fingerprint, creator, position, product))
        return rows

    return run_batch(conn, batch, fingerprints, now=now, rule=rule, progress=progress)


def _position(existing: Existing | None) -> int:
    return existing.position if existing is not None and existing.position is not None else 0
