"""Building a good's proof bundle (``verifier.bundle``) from the registry's log and anchors.

The head: the largest anchored one (state mined or final) that covers the good's REGISTER
entry and has a signed tree head of exactly the anchored size and root; if none does yet, the
latest signed head, with ``anchor`` null. ``readmodels.exports`` builds each good of an export
with the same entry builder.

NOTE: the registry's storage (sqlalchemy) is imported when a function runs, not with the
module: the command line imports the export writer, and so this, for every command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from anchoring.states import ANCHORED
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import LEAF_VERSION, EntryKind
from registry.treehead import TreeHead
from verifier.bundle import (
    FORMAT_V2,
    MAX_BUNDLE_ENTRIES,
    AnchorPointer,
    Bundle,
    BundleEntry,
    GoodRef,
    SubjectEntry,
)

if TYPE_CHECKING:
    from registry.entries import LoggedEntry
    from registry.service import Registry


# -- building one ---------------------------------------------------------------


def build_bundle(registry: Registry, good_type: GoodType, fingerprint: bytes) -> Bundle:
    """The proof bundle of a good, against the best head there is.

    The head: the largest anchored one (state mined or final) that covers the good's
    REGISTER entry and has a signed tree head of exactly the anchored size and root; if none
    does yet, the latest signed head, with ``anchor`` null. The good's other entries under
    that head travel with it; the rest are counted in ``pending_entries``.

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
    head, anchor = _choose_head(registry, register.leaf_index)
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
        format=FORMAT_V2,
        good=GoodRef(good_type=good_type, fingerprint=fingerprint),
        entry=bundle_entry(registry, register, payloads, head.tree_size),
        later_entries=tuple(bundle_entry(registry, e, payloads, head.tree_size) for e in later),
        pending_entries=len(history) - 1 - len(later),
        tree_head=head,
        anchor=anchor,
        creator_identity=None
        if identity is None
        else _subject_entry(registry, identity, payloads, head.tree_size),
    )


def _identity_entry(registry: Registry, creator: bytes, tree_size: int) -> LoggedEntry | None:
    from registry.identity import latest_identity_entry

    return latest_identity_entry(registry, creator, below=tree_size)


def _subject_entry(
    registry: Registry, entry: LoggedEntry, payloads: dict[int, dict[str, Any]], tree_size: int
) -> SubjectEntry:
    return SubjectEntry(**_logged_fields(registry, entry, payloads, tree_size))


def _logged_fields(
    registry: Registry, entry: LoggedEntry, payloads: dict[int, dict[str, Any]], tree_size: int
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
        "payload": payloads[entry.record_id],
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
        **_logged_fields(registry, entry, payloads, tree_size),
        good_type=entry.good_type,
        batch_proof=batch_proof,
    )


__all__ = ["anchor_pointer", "build_bundle", "bundle_entry", "read_payloads"]
