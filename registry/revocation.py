"""Revoking goods: a creator withdraws one good, or a batch of leaked codes, with a signature.

Only the good's creator may revoke it. A good that is unknown and a good of another creator
get the same answer (THREATS 35: no oracle for what others registered). Revoking twice
returns the first REVOKE entry and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from registry import log
from registry.batches import BatchIngest, BatchResult, Progress, Row, Tally, open_batch, run_batch
from registry.eip712 import Domain
from registry.errors import NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.records import insert_record
from registry.registration import EntryRef, registered_entry
from registry.requests import RevocationRequest


def _not_theirs(good_type: int, fingerprint: bytes) -> NotFound:
    return NotFound(
        f"no {GoodType(good_type).name.lower()} {fingerprint_hex(fingerprint)} "
        "is registered by the signer"
    )


def revoke_good(
    conn: Connection, request: RevocationRequest, domain: Domain, *, now: int
) -> EntryRef:
    """Queue a REVOKE entry for one good of the signer's."""
    request.check(domain, now=now)
    good_type = int(request.good_type)
    fingerprint = bytes(request.signed.message["fingerprint"])
    registered = registered_entry(conn, good_type, fingerprint)
    if registered is None or registered.actor != request.signed.signer:
        raise _not_theirs(good_type, fingerprint)
    c = entries_t.c
    earlier = conn.execute(
        select(c.id, c.leaf_index)
        .where(
            c.kind == int(EntryKind.REVOKE),
            c.good_type == good_type,
            c.fingerprint == fingerprint,
        )
        .order_by(c.id)
        .limit(1)
    ).first()
    if earlier is not None:
        return EntryRef(
            int(earlier.id),
            EntryKind.REVOKE,
            GoodType(good_type),
            fingerprint,
            request.signed.signer,
            earlier.leaf_index,
            "already-revoked",
        )
    record_id, digest = insert_record(
        conn, request.signed, request.payload(domain).document(), now=now
    )
    entry_id = log.queue_entry(
        conn,
        kind=EntryKind.REVOKE,
        good_type=good_type,
        fingerprint=fingerprint,
        actor=request.signed.signer_bytes,
        payload_hash=digest,
        record_id=record_id,
    )
    return EntryRef(
        int(entry_id),
        EntryKind.REVOKE,
        GoodType(good_type),
        fingerprint,
        request.signed.signer,
        None,
        "queued",
    )


def revoke_batch(
    conn: Connection,
    request: RevocationRequest,
    fingerprints: Iterable[bytes],
    domain: Domain,
    *,
    now: int,
    progress: Progress | None = None,
) -> BatchResult:
    """Revoke a signed batch of the signer's goods (e.g. a leaked lot of codes) at once.

    Every fingerprint must be a good of the signer's; the first that is not rejects the
    whole batch with its position. Goods already revoked are skipped.
    """
    batch = open_batch(conn, request, domain, now=now)
    signer = request.signed.signer_bytes
    c = entries_t.c

    def rule(ingest: BatchIngest, chunk: list[bytes], first: int, tally: Tally) -> list[Row]:
        registered = ingest.registered(chunk)
        done = {
            bytes(fp)
            for (fp,) in conn.execute(
                select(c.fingerprint).where(
                    c.kind == int(EntryKind.REVOKE),
                    c.good_type == ingest.good_type,
                    c.fingerprint.in_(chunk),
                )
            )
        }
        rows: list[Row] = []
        for offset, fingerprint in enumerate(chunk):
            owner = registered.get(fingerprint)
            if owner is None or owner.actor != signer:
                problem = _not_theirs(ingest.good_type, fingerprint).detail
                raise NotFound(f"item {first + offset + 1}: {problem}; nothing was revoked")
            if fingerprint in done:
                tally.skipped += 1
                continue
            done.add(fingerprint)
            rows.append((int(EntryKind.REVOKE), fingerprint, signer, first + offset, None))
            tally.appended += 1
        return rows

    return run_batch(conn, batch, fingerprints, now=now, rule=rule, progress=progress)
