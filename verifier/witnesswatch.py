"""Comparing a witness's view of the log with the monitor's (tlog-witness "Monitor Retrieval").

A witness serves the latest checkpoint it cosigned at ``<monitoring prefix>/<hex SHA-256 of
the origin>/checkpoint``. A log that shows the monitor one tree and the witnesses another is
caught here: the witness's checkpoint must carry the log's own signature (pinned vkeys), and
be the monitor's checkpoint (same size) or consistent with it, by a consistency proof built
from the log's tiles (``registry.merkle.consistency_plan``; each node the Merkle tree hash of
a run of one tile's hashes) and checked by ``verify_consistency``. Two log-signed checkpoints
no proof can join are a split view: the alarm carries both notes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.checkpoint import Checkpoint, open_checkpoint
from registry.errors import InvalidInput, InvalidProof, NotFound
from registry.merkle import (
    HASH_SIZE,
    NodeId,
    consistency_plan,
    root_from_leaf_hashes,
    verify_consistency,
)
from registry.note import NoteError, NoteVerifier
from registry.tiles import TILE_HEIGHT, TILE_WIDTH
from registry.tlogtiles import TileRef, tile_at
from verifier.problems import RegistryUnreachable, UnexpectedAnswer
from verifier.tiledtree import LogInconsistent
from verifier.tlogclient import MAX_CHECKPOINT_BYTES, TlogClient


def monitoring_path(origin: str) -> str:
    """The witness's path of ``origin``'s checkpoint below its monitoring prefix."""
    return hashlib.sha256(origin.encode()).hexdigest() + "/checkpoint"


@dataclass(frozen=True)
class WitnessView:
    """What one witness said: ``status`` is ``same`` (the monitor's checkpoint), ``behind`` or
    ``ahead`` (consistent with it, proved from the tiles), ``not-cosigned`` (404),
    ``unreachable``, ``unverifiable`` (tiles missing for the proof) or ``refused`` (not a
    checkpoint the log signed: the witness's problem, not the log's)."""

    url: str
    status: str
    size: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "size": self.size, "detail": self.detail}


TileFetcher = Callable[[Sequence[TileRef]], Sequence[bytes]]


def consistency_from_tiles(size1: int, size2: int, fetch: TileFetcher) -> list[bytes]:
    """The consistency proof from ``size1`` to ``size2`` (size1 <= size2), its nodes read from
    the C2SP tiles of the tree of ``size2``."""
    plan = consistency_plan(size1, size2)
    places: dict[NodeId, tuple[TileRef, int, int]] = {}
    for level, index in plan.node_ids:
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # its leftmost hash in tile level tile_level
        ref = tile_at(tile_level, first // TILE_WIDTH, size2)
        places[(level, index)] = (ref, first % TILE_WIDTH, 1 << height)
    refs = sorted({ref for ref, _, _ in places.values()}, key=lambda r: (r.level, r.index))
    tiles = dict(zip(refs, fetch(refs), strict=True))
    hashes = {}
    for node, (ref, begin, count) in places.items():
        data = tiles[ref]
        if len(data) != ref.width * HASH_SIZE:
            raise LogInconsistent("tiles", f"{ref.path()} has {len(data)} bytes")
        run = [
            data[offset : offset + HASH_SIZE]
            for offset in range(begin * HASH_SIZE, (begin + count) * HASH_SIZE, HASH_SIZE)
        ]
        hashes[node] = root_from_leaf_hashes(run)
    return plan.assemble(hashes)


def check_witness(
    witness: TlogClient,
    log: TlogClient,
    verifiers: Sequence[NoteVerifier],
    ours: Checkpoint,
    our_note: bytes,
) -> WitnessView:
    """Compare the checkpoint the witness at ``witness`` cosigned with ``ours`` (verified).

    Raises ``LogInconsistent`` (``split-view``) when the log signed both and they cannot be
    the same tree; anything the witness gets wrong is a ``WitnessView``, never an alarm.
    """
    url = witness.prefix
    try:
        note = witness.get(monitoring_path(ours.origin), MAX_CHECKPOINT_BYTES)
    except (RegistryUnreachable, UnexpectedAnswer) as exc:
        return WitnessView(url, "unreachable", detail=exc.detail)
    if note is None:
        return WitnessView(url, "not-cosigned")
    try:
        theirs, _ = open_checkpoint(note, verifiers, origin=ours.origin)
    except NoteError as exc:
        return WitnessView(url, "refused", detail=exc.detail)
    evidence = (our_note, note)
    if theirs.size == ours.size:
        if theirs.root != ours.root:
            raise LogInconsistent(
                "split-view",
                f"the witness at {url} cosigned size {theirs.size} with root "
                f"{base64.b64encode(theirs.root).decode()}, the log showed this monitor "
                f"{base64.b64encode(ours.root).decode()}",
                evidence,
            )
        return WitnessView(url, "same", theirs.size)
    small, large = (theirs, ours) if theirs.size < ours.size else (ours, theirs)
    try:
        proof = consistency_from_tiles(
            small.size, large.size, lambda refs: list(log.resources(refs))
        )
    except (RegistryUnreachable, UnexpectedAnswer, InvalidInput, NotFound) as exc:
        # The tiles of the larger size are not served (yet): the next step may tell.
        return WitnessView(url, "unverifiable", theirs.size, exc.detail)
    try:
        verify_consistency(small.size, large.size, proof, small.root, large.root)
    except InvalidProof as exc:
        raise LogInconsistent(
            "split-view",
            f"the witness at {url} cosigned size {theirs.size}, which the log's tiles do not "
            f"join to size {ours.size} verified here ({exc.detail})",
            evidence,
        ) from None
    return WitnessView(url, "behind" if theirs.size < ours.size else "ahead", theirs.size)


__all__ = ["WitnessView", "check_witness", "consistency_from_tiles", "monitoring_path"]
