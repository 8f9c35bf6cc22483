"""The state map wired into the log (issue 14): commitments at every head, and map proofs.

Every head the registry signs ends with a STATE_COMMITMENT leaf (``log.publish_tree_head``):
its fingerprint word is the root of the state map (``registry.statemap``) over every leaf
before it, and its payload (``StateCommitmentPayload``) says how many leaves that is
(``covers``, the commitment's own leaf index). The map holds, for each good with an entry
below that index (REGISTER, REVOKE, TRANSFER, CONFLICT: good_type != NO_GOOD), the history
chain over those entries' RFC 9162 leaf hashes in log order; subject entries (kinds 5-7) are
not in it. So every signed and anchored head commits to the map through the log.

``StateMapCache`` is the map in memory, one per ``Registry`` (per process), kept in step
with the database:

- its version is the number of leaves it covers; it catches up inside the caller's
  transaction by replaying the entries ``[version, size)`` in leaf order, their leaf hashes
  read from the level-0 tiles (what the log's roots are made of), in sorted batches;
- it keeps a snapshot at each commitment it passes or makes (the newest
  ``KEEP_COMMITMENTS``, none more than ``KEEP_SPAN`` leaves older than the newest), plus the
  ``KEEP_SERVED`` most recently asked for by a proof (the newest anchored head, which bundles
  use, stays warm even when many heads follow it), plus the empty map at 0. Snapshots share
  structure (``registry.statemaptree``); a proof at a head none is kept for replays on the
  side from the newest kept snapshot below it;
- it heals itself: before each use it starts from the newest of its snapshots that the
  database confirms (a STATE_COMMITMENT at leaf ``covers`` with the same root), so a
  transaction that rolled back after the cache advanced, or another process that sequenced,
  never leaves a wrong map; with none confirmed it replays from leaf 0. Every commitment it
  replays over is compared with the map: a root that disagrees is ``LogCorrupt``;
- a bulk batch hands it each chunk's fingerprints and leaf hashes as it writes them
  (``leaves_from_batches``), merged into the live map on the way, so a batch of 10^6 codes
  is not read back before its commitment; the commitment uses them only if they are its own
  transaction's and nothing rewound the map meanwhile, else it catches up from the database.

NOTE: the database, not the cache, is the truth. The cache's only trust in it is that a
commitment the registry logged holds the root of the map over the leaves before it, which
the replay re-checks for every commitment after the snapshot it starts from.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Connection, select

from registry import log, statereplay
from registry.batches import LEAVES_HOOK
from registry.entries import LoggedEntry
from registry.errors import LogCorrupt, NotFound
from registry.leaf import NO_GOOD, EntryKind
from registry.log import entries_t, heads_t
from registry.payloads import StateCommitmentPayload
from registry.records import log_registry_record, records_t
from registry.statemap import MapProof, MapValue, map_keys
from registry.statemaptree import MapSnapshot, StateMap

KEEP_COMMITMENTS = 256
"""Snapshots kept at the newest commitments: a head this recent is proved without a replay.

Each costs only the interior nodes its successors copied (about log2 n per changed good)."""

KEEP_SPAN = 1 << 20
"""Leaves from the oldest kept commitment snapshot to the newest, at most (the newest is
always kept): bounds their memory.

A snapshot keeps alive every node later batches replaced, about one interior per good they
changed (a million after a bulk batch of 10^6 codes, ~130 MB); without a bound 256 snapshots
of bulk batches would hold 256 old maps."""

KEEP_SERVED = 16
"""Snapshots kept for the heads proofs were last asked for (least recently used goes)."""

PRIMARY_TYPE = "StateCommitment"
"""The ``signed_records.primary_type`` of a commitment's payload record."""

_STATE_COMMITMENT = int(EntryKind.STATE_COMMITMENT)


@dataclass(frozen=True)
class StateProof:
    """A good's value in the state map (or its absence) as of one head's commitment."""

    #: The STATE_COMMITMENT entry at leaf ``tree_size - 1`` of the head.
    commitment: LoggedEntry
    map_root: bytes
    #: ``registry.statemap.map_key(good_type, fingerprint)``.
    key: bytes
    #: None: the good has no entry below the commitment.
    value: MapValue | None
    #: Inclusion of ``value.value_hash()`` (or absence) under ``map_root``.
    proof: MapProof


class StateMapCache:
    """The state map of one registry process, kept in step with its database."""

    def __init__(self) -> None:
        # One writer at a time: StateMap is single-threaded; snapshots are read lock-free.
        self._lock = threading.Lock()
        self._map = StateMap()
        #: The leaves [0, _version) are in _map.
        self._version = 0
        self._empty = self._map.snapshot()
        self._recent: OrderedDict[int, MapSnapshot] = OrderedDict()
        self._served: OrderedDict[int, MapSnapshot] = OrderedDict()
        #: Bumped whenever the live map is rewound: a staged run is only good in the
        #: generation it was started in.
        self._generation = 0
        self._staged: _StagedRun | None = None

    @property
    def version(self) -> int:
        """How many leaves the live map covers (it may run ahead of a rolled-back log)."""
        return self._version

    # -- the writer's side: one commitment per head --------------------------------------------

    def append_commitment(self, conn: Connection, *, actor: bytes, now: int) -> int:
        """Append the STATE_COMMITMENT leaf for the log's current size, unless its last leaf
        already is one; returns the log's size after it. The caller owns the (write)
        transaction; the log's lock is taken here."""
        size = log.lock_log(conn)
        if size > 0 and _kind_at(conn, size - 1) == _STATE_COMMITMENT:
            return size
        root = self.commit(conn, size)
        entry_id, _ = log_registry_record(
            conn,
            StateCommitmentPayload(map_root=root, covers=size),
            primary_type=PRIMARY_TYPE,
            kind=EntryKind.STATE_COMMITMENT,
            good_type=NO_GOOD,
            fingerprint=root,
            signer=actor,
            now=now,
        )
        # Leaf ``size``, ahead of any entries still queued: it covers exactly the leaves
        # before it.
        log.integrate_entry(conn, entry_id, now=now)
        return size + 1

    def commit(self, conn: Connection, size: int) -> bytes:
        """The root of the map over the log's first ``size`` leaves, as this transaction sees
        them, remembered as the snapshot of a commitment at leaf ``size``."""
        with self._lock:
            run, self._staged = self._staged, None
            if run is not None and run.holds(self, conn, size):
                # This transaction's bulk batch is in the map already: only what follows it
                # is read back.
                run.flush(self._map)
                self._replay_live(conn, run.end, size)
            else:
                self._catch_up(conn, size)
            snapshot = self._map.snapshot()
            _remember(self._recent, size, snapshot, KEEP_COMMITMENTS, KEEP_SPAN)
            return snapshot.root

    def take_batch_leaves(
        self,
        conn: Connection,
        first: int,
        good_type: int,
        fingerprints: list[bytes],
        leaf_hashes: list[bytes],
    ) -> Callable[[], None] | None:
        """A bulk batch's chunk, as the bulk writer appends it at leaves ``first`` on
        (``batches.LEAVES_HOOK``, set by ``leaves_from_batches``): the map takes it from
        memory, so a batch of 10^6 goods is not read back before its commitment.

        Returns the merge of the staged chunks into the live map (else None: staged until
        ``STAGED_FLUSH``), for the writer to run while the server checks the chunk's rows;
        it needs no connection."""
        with self._lock:
            run = self._staged
            transaction = conn.get_transaction()
            if run is None or not run.continues(self, transaction, first):
                # The live map must hold exactly the leaves before the batch first.
                self._catch_up(conn, first)
                run = self._staged = _StagedRun(transaction, self._generation, first)
            run.add(good_type, fingerprints, leaf_hashes)
            self._version = run.end
            overlaps = conn.dialect.name == "postgresql"
            if overlaps or run.staged >= STAGED_FLUSH:
                return partial(self._merge_staged, run)
            return None

    def _merge_staged(self, run: _StagedRun) -> None:
        with self._lock:
            # A reader that rewound the live map meanwhile (a new generation) voids the run:
            # the commitment then catches up from the database instead.
            if self._staged is run and run.generation == self._generation:
                run.flush(self._map)

    # -- the reader's side: the map as of a commitment -----------------------------------------

    def snapshot_at(self, conn: Connection, covers: int, root: bytes) -> MapSnapshot:
        """The map as of the commitment at leaf ``covers`` whose root is ``root``: a kept
        snapshot, the live map caught up to it, or a replay from leaf 0 on the side."""
        with self._lock:
            for kept in (self._served, self._recent):
                snapshot = kept.get(covers)
                if snapshot is not None and snapshot.root == root:
                    _remember(self._served, covers, snapshot, KEEP_SERVED)
                    return snapshot
            if covers >= max(self._recent, default=0):
                # The live map is behind (another process sequenced): catch it up.
                self._catch_up(conn, covers + 1)
                snapshot = self._recent.get(covers)
                if snapshot is not None and snapshot.root == root:
                    _remember(self._served, covers, snapshot, KEEP_SERVED)
                    return snapshot
            # An old head no snapshot is kept for: replay it on the side from the newest
            # kept snapshot the database confirms below it, without the lock (the live map
            # goes on serving the sequencer meanwhile).
            base_covers, base = self._base(conn, covers + 1)
        tree = StateMap()
        tree.rewind(base)
        statereplay.replay(conn, tree, base_covers + 1 if base_covers else 0, covers, _ignore)
        snapshot = tree.snapshot()
        statereplay.check_root(covers, snapshot.root, root)
        with self._lock:
            _remember(self._served, covers, snapshot, KEEP_SERVED)
        return snapshot

    # -- catching up ---------------------------------------------------------------------------

    def _catch_up(self, conn: Connection, size: int) -> None:
        """Make the live map cover the log's first ``size`` leaves (the lock is held)."""
        covers, base = self._base(conn, size)
        self._map.rewind(base)
        self._generation += 1
        self._version = covers
        # The commitment at leaf ``covers`` itself is not in the map: replay after it.
        self._replay_live(conn, covers + 1 if covers else 0, size)

    def _replay_live(self, conn: Connection, start: int, size: int) -> None:
        statereplay.replay(
            conn,
            self._map,
            start,
            size,
            lambda at, snapshot: _remember(self._recent, at, snapshot, KEEP_COMMITMENTS, KEEP_SPAN),
        )
        self._version = max(size, self._version)

    def _base(self, conn: Connection, size: int) -> tuple[int, MapSnapshot]:
        """The newest kept snapshot the database confirms below ``size`` (else the empty map)."""
        kept: dict[int, MapSnapshot] = {**self._served, **self._recent}
        for covers in sorted((c for c in kept if 0 < c < size), reverse=True):
            snapshot = kept[covers]
            row = conn.execute(
                select(entries_t.c.kind, entries_t.c.fingerprint).where(
                    entries_t.c.leaf_index == covers
                )
            ).first()
            if row is None or row.kind != _STATE_COMMITMENT:
                continue
            if bytes(row.fingerprint) == snapshot.root:
                return covers, snapshot
        return 0, self._empty


STAGED_FLUSH = 1 << 18
"""Entries of a bulk batch gathered before they are merged into the live map: one merge per
this many (each merge descends the whole map: fewer is faster, this bounds the memory).

NOTE: on PostgreSQL each chunk is merged on its own instead, while the server checks that
chunk's COPY (``pgbulk.copy_rows``' ``during``): a merge the server's work hides costs
nothing, a larger one after it its whole time."""


class _StagedRun:
    """A bulk batch's leaves taken from memory by one transaction, merged into the live map
    as they come (``StateMapCache.take_batch_leaves``)."""

    def __init__(self, transaction: object, generation: int, first: int) -> None:
        # NOTE: the transaction object itself, held, so its identity cannot be reused: a
        # run is never taken for another transaction's (a rolled-back batch's) leaves.
        self.transaction = transaction
        self.generation = generation
        self.first = self.end = first
        #: Chunks not merged yet: (first leaf index, good type, fingerprints, leaf hashes).
        self.pending: list[tuple[int, int, list[bytes], list[bytes]]] = []
        self.staged = 0

    def continues(self, cache: StateMapCache, transaction: object, first: int) -> bool:
        return (
            self.transaction is transaction
            and self.generation == cache._generation
            and self.end == first
        )

    def holds(self, cache: StateMapCache, conn: Connection, size: int) -> bool:
        """Whether the live map plus this run is exactly the log's leaves [0, end) as
        ``conn``'s transaction sees them, end <= size."""
        transaction = conn.get_transaction()
        return (
            transaction is not None
            and transaction.is_active
            and self.continues(cache, transaction, self.end)
            and self.end <= size
        )

    def add(self, good_type: int, fingerprints: list[bytes], leaf_hashes: list[bytes]) -> None:
        if len(fingerprints) != len(leaf_hashes):
            raise ValueError("a chunk has one leaf hash per fingerprint")
        self.pending.append((self.end, good_type, fingerprints, leaf_hashes))
        self.end += len(fingerprints)
        self.staged += len(fingerprints)

    def flush(self, tree: StateMap) -> None:
        if not self.pending:
            return
        # The keys are hashed here, not when staged: in the merge's time, which the
        # server's work hides.
        entries: list[tuple[bytes, int, bytes]] = []
        for first, good_type, fingerprints, leaf_hashes in self.pending:
            keys = map_keys(good_type, fingerprints)
            entries.extend(zip(keys, range(first, first + len(keys)), leaf_hashes, strict=True))
        tree.append(entries)
        self.pending = []
        self.staged = 0


@contextmanager
def leaves_from_batches(conn: Connection, cache: StateMapCache | None) -> Iterator[None]:
    """Within the block, bulk batches written on ``conn`` hand their leaves to ``cache``
    (``batches.LEAVES_HOOK``) instead of the map reading them back at the commitment."""
    if cache is None:
        yield
        return
    conn.info[LEAVES_HOOK] = cache.take_batch_leaves
    try:
        yield
    finally:
        # NOTE: ``Connection.info`` lives as long as the pooled connection: never leave
        # the hook behind for the next transaction.
        conn.info.pop(LEAVES_HOOK, None)


def _ignore(covers: int, snapshot: MapSnapshot) -> None:
    """A side replay keeps no snapshot but the one it was asked for."""


def _remember(
    kept: OrderedDict[int, MapSnapshot],
    covers: int,
    snapshot: MapSnapshot,
    limit: int,
    span: int | None = None,
) -> None:
    """Keep ``snapshot`` as the newest; drop the oldest beyond ``limit`` snapshots, or (with
    ``span``) more than ``span`` leaves before the newest."""
    kept[covers] = snapshot
    kept.move_to_end(covers)
    while len(kept) > limit:
        kept.popitem(last=False)
    if span is not None:
        newest = max(kept)
        for old in [c for c in kept if c < newest - span]:
            del kept[old]


# -- reading a head's commitment -----------------------------------------------------------------


def head_commitment(conn: Connection, tree_size: int) -> LoggedEntry | None:
    """The STATE_COMMITMENT entry that ends the head of ``tree_size``: None when that head
    ends in another entry (signed before issue 14), ``NotFound`` when there is no such head."""
    head = conn.execute(select(heads_t.c.tree_size).where(heads_t.c.tree_size == tree_size))
    if head.first() is None:
        raise NotFound(f"no signed tree head of size {tree_size}")
    row = conn.execute(select(entries_t).where(entries_t.c.leaf_index == tree_size - 1)).first()
    if row is None or row.kind != _STATE_COMMITMENT:
        return None
    return LoggedEntry.from_row(row._mapping)


def commitment_payload(conn: Connection, entry: LoggedEntry) -> StateCommitmentPayload:
    """The payload a STATE_COMMITMENT entry's record holds (checked against the entry)."""
    stored = conn.execute(
        select(records_t.c.payload).where(records_t.c.id == entry.record_id)
    ).scalar_one()
    payload = StateCommitmentPayload.from_json(stored)
    if (
        payload.payload_hash() != entry.payload_hash
        or payload.map_root != entry.fingerprint
        or payload.covers != entry.leaf_index
    ):
        raise LogCorrupt(
            f"the state commitment at leaf {entry.leaf_index} disagrees with its record"
        )
    return payload


__all__ = [
    "KEEP_COMMITMENTS",
    "KEEP_SERVED",
    "KEEP_SPAN",
    "PRIMARY_TYPE",
    "StateMapCache",
    "StateProof",
    "commitment_payload",
    "head_commitment",
    "leaves_from_batches",
]


def _kind_at(conn: Connection, leaf_index: int) -> int | None:
    kind = conn.execute(
        select(entries_t.c.kind).where(entries_t.c.leaf_index == leaf_index)
    ).scalar_one_or_none()
    return None if kind is None else int(kind)
