"""Checking what the state map says of a good: the head's last leaf commits to the map, and
the map holds exactly the good's entries the bundle shows (completeness), or no entry of the
good at all (absence) (issue 14).

An RFC 9162 log proves what is in it, never what is not; the state map closes that gap. The
head's last leaf is a STATE_COMMITMENT entry, signed into the head like any leaf, whose
fingerprint word is the root of a sparse Merkle map over the entries of every good at the
leaves before it (``registry.statemap``). A good's value there is a history chain over its
entries' leaf hashes, so a bundle that leaves one out (the REVOKE of a revoked card, the
last TRANSFER of a resold file) no longer matches, and a good the map does not hold has no
entry at all under the head.

Nothing the evidence says about itself is trusted: the commitment must be the head's own last
leaf, in the head, attested by the head's signer; the value is recomputed from the bundle's
own entries and only the map proof of the value the evidence claims is walked, so the two
are compared rather than the claim believed.

NOTE: pure, as the rest of the verifier kit: the chain is a caller's ``AnchorView``.
"""

from __future__ import annotations

from collections.abc import Sequence

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.merkle import verify_inclusion
from registry.payloads import StateCommitmentPayload
from registry.statemap import MapValue, map_key, verify_map_proof
from registry.treehead import TreeHead
from verifier.absence import Absence
from verifier.bundle import BundleState
from verifier.bundlereport import AbsenceReport, ChainFinding, StateFinding
from verifier.checkpointcheck import check_checkpoint
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.headcheck import (
    AnchorView,
    check_anchor_pointer,
    check_head,
    check_head_on_chain,
    describe_pointer,
)
from verifier.trust import TrustPolicy

STEP = "state"
"""The failed step a ``BundleInvalid`` of this module names."""


def check_commitment(state: BundleState, head: TreeHead) -> bytes:
    """The state commitment is the head's last leaf, committed to the map of the leaves
    before it by the head's signer; returns the map root it carries.

    The head itself (its signer under the trust root, its signature) is the caller's to check.
    """
    entry = state.commitment
    where = f"the state commitment at leaf {entry.leaf_index:,}"
    # 1. A STATE_COMMITMENT entry, at the head's last leaf: every head the registry signs
    #    ends in one, so a commitment from elsewhere in the log (an older map) cannot stand in.
    if entry.kind is not EntryKind.STATE_COMMITMENT:
        raise BundleInvalid(STEP, f"{where} is a {entry.kind.name} entry")
    if entry.leaf_index != head.tree_size - 1:
        raise BundleInvalid(
            STEP,
            f"{where} is not the last leaf of head {head.tree_size:,} "
            f"(leaf {head.tree_size - 1:,})",
        )
    # 2. Its leaf re-encoded from its fields; its payload canonical, and the leaf's payload hash.
    try:
        leaf_hash = entry.leaf().leaf_hash()
        payload = StateCommitmentPayload.from_document(entry.payload, canonical=False)
    except InvalidInput as exc:
        raise BundleInvalid(STEP, f"{where}: {exc.detail}") from None
    if payload.payload_hash() != entry.payload_sha256:
        raise BundleInvalid(STEP, f"{where}: its payload is not in its canonical form")
    if entry.payload_sha256 != entry.payload_hash:
        raise BundleInvalid(STEP, f"{where}: payload_hash is not the payload's SHA-256")
    # 3. It covers the leaves before itself, and its fingerprint word is the root it names.
    if payload.covers != entry.leaf_index:
        raise BundleInvalid(
            STEP, f"{where} says it covers the leaves before {payload.covers:,}, not its own"
        )
    if payload.map_root != entry.fingerprint:
        raise BundleInvalid(STEP, f"{where}: its fingerprint word is not the map root it names")
    # 4. The registry made it: its actor is the key that signed the head.
    if entry.actor != head.signer:
        raise BundleInvalid(
            STEP,
            f"{where} is attested by {checksum_address(entry.actor)}, not by the head's "
            f"signer {checksum_address(head.signer)}",
        )
    # 5. It is in the head.
    try:
        verify_inclusion(
            leaf_hash, entry.leaf_index, head.tree_size, entry.inclusion_proof, head.root
        )
    except (InvalidProof, InvalidInput) as exc:
        raise BundleInvalid(
            STEP, f"{where} is not in head {head.tree_size:,}: {exc.detail}"
        ) from None
    return entry.fingerprint


def check_complete(
    state: BundleState,
    head: TreeHead,
    good_type: GoodType,
    fingerprint: bytes,
    entries: Sequence[tuple[int, bytes]],
) -> StateFinding:
    """The map the head commits to holds exactly these entries of the good: ``entries`` are
    the bundle's (leaf index, leaf hash) pairs, each already proved in the head.

    Raises ``BundleInvalid`` naming what the map says is missing when they stop short.
    """
    map_root = check_commitment(state, head)
    covers = state.commitment.leaf_index
    # 6. Every entry is one the map covers.
    ordered = sorted(entries)
    for leaf_index, _ in ordered:
        if leaf_index >= covers:
            raise BundleInvalid(
                STEP,
                f"leaf {leaf_index:,} is not before the state commitment at leaf {covers:,}",
            )
    # 7. The good's value as the bundle's own entries give it: their history chain in log order.
    shown = MapValue.first(*ordered[0])
    for leaf_index, leaf_hash in ordered[1:]:
        shown = shown.then(leaf_index, leaf_hash)
    # 8. The value the evidence claims is the map's (its proof leads to the committed root) ...
    claimed = state.value
    _verify_map_proof(state, map_root, good_type, fingerprint)
    # 9. ... and the bundle's entries give that very value.
    if claimed is None:
        raise BundleInvalid(
            STEP,
            f"the state map says this good has no entries as of head {head.tree_size:,}, yet "
            f"the bundle shows {shown.entry_count:,}",
        )
    if claimed != shown:
        raise BundleInvalid(STEP, _difference(claimed, shown))
    return StateFinding(
        head.tree_size, covers, map_root, claimed.entry_count, claimed.last_leaf_index
    )


def check_absent(
    state: BundleState, head: TreeHead, good_type: GoodType, fingerprint: bytes
) -> StateFinding:
    """The map the head commits to holds no entry of the good (checked by the map proof of
    its absence against the committed root: a neighbour's proof, a presence proof or one
    against another root fails)."""
    map_root = check_commitment(state, head)
    if state.value is not None:  # an Absence cannot hold one; a caller's BundleState can
        raise BundleInvalid(STEP, "an absence proof names no value")
    _verify_map_proof(state, map_root, good_type, fingerprint)
    return StateFinding(head.tree_size, state.commitment.leaf_index, map_root, None, None)


def check_absence(absence: Absence, trust: TrustPolicy, chain: AnchorView | None) -> AbsenceReport:
    """Check an absence proof under the caller's trust policy; return what it proves, or
    raise, as ``verifier.offline.check_bundle`` does for a bundle (``UntrustedRegistry``,
    ``BundleInvalid``, ``NotAnchoredYet`` / ``NotFinalYet`` with the report so far)."""
    head = absence.tree_head
    # 0. The caller's trust root for the registry the head names.
    root = trust.root_for(head.domain)
    # 1.-5. The head's last leaf commits to the map, and (6.) the good is not in it.
    finding = check_absent(absence.state, head, absence.good.good_type, absence.good.fingerprint)
    # 7. The head is signed, under the trusted domain, by the key the trust root names.
    check_head(head, root)
    # 7b. The head's checkpoint: the log's keys, the head's size and root, and the witness
    #     quorum the trust root asks (issue 15; a v1 proof carries none).
    witness = check_checkpoint(absence.checkpoint, head, root)
    # 8. The anchor pointer, if any, points at this head on the trusted chain and contract.
    check_anchor_pointer(head, absence.anchor, root)

    def report(found: ChainFinding | None) -> AbsenceReport:
        return AbsenceReport(
            good_type=absence.good.good_type,
            fingerprint=absence.good.fingerprint,
            tree_size=head.tree_size,
            head_signer=checksum_address(head.signer),
            trust_root=root.label(),
            trust_fingerprint=root.fingerprint(),
            state=finding,
            chain=found,
            claimed_anchor=describe_pointer(absence.anchor),
            witness=witness,
        )

    if chain is None:
        return report(None)
    # 9. The chain: the trusted chain and contract, holding this very root deep enough.
    found = check_head_on_chain(head, absence.anchor, root, chain)
    proved = report(found)
    if not found.anchored:
        raise NotAnchoredYet(found.describe(head.tree_size), proved)
    if not found.final:
        raise NotFinalYet(found.describe(head.tree_size), proved)
    return proved


def _verify_map_proof(
    state: BundleState, map_root: bytes, good_type: GoodType, fingerprint: bytes
) -> None:
    value_hash = None if state.value is None else state.value.value_hash()
    try:
        verify_map_proof(map_root, map_key(good_type, fingerprint), value_hash, state.map_proof)
    except InvalidProof as exc:
        claim = "absence" if state.value is None else "value"
        raise BundleInvalid(
            STEP,
            f"the state map proof of {good_type.name.lower()} {fingerprint_hex(fingerprint)}'s "
            f"{claim} does not lead to the root committed at leaf "
            f"{state.commitment.leaf_index:,}: {exc.detail}",
        ) from None


def _difference(claimed: MapValue, shown: MapValue) -> str:
    """What the map says is missing from the bundle, naming the last leaf where they differ."""
    says = (
        f"the map says this good has {claimed.entry_count:,} entr"
        f"{'y' if claimed.entry_count == 1 else 'ies'}, the last at leaf "
        f"{claimed.last_leaf_index:,}; the bundle shows {shown.entry_count:,}, the last at leaf "
        f"{shown.last_leaf_index:,}"
    )
    missing = claimed.entry_count - shown.entry_count
    if claimed.last_leaf_index > shown.last_leaf_index:
        more = f" ({missing:,} entries missing in all)" if missing > 1 else ""
        return f"incomplete: {says}: the entry at leaf {claimed.last_leaf_index:,} is missing{more}"
    if claimed.last_leaf_index == shown.last_leaf_index and missing > 0:
        plural = "entry is" if missing == 1 else "entries are"
        return (
            f"incomplete: {says}: {missing:,} {plural} missing before leaf "
            f"{claimed.last_leaf_index:,}"
        )
    return f"the bundle's entries are not the ones the state map holds: {says}"


__all__ = ["check_absence", "check_absent", "check_commitment", "check_complete"]
