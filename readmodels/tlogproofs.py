"""Writing a good's registration, or a transfer receipt's TRANSFER entry, as a
``c2sp.org/tlog-proof@v1`` (``verifier.tlogproof``) from the registry's log and checkpoints.

The head is the one a bundle of the good would be proved under (``readmodels.bundles``): the
largest anchored head covering the entry, else the latest signed one. The proof carries that
head's checkpoint as the registry holds it (``registry.checkpoints.checkpoint_at``: the log's
signatures and the witnesses' cosignatures), the entry's audit path under it, and the entry
itself in ``extra``. A head signed before checkpoints existed has none: no tlog-proof then.

NOTE: the registry's storage is imported when a function runs, as in ``readmodels.bundles``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readmodels.bundles import _choose_head, bundle_entry, read_payloads
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from verifier.tlogproof import PROVABLE_KINDS, TlogProof, tlog_proof_of

if TYPE_CHECKING:
    from registry.entries import LoggedEntry
    from registry.service import Registry


def build_good_tlog_proof(registry: Registry, good_type: GoodType, fingerprint: bytes) -> TlogProof:
    """The tlog-proof of a good's REGISTER entry (what its bundle proves first; its later
    entries are not in it: a tlog-proof holds one entry). ``NotFound`` as ``build_bundle``."""
    what = f"{good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    history = registry.history(good_type, fingerprint)
    register = next((e for e in history if e.kind is EntryKind.REGISTER), None)
    if register is None:
        raise NotFound(f"no {what} is registered")
    if register.leaf_index is None:
        raise NotFound(f"{what} is registered but still queued: no proof until it is logged")
    return entry_tlog_proof(registry, register)


def build_receipt_tlog_proof(registry: Registry, transfer_id: int) -> TlogProof:
    """The tlog-proof of a transfer receipt's TRANSFER entry (the leaf its ``log_index``
    names). The caller checks who may read the receipt."""
    receipt = registry.receipt(transfer_id)
    return entry_tlog_proof(registry, registry.entry_at(receipt.leaf_index))


def build_leaf_tlog_proof(registry: Registry, leaf_index: int) -> TlogProof:
    """The tlog-proof of the entry at ``leaf_index`` (a REGISTER or a TRANSFER)."""
    return entry_tlog_proof(registry, registry.entry_at(leaf_index))


def entry_tlog_proof(
    registry: Registry, entry: LoggedEntry, tree_size: int | None = None
) -> TlogProof:
    """The tlog-proof of a logged entry under the head of ``tree_size`` (by default the head
    a bundle would choose); ``NotFound`` when that head has no checkpoint."""
    from registry.checkpoints import checkpoint_at
    from registry.db import read_transaction

    if entry.leaf_index is None:
        raise NotFound("the entry is still queued: no proof until it is logged")
    if entry.kind not in PROVABLE_KINDS:
        raise InvalidInput(
            f"leaf {entry.leaf_index:,} is a {entry.kind.name}: a tlog-proof is written for a "
            "good's REGISTER or a TRANSFER"
        )
    if tree_size is None:
        head, _ = _choose_head(registry, entry.leaf_index)
        tree_size = head.tree_size
    elif tree_size <= entry.leaf_index:
        raise NotFound(f"head {tree_size:,} does not cover leaf {entry.leaf_index:,}")
    with read_transaction(registry.engine) as conn:
        signed = checkpoint_at(conn, tree_size)
    if signed is None:
        raise NotFound(
            f"head {tree_size:,} has no checkpoint (signed before the log signed checkpoints): "
            "no tlog-proof of it; its proof bundle still proves the entry"
        )
    payloads = read_payloads(registry, {entry.record_id})
    logged = bundle_entry(registry, entry, payloads, tree_size)
    return tlog_proof_of(logged, signed.to_bytes())


__all__ = [
    "build_good_tlog_proof",
    "build_leaf_tlog_proof",
    "build_receipt_tlog_proof",
    "entry_tlog_proof",
]
