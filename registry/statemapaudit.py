"""The map auditor (issue 14): replay the log's good entries over the state map and check
that every state commitment carries the root they give.

The log commits to the map through its own entries: a ``STATE_COMMITMENT`` leaf at index C
carries, in its fingerprint word, the root of the map holding exactly the good entries
(good_type != NO_GOOD) at leaves below C, each good's value chained over its entries' leaf
hashes in log order (registry.statemap). Anyone holding the leaves can replay them and must
reach the same roots; a root that disagrees with its entries is a ``LogCorrupt`` alarm.

A ``MapAuditor`` starts from an empty map (the whole log, ``tracemark log check``) or from a
map a monitor already holds at head A (``MapAuditor.resume``), and ``audit_range`` checks a
range A..B: the map moved only as the log's entries between the two heads say.

NOTE: the leaves an auditor is fed are not authenticated here (check_log rebuilds the log's
root from the same leaves; a monitor checks them against head B itself). What the replay
proves is that the committed roots and the entries agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from registry.edges import to_hex
from registry.errors import InvalidInput, LogCorrupt
from registry.fingerprints import GoodType
from registry.leaf import (
    LEAF_SIZE,
    NO_GOOD,
    WORD_SIZE,
    EntryKind,
    LeafData,
    leaf_prefix,
)
from registry.merkle import hash_leaf
from registry.payloads import StateCommitmentPayload
from registry.statemap import map_keys
from registry.statemaptree import MapSnapshot, StateMap

MAX_PENDING_ENTRIES = 100_000
"""Good entries the auditor holds before folding them into the map, between commitments.

Threat: a long stretch without a commitment (a log from before commitments existed: its
first commitment covers every entry before it) held as one list grows with the log. Folding
early gives the same map (StateMap.append chains each key's entries in log order, whatever
the batches), and 100,000 keeps the batches large enough for its one-descent merge to pay.
"""

_PREFIX_SIZE = 3 * WORD_SIZE
_FINGERPRINT = slice(3 * WORD_SIZE, 4 * WORD_SIZE)
_ACTOR_PADDING = slice(4 * WORD_SIZE, 4 * WORD_SIZE + 12)
_PAYLOAD_HASH = slice(5 * WORD_SIZE, 6 * WORD_SIZE)
_TIME_PADDING = slice(6 * WORD_SIZE, 6 * WORD_SIZE + 24)


def _leaf_kinds() -> dict[bytes, tuple[EntryKind, int]]:
    """Every valid first three words of a v1 leaf (version, kind, good_type), to what they say."""
    kinds = {}
    for kind in EntryKind:
        for good_type in (NO_GOOD, *GoodType):
            try:
                kinds[leaf_prefix(kind, good_type)] = (kind, int(good_type))
            except InvalidInput:
                continue  # a good's kind with NO_GOOD, or a subject's kind with a good type
    return kinds


# NOTE: a strict decode in one dict lookup and two slice compares (LeafData.decode costs
# ~20 us a leaf, more than the replay itself). The lookup checks the version, both paddings
# and the (kind, good_type) pair at once; the remaining rules are the actor's and the
# timestamp's zero padding. A test holds it to LeafData.decode on mutated leaves.
_LEAF_KINDS = _leaf_kinds()


@dataclass(frozen=True, slots=True)
class MapAudit:
    """What an audit proved: the good entries of leaves [first_leaf, tree_size), replayed over
    the map held at first_leaf, give the root every state commitment among them carries."""

    first_leaf: int
    tree_size: int
    #: How many state commitments were checked (each agreed, or the audit would have raised).
    commitments: int
    #: The map root the entries give at tree_size.
    root: bytes
    #: Whether leaf tree_size - 1 is a state commitment, so that ``root`` is committed by the
    #: log at tree_size (every head signed since commitments exist ends with one).
    committed: bool


class MapAuditor:
    """The state map replayed from the log's leaves, fed one leaf at a time in log order.

    One writer at a time, as the StateMap it holds.
    """

    __slots__ = (
        "_commitments",
        "_last_commitment",
        "_map",
        "_pending",
        "_pending_count",
        "_tree_size",
    )

    def __init__(self) -> None:
        self._map = StateMap()
        self._tree_size = 0
        self._commitments = 0
        self._last_commitment: int | None = None
        # Good entries not folded into the map yet, per good type (keys are made a good type
        # at a time, map_keys' bulk form): fingerprints, leaf indices and leaf hashes, in log
        # order.
        self._pending: dict[int, tuple[list[bytes], list[int], list[bytes]]] = {}
        self._pending_count = 0

    @classmethod
    def resume(cls, held: MapSnapshot, tree_size: int, committed_root: bytes) -> MapAuditor:
        """The auditor of a monitor that holds the map at head tree_size (``snapshot()`` of an
        earlier audit), checked against the root that head's state commitment carries.

        The held snapshot stays as it was (snapshots are never changed by later updates).
        """
        if not isinstance(tree_size, int) or isinstance(tree_size, bool) or tree_size < 0:
            raise InvalidInput("the tree size a map is held at is a non-negative integer")
        if held.root != committed_root:
            raise InvalidInput(
                f"the map held at tree size {tree_size} has root {to_hex(held.root)}, "
                f"not the committed root {to_hex(committed_root)}"
            )
        auditor = cls()
        auditor._map.rewind(held)
        auditor._tree_size = tree_size
        return auditor

    @property
    def tree_size(self) -> int:
        """The leaves replayed so far: the next leaf to advance is this index."""
        return self._tree_size

    @property
    def commitments(self) -> int:
        """How many state commitments were checked (agreeing or not)."""
        return self._commitments

    @property
    def last_commitment(self) -> int | None:
        """The leaf index of the last state commitment met, or None."""
        return self._last_commitment

    def snapshot(self) -> MapSnapshot:
        """The map as of tree_size, never changed by what the auditor replays next: what a
        monitor keeps to resume from, and reads goods' values from."""
        self._fold()
        return self._map.snapshot()

    def root(self) -> bytes:
        """The map root the leaves replayed so far give."""
        self._fold()
        return self._map.root()

    def advance(
        self, leaf_index: int, leaf_data: bytes, payload: StateCommitmentPayload | None = None
    ) -> None:
        """Replay leaf leaf_index (the next one); at a state commitment, check its root.

        ``payload``: a state commitment's payload, when the caller has it; it is then checked
        against the leaf (its hash, its ``covers`` and ``map_root``) as well.

        Raises InvalidInput for leaf data that is not a v1 leaf, and LogCorrupt for a leaf out
        of order (both change nothing) or a commitment that disagrees. NOTE: a disagreeing
        commitment is taken in before the raise: the auditor goes on with the map the
        entries give, so a caller that reports and continues finds every bad commitment.
        """
        if leaf_index != self._tree_size:
            raise LogCorrupt(
                f"the map audit expected leaf {self._tree_size} next, got leaf {leaf_index}"
            )
        kind, good_type = self._decode(leaf_index, leaf_data)
        if good_type != NO_GOOD:
            fingerprints, leaf_indices, leaf_hashes = self._pending.setdefault(
                good_type, ([], [], [])
            )
            fingerprints.append(leaf_data[_FINGERPRINT])
            leaf_indices.append(leaf_index)
            leaf_hashes.append(hash_leaf(leaf_data))
            self._pending_count += 1
            self._tree_size += 1
            if self._pending_count >= MAX_PENDING_ENTRIES:
                self._fold()
            return
        self._tree_size += 1
        if kind is EntryKind.STATE_COMMITMENT:
            self._commitments += 1
            self._last_commitment = leaf_index
            self._check_commitment(leaf_index, leaf_data, payload)

    def _decode(self, leaf_index: int, leaf_data: bytes) -> tuple[EntryKind, int]:
        """The leaf's kind and good_type word, decoded as strictly as LeafData.decode."""
        if type(leaf_data) is bytes and len(leaf_data) == LEAF_SIZE:
            what = _LEAF_KINDS.get(leaf_data[:_PREFIX_SIZE])
            if (
                what is not None
                and not any(leaf_data[_ACTOR_PADDING])
                and not any(leaf_data[_TIME_PADDING])
            ):
                return what
        try:
            LeafData.decode(leaf_data)
        except InvalidInput as exc:
            raise InvalidInput(f"leaf {leaf_index}: {exc}") from None
        raise InvalidInput(f"leaf {leaf_index} is not a v1 leaf")  # pragma: no cover

    def _check_commitment(
        self, leaf_index: int, leaf_data: bytes, payload: StateCommitmentPayload | None
    ) -> None:
        committed = leaf_data[_FINGERPRINT]
        where = f"state commitment at leaf {leaf_index}"
        # 1. The payload, when given, is the one the leaf commits to, and says the same.
        if payload is not None:
            _check_payload(where, leaf_index, leaf_data, committed, payload)
        # 2. The entries before it replay to the root it carries.
        replayed = self.root()
        if replayed != committed:
            raise LogCorrupt(
                f"{where}: committed map root {to_hex(committed)}, but the entries before "
                f"it replay to {to_hex(replayed)}"
            )

    def _fold(self) -> None:
        """Chain the pending entries onto the map: one sorted batch (StateMap.append)."""
        if not self._pending_count:
            return
        pending, self._pending, self._pending_count = self._pending, {}, 0
        # Keys of two good types never collide, so the types' entries may follow each other
        # in any order: each key's own entries stay in log order.
        self._map.append(
            itertools.chain.from_iterable(
                zip(map_keys(good_type, fingerprints), leaf_indices, leaf_hashes, strict=True)
                for good_type, (fingerprints, leaf_indices, leaf_hashes) in pending.items()
            )
        )


def _check_payload(
    where: str,
    leaf_index: int,
    leaf_data: bytes,
    committed: bytes,
    payload: StateCommitmentPayload,
) -> None:
    if payload.payload_hash() != leaf_data[_PAYLOAD_HASH]:
        raise LogCorrupt(f"{where}: its payload does not hash to the leaf's payload hash")
    if payload.covers != leaf_index:
        raise LogCorrupt(f"{where}: its payload covers {payload.covers}, not its own leaf index")
    if payload.map_root != committed:
        raise LogCorrupt(
            f"{where}: its payload's map root {to_hex(payload.map_root)} is not the leaf's "
            f"{to_hex(committed)}"
        )


def audit_range(
    auditor: MapAuditor,
    leaves: Iterable[tuple[int, bytes]],
    tree_size: int,
    *,
    payloads: Mapping[int, StateCommitmentPayload] | None = None,
) -> MapAudit:
    """Replay leaves [auditor.tree_size, tree_size) and check every state commitment among
    them (with its payload, from ``payloads`` by leaf index, where given).

    Raises LogCorrupt at the first disagreement, or when the leaves do not run exactly to
    tree_size; returns what was proved.
    """
    first_leaf, commitments = auditor.tree_size, auditor.commitments
    if tree_size < first_leaf:
        raise InvalidInput(f"a range cannot end at {tree_size}, before its start {first_leaf}")
    found = payloads or {}
    for leaf_index, leaf_data in leaves:
        if leaf_index >= tree_size:
            raise LogCorrupt(f"leaf {leaf_index} is beyond the range's end, tree size {tree_size}")
        auditor.advance(leaf_index, leaf_data, found.get(leaf_index))
    if auditor.tree_size != tree_size:
        raise LogCorrupt(
            f"the leaves stop short of tree size {tree_size}: leaf {auditor.tree_size} is missing"
        )
    return MapAudit(
        first_leaf=first_leaf,
        tree_size=tree_size,
        commitments=auditor.commitments - commitments,
        root=auditor.root(),
        committed=auditor.last_commitment == tree_size - 1,
    )


__all__ = ["MAX_PENDING_ENTRIES", "MapAudit", "MapAuditor", "audit_range"]
