"""The registry's reads of its log, mixed into ``registry.service.Registry``.

Signed heads, inclusion and consistency proofs, entries and a good's history, a bulk batch's
proof, the state map's proofs (issue 14) and the whole log's audit: each in a read
transaction of its own. Kept apart so the facade stays one screen per concern.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from registry import entries, log, statecommit
from registry.audit import LogReport, check_log
from registry.batchproof import BatchProof
from registry.db import read_transaction
from registry.entries import LoggedEntry
from registry.errors import NotFound
from registry.fingerprints import GoodType
from registry.payloads import StateCommitmentPayload, signed_payload_from_json
from registry.records import records_t
from registry.statecommit import StateMapCache, StateProof
from registry.statemap import map_key
from registry.tilestore import TileCache
from registry.treehead import TreeHead


class LogDesk:
    """Read the log: heads, proofs, entries, batch and state proofs, the audit."""

    # Provided by ``Registry``.
    engine: Engine
    tile_cache: TileCache
    state_cache: StateMapCache

    @property
    def address(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def latest_tree_head(self) -> TreeHead | None:
        with read_transaction(self.engine) as conn:
            return log.latest_tree_head(conn)

    def tree_head(self, size: int) -> TreeHead:
        with read_transaction(self.engine) as conn:
            head = log.tree_head_at(conn, size)
        if head is None:
            raise NotFound(f"no signed tree head of size {size}")
        return head

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            return log.inclusion_proof(conn, leaf_index, tree_size, self.tile_cache)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        with read_transaction(self.engine) as conn:
            return log.consistency_proof(conn, size1, size2, self.tile_cache)

    def entry_at(self, leaf_index: int) -> LoggedEntry:
        with read_transaction(self.engine) as conn:
            return entries.entry_at(conn, leaf_index)

    def batch_proof(self, entry: LoggedEntry) -> BatchProof:
        """For a good registered (or revoked) in a bulk batch: the proof that the creator's one
        signature over the batch's items root covers this very fingerprint (DESIGN.md,
        "Proof bundle", ``batch_proof``)."""
        if entry.position is None:
            raise NotFound("the entry was not part of a bulk batch")
        with read_transaction(self.engine) as conn:
            payload = conn.execute(
                select(records_t.c.payload).where(records_t.c.id == entry.record_id)
            ).scalar_one()
            message = signed_payload_from_json(payload).signed.message
            count = int(message["count"])
            proof = log.batch_inclusion_proof(conn, entry.record_id, entry.position, count)
        return BatchProof(
            items_root=bytes(message["itemsRoot"]),
            position=entry.position,
            count=count,
            inclusion_proof=tuple(proof),
        )

    def state_proof(
        self, good_type: GoodType, fingerprint: bytes, tree_size: int
    ) -> StateProof | None:
        """The good's value in the state map (or its absence) as of the head of ``tree_size``,
        proved against the root its last leaf, a STATE_COMMITMENT, carries (issue 14).

        None when that head does not end in a commitment (a head signed before issue 14);
        ``NotFound`` when there is no head of that size. The head may be older than the
        latest (bundles use the newest anchored head): the proof is for the map as of its
        commitment, served from a kept snapshot, by catching up, or by a replay on the side
        (``registry.statecommit``)."""
        key = map_key(good_type, fingerprint)
        with read_transaction(self.engine) as conn:
            commitment = statecommit.head_commitment(conn, tree_size)
            if commitment is None:
                return None
            assert commitment.leaf_index is not None
            snapshot = self.state_cache.snapshot_at(
                conn, commitment.leaf_index, commitment.fingerprint
            )
        return StateProof(
            commitment=commitment,
            map_root=snapshot.root,
            key=key,
            value=snapshot.value(key),
            proof=snapshot.prove(key),
        )

    def state_commitment(self, tree_size: int) -> tuple[LoggedEntry, StateCommitmentPayload] | None:
        """The STATE_COMMITMENT entry that ends the head of ``tree_size`` and its payload; None
        when that head does not end in one, ``NotFound`` when there is no such head."""
        with read_transaction(self.engine) as conn:
            commitment = statecommit.head_commitment(conn, tree_size)
            if commitment is None:
                return None
            return commitment, statecommit.commitment_payload(conn, commitment)

    def check_log(self) -> LogReport:
        """Rebuild the whole log from its entries and compare with tiles and signed heads."""
        with read_transaction(self.engine) as conn:
            return check_log(conn, self.address)

    def history(self, good_type: GoodType, fingerprint: bytes) -> list[LoggedEntry]:
        """Every entry naming the good, in log order (queued ones last)."""
        with read_transaction(self.engine) as conn:
            return entries.history(conn, good_type, fingerprint)
