"""Building a good's proof bundle (``verifier.bundle``) or the proof that a good is not
registered (``verifier.absence``) from the registry's log, state map and anchors.

The head: the largest anchored one (state mined or final) that covers the good's REGISTER
entry and has a signed tree head of exactly the anchored size and root; if none does yet, the
latest signed head, with ``anchor`` null. The state (issue 14): the good's value in the map
the head's last leaf, a STATE_COMMITMENT, commits to, with its map proof. The checkpoint
(issue 15): the head's C2SP checkpoint as the registry holds it (``registry.checkpoints``),
the log's signatures and every witness's cosignature. ``readmodels.exports`` builds each good
of an export with the same entry builder.

NOTE: the registry's storage (sqlalchemy) is imported when a function runs, not with the
module: the command line imports the export writer, and so this, for every command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from anchoring.states import ANCHORED
from registry.errors import Conflict, InvalidInput, NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import LEAF_VERSION, EntryKind
from registry.payloads import StateCommitmentPayload
from registry.treehead import TreeHead
from verifier.absence import FORMAT_V2 as ABSENCE_FORMAT
from verifier.absence import Absence
from verifier.bundle import (
    FORMAT_V4,
    MAX_BUNDLE_ENTRIES,
    AnchorPointer,
    Bundle,
    BundleEntry,
    BundleState,
    GoodRef,
    SubjectEntry,
)

if TYPE_CHECKING:
    from registry.entries import LoggedEntry
    from registry.service import Registry


class GoodRegistered(Conflict):
    """An absence proof was asked for a good the log holds: its proof bundle says what it is."""

    code = "good-registered"
    diagnostics = "The good is registered: fetch its proof bundle (.../proof) instead."


# -- building one ---------------------------------------------------------------


def build_bundle(
    registry: Registry, good_type: GoodType, fingerprint: bytes, *, covering: int | None = None
) -> Bundle:
    """The proof bundle of a good (``tracemark-bundle/v4``), against the best head there is.

    The head: the largest anchored one (state mined or final) that covers the good's
    REGISTER entry and has a signed tree head of exactly the anchored size and root; if none
    does yet, the latest signed head, with ``anchor`` null. The good's other entries under
    that head travel with it, and its value in the head's state map proves they are all; the
    rest are counted in ``pending_entries``. The head's checkpoint travels with its
    cosignatures.

    ``covering``: a leaf of the good's the head must cover too (an order's DELIVERY entry,
    for its evidence: ``readmodels.orderevidence``).

    Raises ``NotFound`` for a good the log does not have, or whose registration is still
    queued (nothing to prove yet).
    """
    history = registry.history(good_type, fingerprint)
    register = next(
        (e for e in history if e.kind is EntryKind.REGISTER and e.leaf_index is not None), None
    )
    if register is None:
        what = f"{good_type.name.lower()} {fingerprint_hex(fingerprint)}"
        if any(e.kind is EntryKind.REGISTER for e in history):
            raise NotFound(f"{what} is registered but still queued: no proof until it is logged")
        raise NotFound(f"no {what} is registered")
    assert register.leaf_index is not None
    head, anchor = _choose_head(registry, max(register.leaf_index, covering or 0))
    later = [
        e
        for e in history
        if e is not register and e.leaf_index is not None and e.leaf_index < head.tree_size
    ]
    if 1 + len(later) > MAX_BUNDLE_ENTRIES:
        raise InvalidInput(
            f"the good has {1 + len(later):,} entries; a v1 bundle carries at most "
            f"{MAX_BUNDLE_ENTRIES:,}"
        )
    identity = _identity_entry(registry, register.actor, head.tree_size)
    records = {e.record_id for e in (register, *later)}
    if identity is not None:
        records.add(identity.record_id)
    payloads = read_payloads(registry, records)
    return Bundle(
        format=FORMAT_V4,
        good=GoodRef(good_type=good_type, fingerprint=fingerprint),
        entry=bundle_entry(registry, register, payloads, head.tree_size),
        later_entries=tuple(bundle_entry(registry, e, payloads, head.tree_size) for e in later),
        pending_entries=len(history) - 1 - len(later),
        tree_head=head,
        anchor=anchor,
        creator_identity=None
        if identity is None
        else SubjectEntry(
            **_logged_fields(registry, identity, payloads[identity.record_id], head.tree_size)
        ),
        state=_state(registry, good_type, fingerprint, head.tree_size),
        checkpoint=head_checkpoint(registry, head.tree_size),
    )


def head_checkpoint(registry: Registry, tree_size: int) -> str | None:
    """The checkpoint of the head of ``tree_size`` as a signed note's text: the log's
    signatures and the cosignatures the registry gathered; None when it holds none (a head
    signed before issue 15). Published or not: a bundle's head is one the registry signed."""
    from registry.checkpoints import checkpoint_at
    from registry.db import read_transaction

    with read_transaction(registry.engine) as conn:
        signed = checkpoint_at(conn, tree_size)
    return None if signed is None else signed.to_bytes().decode("utf-8")


def build_absence(registry: Registry, good_type: GoodType, fingerprint: bytes) -> Absence:
    """The proof that a good is not in the log (``tracemark-absence/v2``), as of the largest
    anchored head that commits to the state map, else the latest signed head that does (with
    ``anchor`` null).

    Raises ``GoodRegistered`` for a good the registry has an entry of (logged or queued: its
    proof bundle, once logged, is the answer), ``NotFound`` when no head commits to the state
    map yet (a log from before it, or empty).
    """
    what = f"{good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    if registry.history(good_type, fingerprint):
        raise GoodRegistered(
            f"{what} is registered: its proof bundle is at "
            f"/v1/goods/{good_type.name.lower()}/{fingerprint_hex(fingerprint)}/proof"
        )
    latest = registry.latest_tree_head()
    if latest is None:
        raise NotFound("the log has no signed head yet: no absence can be proved")
    anchored, anchor = _choose_head(registry, -1)
    candidates = [(anchored, anchor)]
    if latest.tree_size != anchored.tree_size:
        candidates.append((latest, None))
    for head, pointer in candidates:
        state = _state(registry, good_type, fingerprint, head.tree_size)
        if state is None:
            continue
        if state.value is not None:  # logged since the history was read
            raise GoodRegistered(f"{what} is registered as of head {head.tree_size:,}")
        return Absence(
            format=ABSENCE_FORMAT,
            good=GoodRef(good_type=good_type, fingerprint=fingerprint),
            tree_head=head,
            anchor=pointer,
            state=state,
            checkpoint=head_checkpoint(registry, head.tree_size),
        )
    raise NotFound("no signed head commits to the state map yet: no absence can be proved")


def _state(
    registry: Registry, good_type: GoodType, fingerprint: bytes, tree_size: int
) -> BundleState | None:
    """The good's value (or absence) in the state map of the head of ``tree_size``, or None
    when that head ends in no state commitment."""
    proof = registry.state_proof(good_type, fingerprint, tree_size)
    if proof is None:
        return None
    commitment = proof.commitment
    assert commitment.leaf_index is not None
    # The payload is the commitment's canonical one, rebuilt from what it commits to; the
    # verifier hashes it against the leaf's payload_hash, so a wrong one cannot pass.
    payload = StateCommitmentPayload(map_root=proof.map_root, covers=commitment.leaf_index)
    return BundleState(
        commitment=SubjectEntry(
            **_logged_fields(registry, commitment, payload.document(), tree_size)
        ),
        value=proof.value,
        map_proof=proof.proof,
    )


def _identity_entry(registry: Registry, creator: bytes, tree_size: int) -> LoggedEntry | None:
    from registry.identity import latest_identity_entry

    return latest_identity_entry(registry, creator, below=tree_size)


def _logged_fields(
    registry: Registry, entry: LoggedEntry, payload: dict[str, Any], tree_size: int
) -> dict[str, Any]:
    """What every logged entry carries: its leaf fields, payload and inclusion proof."""
    assert entry.leaf_index is not None and entry.timestamp is not None
    return {
        "version": LEAF_VERSION,
        "kind": entry.kind,
        "fingerprint": entry.fingerprint,
        "actor": entry.actor,
        "payload_hash": entry.payload_hash,
        "timestamp": entry.timestamp,
        "leaf_index": entry.leaf_index,
        "payload": payload,
        "inclusion_proof": tuple(registry.inclusion_proof(entry.leaf_index, tree_size)),
    }


def _choose_head(registry: Registry, leaf_index: int) -> tuple[TreeHead, AnchorPointer | None]:
    from sqlalchemy import select

    from anchoring.models import anchors_t
    from registry.db import read_transaction
    from registry.log import heads_t

    a = anchors_t.c
    # NOTE: the worker seals only signed heads (the latest one, also when it reseals), but a
    # head adopted from the chain after a restore is checked against the log's root only: the
    # join keeps to anchors whose exact (size, root) the registry signed.
    with read_transaction(registry.engine) as conn:
        row = conn.execute(
            select(a.tree_size, a.tx_hash, a.block_number, a.state)
            .join(heads_t, (heads_t.c.tree_size == a.tree_size) & (heads_t.c.root == a.root))
            .where(a.state.in_(ANCHORED), a.tree_size > leaf_index)
            .order_by(a.tree_size.desc())
            .limit(1)
        ).first()
    if row is None:
        latest = registry.latest_tree_head()
        if latest is None or latest.tree_size <= leaf_index:  # pragma: no cover - a logged
            raise NotFound("no signed tree head covers the entry yet")  # entry has a head
        return latest, None
    head = registry.tree_head(int(row.tree_size))
    return head, anchor_pointer(head, row)


def anchor_pointer(head: TreeHead, row: Any) -> AnchorPointer:
    """The pointer a bundle or an export carries to ``head``'s anchor (an ``anchors`` row with
    ``tx_hash``, ``block_number`` and ``state``): the chain and contract are the head's
    domain's, so the pointer can name no other."""
    domain = head.domain
    return AnchorPointer(
        chain_id=domain.chain_id,
        contract=bytes.fromhex(domain.verifying_contract[2:]),
        tree_size=head.tree_size,
        tx_hash=None if row.tx_hash is None else bytes(row.tx_hash),
        block_number=row.block_number,
        state=row.state,
    )


def read_payloads(registry: Registry, record_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The payload documents of these records, by record id."""
    from sqlalchemy import select

    from registry.db import read_transaction
    from registry.records import records_t

    with read_transaction(registry.engine) as conn:
        rows = conn.execute(
            select(records_t.c.id, records_t.c.payload).where(records_t.c.id.in_(record_ids))
        ).all()
    return {int(row.id): json.loads(row.payload) for row in rows}


def bundle_entry(
    registry: Registry, entry: LoggedEntry, payloads: dict[int, dict[str, Any]], tree_size: int
) -> BundleEntry:
    """A good's logged entry with its payload and its inclusion proof under ``tree_size``."""
    assert entry.good_type is not None  # a good's entry, never a subject's
    batch_proof = None if entry.position is None else registry.batch_proof(entry)
    return BundleEntry(
        **_logged_fields(registry, entry, payloads[entry.record_id], tree_size),
        good_type=entry.good_type,
        batch_proof=batch_proof,
    )


__all__ = [
    "GoodRegistered",
    "anchor_pointer",
    "build_absence",
    "build_bundle",
    "bundle_entry",
    "head_checkpoint",
    "read_payloads",
]
