"""The log's stored checkpoints: signed with each tree head, published at the witness quorum.

Every head ``registry.log.publish_tree_head`` signs gets a C2SP checkpoint over the same size
and root, signed with the log's note keys (``registry.logkeys``) in the head's transaction.
Without a witness policy it is published at once; with one it waits, unpublished, until the
policy's quorum of witnesses cosigned it (``anchoring.witnessing``), and only then is it
served (``/tlog/checkpoint``, tiles up to its size) and anchored. A checkpoint that never
reaches the quorum is never published; the next head's checkpoint supersedes it.

The witnesses' side of the conversation is kept here too (``checkpoint_witnesses``): the size
each one last cosigned (the ``old`` line of tlog-witness) and its failures (the alarm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from registry.checkpoint import Checkpoint
from registry.logkeys import LogNoteKeys
from registry.models.checkpoints import CheckpointRecord, CheckpointWitness
from registry.models.log import TreeHeadRecord
from registry.note import Note, NoteSignature, NoteVerifier, parse_note, parse_signature_lines
from registry.note import sign_note as _sign_note

checkpoints_t = CheckpointRecord.__table__  # type: ignore[attr-defined]
witnesses_t = CheckpointWitness.__table__  # type: ignore[attr-defined]
_heads_t = TreeHeadRecord.__table__  # type: ignore[attr-defined]

MAX_ERROR_CHARS = 500
"""A witness's failure as stored and shown (its answer's body is cut to fit)."""


@dataclass(frozen=True)
class SignedCheckpoint:
    """A stored checkpoint: ``note`` carries the log's signatures and, once published under a
    witness policy, the cosignatures that reached the quorum."""

    checkpoint: Checkpoint
    note: Note
    published: bool

    def to_bytes(self) -> bytes:
        """The checkpoint as served (``/tlog/checkpoint``) and carried in evidence."""
        return self.note.to_bytes()


@dataclass(frozen=True)
class CheckpointSigner:
    """What signs each head's checkpoint: the log's note keys, and whether a witness policy
    holds it back until cosigned (``witnessed``) or it is published as soon as signed."""

    keys: LogNoteKeys
    witnessed: bool = False

    def sign(self, size: int, root: bytes) -> Note:
        return _sign_note(Checkpoint(self.keys.origin, size, root).text(), self.keys.signers)


def store_checkpoint(
    conn: Connection, signer: CheckpointSigner, *, size: int, root: bytes, now: int
) -> SignedCheckpoint:
    """Sign and store the checkpoint of the head of ``size`` (in the head's transaction)."""
    note = signer.sign(size, root)
    published = not signer.witnessed
    conn.execute(
        insert(checkpoints_t).values(
            tree_size=size,
            note=note.to_bytes(),
            cosignatures=None,
            signed_at=now,
            published_at=now if published else None,
        )
    )
    return SignedCheckpoint(Checkpoint.parse(note.text), note, published)


def _from_row(row: Any) -> SignedCheckpoint:
    note = parse_note(bytes(row.note))
    if row.cosignatures:
        note = note.with_signatures(*parse_signature_lines(bytes(row.cosignatures)))
    return SignedCheckpoint(Checkpoint.parse(note.text), note, row.published_at is not None)


def checkpoint_at(conn: Connection, size: int) -> SignedCheckpoint | None:
    """The checkpoint of the head of ``size``, published or not (None: no such checkpoint)."""
    row = conn.execute(select(checkpoints_t).where(checkpoints_t.c.tree_size == size)).first()
    return None if row is None else _from_row(row)


def latest_published_checkpoint(conn: Connection) -> SignedCheckpoint | None:
    """The newest published checkpoint: what the static API serves and the worker anchors."""
    row = conn.execute(
        select(checkpoints_t)
        .where(checkpoints_t.c.published_at.is_not(None))
        .order_by(checkpoints_t.c.tree_size.desc())
        .limit(1)
    ).first()
    return None if row is None else _from_row(row)


def latest_published_size(conn: Connection) -> int:
    """The size of the newest published checkpoint, 0 if none."""
    size = conn.execute(
        select(checkpoints_t.c.tree_size)
        .where(checkpoints_t.c.published_at.is_not(None))
        .order_by(checkpoints_t.c.tree_size.desc())
        .limit(1)
    ).scalar()
    return 0 if size is None else int(size)


def newest_unpublished_checkpoint(conn: Connection) -> SignedCheckpoint | None:
    """The newest checkpoint, if it is not published yet: the one to ask witnesses about
    (older unpublished ones are superseded by it and never published)."""
    row = conn.execute(
        select(checkpoints_t).order_by(checkpoints_t.c.tree_size.desc()).limit(1)
    ).first()
    if row is None or row.published_at is not None:
        return None
    return _from_row(row)


def publish_checkpoint(
    conn: Connection, size: int, cosignatures: Sequence[NoteSignature], *, now: int
) -> None:
    """Mark the checkpoint of ``size`` published with the cosignatures that reached the
    quorum (verified by the caller against the policy)."""
    lines = "".join(signature.line() for signature in cosignatures).encode() or None
    conn.execute(
        update(checkpoints_t)
        .where(checkpoints_t.c.tree_size == size, checkpoints_t.c.published_at.is_(None))
        .values(cosignatures=lines, published_at=now)
    )


def checkpoint_latest_head(conn: Connection, signer: CheckpointSigner, *, now: int) -> None:
    """At start: give the latest head a checkpoint if it has none (a head signed before
    checkpoints existed), and, without a witness policy, publish the latest checkpoint if a
    policy removed since left it waiting. Older heads without a checkpoint keep none: they
    are neither served nor anchored again, since both follow the latest checkpoint."""
    head = conn.execute(
        select(_heads_t.c.tree_size, _heads_t.c.root).order_by(_heads_t.c.tree_size.desc()).limit(1)
    ).first()
    if head is None:
        return
    stored = checkpoint_at(conn, int(head.tree_size))
    if stored is None:
        store_checkpoint(conn, signer, size=int(head.tree_size), root=bytes(head.root), now=now)
    elif not stored.published and not signer.witnessed:
        publish_checkpoint(conn, int(head.tree_size), (), now=now)


# -- the witnesses' state ---------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessRecord:
    """What the registry knows of one witness key: the size it last cosigned, its failures."""

    key_name: str
    key_id: int
    tree_size: int = 0
    cosigned_at: int | None = None
    failures: int = 0
    total_failures: int = 0
    last_error: str | None = None
    failed_at: int | None = None


def _key(verifier: NoteVerifier) -> Any:
    c = witnesses_t.c
    return (c.key_name == verifier.name) & (c.key_id == verifier.key_id)


def witness_record(conn: Connection, verifier: NoteVerifier) -> WitnessRecord:
    row = conn.execute(select(witnesses_t).where(_key(verifier))).first()
    if row is None:
        return WitnessRecord(verifier.name, verifier.key_id)
    return WitnessRecord(**row._mapping)


def _upsert(conn: Connection, verifier: NoteVerifier, values: dict[str, Any]) -> None:
    if conn.execute(select(witnesses_t.c.key_id).where(_key(verifier))).first() is None:
        fresh = {"tree_size": 0, "failures": 0, "total_failures": 0, **values}
        conn.execute(
            insert(witnesses_t).values(key_name=verifier.name, key_id=verifier.key_id, **fresh)
        )
    else:
        conn.execute(update(witnesses_t).where(_key(verifier)).values(**values))


def record_cosigned(conn: Connection, verifier: NoteVerifier, size: int, *, now: int) -> None:
    """The witness cosigned the checkpoint of ``size``: its state is that size now."""
    _upsert(
        conn,
        verifier,
        {"tree_size": size, "cosigned_at": now, "failures": 0, "last_error": None},
    )


def record_witness_failure(
    conn: Connection, verifier: NoteVerifier, error: str, *, now: int
) -> None:
    """The witness did not cosign; ``error`` says why (no secret: it names sizes, statuses)."""
    before = witness_record(conn, verifier)
    _upsert(
        conn,
        verifier,
        {
            "failures": before.failures + 1,
            "total_failures": before.total_failures + 1,
            "last_error": error[:MAX_ERROR_CHARS],
            "failed_at": now,
        },
    )


def witness_records(conn: Connection) -> list[WitnessRecord]:
    rows = conn.execute(
        select(witnesses_t).order_by(witnesses_t.c.key_name, witnesses_t.c.key_id)
    ).all()
    return [WitnessRecord(**row._mapping) for row in rows]


def witness_alerts(conn: Connection) -> list[str]:
    """What ``/readyz`` says about witnessing: the checkpoint waiting for its quorum and the
    witnesses whose last request failed."""
    found = []
    waiting = newest_unpublished_checkpoint(conn)
    for record in witness_records(conn):
        if record.failures and record.last_error:
            found.append(
                f"witness {record.key_name} failed {record.failures} time(s) in a row: "
                f"{record.last_error}"
            )
    if waiting is not None and found:
        published = latest_published_size(conn)
        found.insert(
            0,
            f"checkpoint {waiting.checkpoint.size} is not published: below the witness "
            f"quorum (published size {published})",
        )
    return found


__all__ = [
    "CheckpointSigner",
    "SignedCheckpoint",
    "WitnessRecord",
    "checkpoint_at",
    "checkpoint_latest_head",
    "latest_published_checkpoint",
    "latest_published_size",
    "newest_unpublished_checkpoint",
    "publish_checkpoint",
    "record_cosigned",
    "record_witness_failure",
    "store_checkpoint",
    "witness_alerts",
    "witness_record",
    "witness_records",
]
