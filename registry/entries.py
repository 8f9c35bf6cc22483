"""Entries as the log holds them: a logged entry (with what rebuilds its leaf) and its reads.

The reads take the caller's connection: ``registry.service.Registry`` owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, text

from registry import registration
from registry.errors import NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import NO_GOOD, EntryKind, encode_leaf
from registry.log import entries_t
from registry.records import checksum


@dataclass(frozen=True)
class LoggedEntry:
    """A sequenced (or queued) entry with everything needed to rebuild its leaf."""

    entry_id: int
    leaf_index: int | None
    kind: EntryKind
    #: None for an entry about a subject, not a good (``leaf.SUBJECT_KINDS``: good_type 0).
    good_type: GoodType | None
    fingerprint: bytes
    actor: bytes
    payload_hash: bytes
    timestamp: int | None
    record_id: int
    position: int | None

    @classmethod
    def from_row(cls, row: Any) -> LoggedEntry:
        """An ``entries`` row (its mapping) as a ``LoggedEntry``."""
        return cls(
            entry_id=int(row["id"]),
            leaf_index=row["leaf_index"],
            kind=EntryKind(int(row["kind"])),
            good_type=GoodType(int(row["good_type"])) if row["good_type"] != NO_GOOD else None,
            fingerprint=bytes(row["fingerprint"]),
            actor=bytes(row["actor"]),
            payload_hash=bytes(row["payload_hash"]),
            timestamp=row["timestamp"],
            record_id=int(row["record_id"]),
            position=row["position"],
        )

    def leaf_data(self) -> bytes:
        if self.timestamp is None:
            raise NotFound("the entry is queued and has no leaf yet")
        return encode_leaf(
            int(self.kind),
            NO_GOOD if self.good_type is None else int(self.good_type),
            self.fingerprint,
            self.actor,
            self.payload_hash,
            self.timestamp,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "leaf_index": self.leaf_index,
            "kind": self.kind.name,
            "good_type": None if self.good_type is None else self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "actor": checksum(self.actor),
            "payload_hash": "0x" + self.payload_hash.hex(),
            "timestamp": self.timestamp,
            "batch_position": self.position,
        }


@dataclass(frozen=True)
class GoodRecord:
    """One of a creator's goods, as their list shows it."""

    entry_id: int
    good_type: GoodType
    fingerprint: bytes
    product: str | None
    leaf_index: int | None
    registered_at: int | None
    batch_position: int | None


def entry_at(conn: Connection, leaf_index: int) -> LoggedEntry:
    """The entry at ``leaf_index``, or ``NotFound``."""
    row = conn.execute(select(entries_t).where(entries_t.c.leaf_index == leaf_index)).first()
    if row is None:
        raise NotFound(f"the log has no leaf {leaf_index}")
    return LoggedEntry.from_row(row._mapping)


def history(conn: Connection, good_type: GoodType, fingerprint: bytes) -> list[LoggedEntry]:
    """Every entry naming the good, in log order (queued ones last)."""
    c = entries_t.c
    good = (c.good_type == int(good_type), c.fingerprint == fingerprint)
    # NOTE: "kind = 1" and "kind <> 1" as written terms, so that SQLite uses the two
    # partial indexes; without a condition on kind it scans the whole table.
    rows = [
        *conn.execute(select(entries_t).where(*good, text("kind = 1"))).all(),
        *conn.execute(select(entries_t).where(*good, text("kind <> 1"))).all(),
    ]
    rows.sort(key=lambda r: (r.leaf_index is None, r.leaf_index or 0, r.id))
    return [LoggedEntry.from_row(row._mapping) for row in rows]


def goods_of(conn: Connection, creator: bytes, *, after: int, limit: int) -> list[GoodRecord]:
    """A creator's registered goods (REGISTER entries), oldest first, after a cursor."""
    c = entries_t.c
    products = registration.products_t.c
    query = (
        select(
            c.id,
            c.good_type,
            c.fingerprint,
            c.leaf_index,
            c.timestamp,
            c.position,
            products.slug,
        )
        .outerjoin(registration.products_t, products.id == c.product_id)
        .where(c.kind == int(EntryKind.REGISTER), c.actor == creator, c.id > after)
        .order_by(c.id)
        .limit(limit)
    )
    return [
        GoodRecord(
            entry_id=int(row.id),
            good_type=GoodType(int(row.good_type)),
            fingerprint=bytes(row.fingerprint),
            product=row.slug,
            leaf_index=row.leaf_index,
            registered_at=row.timestamp,
            batch_position=row.position,
        )
        for row in conn.execute(query)
    ]


__all__ = ["GoodRecord", "LoggedEntry", "entry_at", "goods_of", "history"]
