"""Bulk batches: stream 10^6 fingerprints into the log in one transaction, checked against
the items root the creator signed once.

The stream is consumed in chunks; each chunk extends the batch's items tree (kept as tiles,
for batch proofs) and the log's tree, and inserts its entries with their final leaf
indices. The batch is valid only if, at the end, the stream's count and items root equal
the signed ones; otherwise the caller's transaction rolls back and nothing is written.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from registry import log, pgbulk
from registry.eip712 import Domain
from registry.errors import InvalidInput
from registry.leaf import EntryKind, encode_leaf, leaf_prefix
from registry.log import entries_t
from registry.merkle import hash_leaves
from registry.records import insert_record
from registry.requests import RegistrationRequest, RevocationRequest
from registry.statemapvalues import collector_paused
from registry.tilestore import TileStore, TreeAppender, batch_tiles_t, tiles_t

#: Most goods in one signed batch (THREATS 40: bulk endpoints are bounded).
MAX_BATCH_SIZE = 10_000_000
#: PostgreSQL: refresh the planner's statistics once a batch has added this many rows.
ANALYZE_AFTER = 16_384
#: Key of ``Connection.info`` under which the caller may put a callable that sees each chunk's
#: appended leaves, ``(conn, first leaf index, good type, fingerprints, leaf hashes)``: the
#: state map (``registry.statecommit``) takes them there instead of reading the batch back.
#: It returns None or a callable that finishes its work without the connection, which the
#: batch runs before the chunk's statement is answered (the two overlap on PostgreSQL).
LEAVES_HOOK = "tracemark.batches.leaves"
#: Fingerprints handled per database round trip: large enough to amortise the statement,
#: small enough to stay under SQLite's bound-parameter limit in the lookup query.
CHUNK_SIZE = 4_096

_COLUMNS = (
    "leaf_index",
    "kind",
    "good_type",
    "fingerprint",
    "actor",
    "payload_hash",
    "timestamp",
    "record_id",
    "position",
    "product_id",
)


def chunked(fingerprints: Iterable[bytes], size: int = CHUNK_SIZE) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for fingerprint in fingerprints:
        chunk.append(fingerprint)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class Existing:
    """A good's accepted REGISTER entry, as a batch sees it."""

    actor: bytes
    record_id: int
    position: int | None


class BatchIngest:
    """Appends one signed batch's entries to the log inside the caller's transaction."""

    def __init__(
        self,
        conn: Connection,
        *,
        record_id: int,
        good_type: int,
        count: int,
        items_root: bytes,
        batch_payload_hash: bytes,
        now: int,
    ) -> None:
        if not 1 <= count <= MAX_BATCH_SIZE:
            raise InvalidInput(f"a batch holds 1 to {MAX_BATCH_SIZE:,} goods, not {count:,}")
        self._conn = conn
        self.record_id = record_id
        self.good_type = good_type
        self.count = count
        self.items_root = items_root
        self._batch_payload_hash = batch_payload_hash
        self.now = now
        self.position = 0
        self.first_leaf_index = log.lock_log(conn)
        self._next_analyze = self.first_leaf_index + ANALYZE_AFTER
        self._log = TreeAppender(TileStore(conn, tiles_t), self.first_leaf_index)
        self._items = TreeAppender(TileStore(conn, batch_tiles_t, record_id), 0)
        self._postgres = conn.dialect.name == "postgresql"
        self._marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self._insert_sql = _insert_statement(conn)

    def take(self, chunk: list[bytes]) -> int:
        """Account for the next chunk of the stream; returns its first position."""
        first = self.position
        if chunk and set(map(len, chunk)) != {32}:  # in C; the loop only finds the culprit
            for offset, fingerprint in enumerate(chunk):
                if len(fingerprint) != 32:
                    raise InvalidInput(
                        f"item {first + offset + 1}: a fingerprint is 32 bytes, "
                        f"not {len(fingerprint)}"
                    )
        if first + len(chunk) > self.count:
            raise InvalidInput(f"the batch signed {self.count:,} goods but more were sent")
        # An item's leaf data is its fingerprint alone: itemsRoot commits to the list.
        self._items.append(hash_leaves(chunk))
        self.position += len(chunk)
        return first

    def registered(self, chunk: list[bytes]) -> dict[bytes, Existing]:
        """The accepted REGISTER entries among ``chunk`` (queued, sequenced, or this batch's)."""
        # Driver-level SQL: compiling an expanding IN of 4,096 parameters through the ORM
        # layer costs more than the index lookups themselves.
        marker = self._marker
        sql = (
            f"SELECT fingerprint, actor, record_id, position FROM {entries_t.name} "
            f"WHERE kind = {int(EntryKind.REGISTER)} AND good_type = {marker} AND "
        )
        if self._postgres:
            rows = self._conn.exec_driver_sql(
                sql + pgbulk.one_of_packed("fingerprint", 32),
                (self.good_type, b"".join(chunk), len(chunk) - 1),
            )
        else:
            in_list = f"fingerprint IN ({', '.join([marker] * len(chunk))})"
            rows = self._conn.exec_driver_sql(sql + in_list, (self.good_type, *chunk))
        return {
            bytes(fp): Existing(bytes(actor), int(record_id), position)
            for fp, actor, record_id, position in rows
        }

    def append(self, rows: list[Row]) -> None:
        """Append entries ``(kind, fingerprint, actor, position, product_id)`` to the log."""
        if not rows:
            return
        sha256 = hashlib.sha256
        batch_hash = self._batch_payload_hash
        good_type, now, record_id = self.good_type, self.now, self.record_id
        # NOTE: the comprehensions below pack leaves inline instead of calling ``encode_leaf`` for
        # each of 10^6 goods: same bytes (a test compares every leaf of a batch with
        # ``encode_leaf``), a third of the cost. The inputs are checked once: fingerprints
        # in ``take``, the actor and timestamp by the caller's types.
        encode_leaf(rows[0][0], good_type, rows[0][1], rows[0][2], batch_hash, now)
        prefixes = {kind: leaf_prefix(kind, good_type) for kind in {row[0] for row in rows}}
        actor_words = {actor: bytes(12) + actor for actor in {row[2] for row in rows}}
        timestamp_word = now.to_bytes(32, "big")
        first_leaf = self._log.size
        # Three comprehensions rather than one loop appending to two lists: 3.0-3.8 ms a
        # chunk of 4,096 rows against 4.1-4.4 (a micro-benchmark on a loaded machine).
        payload_hashes = [sha256(batch_hash + row[3].to_bytes(4, "big")).digest() for row in rows]
        leaves = [
            prefixes[kind] + fingerprint + actor_words[actor] + entry_payload_hash + timestamp_word
            for (kind, fingerprint, actor, _, _), entry_payload_hash in zip(
                rows, payload_hashes, strict=True
            )
        ]
        params = [
            (
                leaf_index,
                kind,
                good_type,
                fingerprint,
                actor,
                entry_payload_hash,
                now,
                record_id,
                position,
                product_id,
            )
            for leaf_index, (
                kind,
                fingerprint,
                actor,
                position,
                product_id,
            ), entry_payload_hash in zip(
                range(first_leaf, first_leaf + len(rows)), rows, payload_hashes, strict=True
            )
        ]
        leaf_hashes = hash_leaves(leaves)
        self._log.append(leaf_hashes)
        hook = self._conn.info.get(LEAVES_HOOK)
        # The hook stages the chunk (it may read the leaves before it back, tiles included,
        # to catch the map up) and hands back its work that needs no connection, the map's
        # merge: that runs while PostgreSQL checks the COPY's rows (``pgbulk.copy_rows``).
        merge = (
            None
            if hook is None
            else hook(self._conn, first_leaf, good_type, [row[1] for row in rows], leaf_hashes)
        )
        if self._postgres:
            pgbulk.copy_rows(self._conn, entries_t, _COLUMNS, params, during=merge)
        else:
            self._conn.exec_driver_sql(self._insert_sql, params)
            if merge is not None:
                merge()
        if self._postgres and self._log.size >= self._next_analyze:
            # NOTE: PostgreSQL plans each chunk's fingerprint lookup from statistics taken
            # before this batch (an empty table, at first), and then filters every row of
            # the index instead of probing it: quadratic, 426 s for 200k codes. Refreshing
            # the statistics as the batch grows (ANALYZE sees this transaction's rows)
            # keeps the lookups on the index; a geometric interval bounds the cost.
            self._conn.exec_driver_sql(f"ANALYZE {entries_t.name}")
            self._next_analyze = self._log.size * 4

    def finish(self) -> int:
        """Check the stream against the signature's count and items root; returns the new size."""
        if self.position != self.count:
            raise InvalidInput(
                f"the batch signed {self.count:,} goods but {self.position:,} were sent"
            )
        items_root = self._items.finish()
        if items_root != self.items_root:
            raise InvalidInput(
                "the fingerprints sent do not hash to the signed itemsRoot "
                f"(got 0x{items_root.hex()}); nothing was registered"
            )
        self._log.finish()
        log.set_tree_size(self._conn, self._log.size)
        return self._log.size


#: An entry a chunk appends: (kind, fingerprint, actor, position, product_id).
Row = tuple[int, bytes, bytes, int, int | None]
Progress = Callable[[int], None]
#: Runs last in a batch's transaction, with its result, and raises to roll it all back: a
#: bulk job's runner checks there that the job is still its own (``api.jobs``).
BatchCheck = Callable[[Connection, "BatchResult"], None]


@dataclass
class Tally:
    """What a batch did to its goods, counted by the rule that classifies each chunk."""

    appended: int = 0
    skipped: int = 0
    conflicts: int = 0


#: Decides, for one chunk starting at a position, which entries to append (and counts).
ChunkRule = Callable[[BatchIngest, list[bytes], int, Tally], list[Row]]


@dataclass(frozen=True)
class BatchResult:
    """What a bulk batch did: goods appended (registered or revoked), skipped, conflicting."""

    record_id: int
    count: int
    registered: int
    already_registered: int
    conflicts: int
    first_leaf_index: int
    tree_size: int
    items_root: bytes

    def as_dict(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "count": self.count,
            "registered": self.registered,
            "already_registered": self.already_registered,
            "conflicts": self.conflicts,
            "first_leaf_index": self.first_leaf_index,
            "tree_size": self.tree_size,
            "items_root": "0x" + self.items_root.hex(),
        }


@dataclass(frozen=True)
class SignedBatch:
    """A checked BatchRegistration or BatchRevocation, its signed record stored."""

    message: Mapping[str, Any]
    record_id: int
    batch_payload_hash: bytes


def open_batch(
    conn: Connection, request: RegistrationRequest | RevocationRequest, domain: Domain, *, now: int
) -> SignedBatch:
    """Check a signed bulk batch and store its record (consuming its nonce), before any of
    its stream is read."""
    request.check(domain, now=now)
    record_id, batch_payload_hash = insert_record(
        conn, request.signed, request.payload(domain).document(), now=now
    )
    return SignedBatch(request.signed.message, record_id, batch_payload_hash)


def run_batch(
    conn: Connection,
    batch: SignedBatch,
    fingerprints: Iterable[bytes],
    *,
    now: int,
    rule: ChunkRule,
    progress: Progress | None = None,
) -> BatchResult:
    """Stream a signed batch into the log, chunk by chunk, as ``rule`` decides; checks count
    and items root at the end."""
    message = batch.message
    record_id = batch.record_id
    ingest = BatchIngest(
        conn,
        record_id=record_id,
        good_type=int(message["goodType"]),
        count=int(message["count"]),
        items_root=bytes(message["itemsRoot"]),
        batch_payload_hash=batch.batch_payload_hash,
        now=now,
    )
    tally = Tally()
    # NOTE: a batch allocates tuples, lists and the state map's interior nodes by the
    # million, and the cyclic collector's full passes scan every one of them (the whole map)
    # each time the heap grew by a quarter: ~20% of the batch's own CPU at 10^5-3x10^5 codes.
    # None of it forms cycles (reference counting frees it), so the collector is paused for
    # the batch; it still collects the young generation once a chunk, so that cycles
    # other threads make meanwhile (most die young) do not wait for the batch's end.
    with collector_paused():
        for chunk in chunked(fingerprints):
            first = ingest.take(chunk)
            ingest.append(rule(ingest, chunk, first, tally))
            if progress is not None:
                progress(ingest.position)
            gc.collect(0)
        size = ingest.finish()
    return BatchResult(
        record_id=record_id,
        count=ingest.count,
        registered=tally.appended,
        already_registered=tally.skipped,
        conflicts=tally.conflicts,
        first_leaf_index=ingest.first_leaf_index,
        tree_size=size,
        items_root=ingest.items_root,
    )


def _insert_statement(conn: Connection) -> str:
    # Driver-level executemany: the ORM does ~14k rows/s here, this path ~10x that.
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO {entries_t.name} ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join([marker] * len(_COLUMNS))})"
    )
