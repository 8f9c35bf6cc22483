"""Checking a ``c2sp.org/tlog-proof@v1`` proof (``verifier.tlogproof``) with nothing but the
chain and a pinned trust root, as a native bundle is checked.

A tlog-proof carries one entry, the audit path to a checkpoint, and the checkpoint note with
the log's signatures and the witnesses' cosignatures; it has no EIP-712 signed head and no
state proof. Nothing it says of itself is trusted (STYLE 15): the checkpoint's origin only
picks which pinned trust root to check it under, and that root's log keys, witness policy,
domain, registry keys, chain and contract decide. The steps, numbered as the code repeats
them (the spec's "Verifying a tlog proof" 1-4, then tracemark's own):

1. the leaf hash, rebuilt from the ``extra`` (the entry and its payload document): the
   payload's RFC 8785 SHA-256 (in a bulk batch: with the item's position) is the leaf's
   ``payload_hash``; step ``leaf``;
2. the checkpoint's origin is one a pinned trust root names (else ``UntrustedRegistry``), and
   the note is signed by one of that root's log keys; step ``checkpoint``;
3. the witnesses' cosignatures satisfy the root's witness policy; step ``witness``;
4. the inclusion proof binds the leaf hash at ``index`` to the checkpoint's root; step
   ``inclusion``;
5. the entry is what its actor signed, under the trusted domain (a creator's REGISTER), or the
   registry key the root names for its place in the log attested it (a TRANSFER); steps
   ``entry``, ``domain``, ``signature``, ``batch``;
6. the chain: the trust root's contract holds the checkpoint's root for its size, at the
   root's depth (``verifier.headcheck.check_head_on_chain``).

Same error family and exit codes as bundles (``verifier.errors``). Pure except for the chain
a caller hands in (an ``AnchorView``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from registry.checkpoint import Checkpoint, open_checkpoint
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.merkle import verify_inclusion
from registry.note import Note, NoteError, parse_note
from registry.transferpayload import TransferPayload
from verifier.bundle import BundleEntry
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN, ChainFinding, ProvedEntry, Status
from verifier.checkpointcheck import WitnessFinding

# NOTE: the entry checks are the bundle's own, not a second copy: a tlog-proof's entry must
# pass exactly what the same entry passes in a bundle.
from verifier.entrycheck import CheckCache, check_actor, entry_leaf_hash
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet, UntrustedRegistry
from verifier.headcheck import AnchorView, check_head_on_chain
from verifier.tlogproof import HEADER, PROVABLE_KINDS, MalformedTlogProof, ProofExtra, TlogProof
from verifier.trust import LOG_KEY_TYPES, TrustPolicy, TrustRoot

NO_STATE_PROOF = (
    "a tlog-proof shows one entry and carries no state proof: the good's other entries "
    "(a revocation, a transfer) are not shown, and "
)
"""Why a tlog-proof's verdict never says "complete": said before ``COMPLETENESS_NOT_PROVEN``."""


@dataclass(frozen=True)
class _CheckpointHead:
    """A checkpoint as the chain check reads a head (``headcheck.AnchoredHead``)."""

    tree_size: int
    root: bytes


@dataclass(frozen=True)
class TlogProofReport:
    """Exactly what a tlog-proof proved, under which trust root: one entry, in the log's
    checkpoint, witnessed as the root's policy asks, and what the chain said."""

    good_type: GoodType
    fingerprint: bytes
    entry: ProvedEntry
    #: The good's creator: the REGISTER's actor, or the one the registry's TRANSFER names.
    creator: str
    tree_size: int
    log_origin: str
    checkpoint: WitnessFinding
    trust_root: str
    trust_fingerprint: str
    chain: ChainFinding | None

    @property
    def status(self) -> Status:
        if self.chain is None:
            return "chain-not-checked"
        if not self.chain.anchored:
            return "not-anchored"
        return "verified" if self.chain.final else "not-final"

    @property
    def completeness(self) -> str:
        return NO_STATE_PROOF + COMPLETENESS_NOT_PROVEN

    def summary(self) -> str:
        """One line: what was proved, under which trust root, and what was not."""
        good = f"{self.good_type.name.lower()} {fingerprint_hex(self.fingerprint)}"
        parts = [f"tlog-proof: {good} {self.entry.describe()}"]
        if self.entry.kind is EntryKind.TRANSFER:
            parts.append(f"creator {self.creator} (as the registry's TRANSFER names)")
        parts.append(f"log {self.log_origin}: {self.checkpoint.describe()}")
        if self.chain is not None:
            parts.append(self.chain.describe(self.tree_size))
        else:
            parts.append("chain not checked (a tlog-proof names no anchor transaction)")
        parts.append(f"trust root {self.trust_root}")
        parts.append(self.completeness)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "evidence_format": HEADER,
            "good_type": self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "entries": [self.entry.as_dict()],
            "creator": self.creator,
            "tree_size": self.tree_size,
            "log_origin": self.log_origin,
            "checkpoint": self.checkpoint.as_dict(),
            "trust_root": self.trust_root,
            "trust_fingerprint": self.trust_fingerprint,
            "chain": None if self.chain is None else self.chain.as_dict(),
            "complete": False,
            "completeness": self.completeness,
        }


def proof_origin(proof: TlogProof) -> str:
    """The origin the proof's checkpoint names (unverified: it only picks the trust root)."""
    note = _note(proof)
    return _checkpoint_text(note).origin


def root_for_origin(trust: TrustPolicy, origin: str) -> TrustRoot:
    """The pinned root whose log has this checkpoint origin; ``UntrustedRegistry`` if none."""
    for root in trust.roots:
        if root.transparency is not None and root.transparency.log_origin == origin:
            return root
    pinned = "; ".join(
        f"{root.label()}: "
        + (
            f"log {root.transparency.log_origin}"
            if root.transparency is not None
            else "no log origin (pinned before issue 15: pin its current trust root)"
        )
        for root in trust.roots
    )
    shown = repr(origin) if len(origin) <= 80 else "an unknown origin"
    raise UntrustedRegistry(
        f"no pinned trust root names the log {shown}, the checkpoint's origin "
        + (f"(pinned: {pinned})" if pinned else "(no trust root is pinned)")
        + "; pin its trust root with `tracemark trust add` after comparing its fingerprint"
        " out of band, or pass --trust FILE"
    )


def check_tlog_proof(
    proof: TlogProof, trust: TrustPolicy, chain: AnchorView | None
) -> TlogProofReport:
    """Check a tlog-proof under the caller's trust policy; return what it proves, or raise.

    As ``verifier.offline.check_bundle``: ``BundleInvalid`` for evidence that does not verify,
    ``UntrustedRegistry`` for a log no pinned root names, ``NotAnchoredYet`` /
    ``NotFinalYet`` (with the report so far) for a checkpoint the contract does not hold yet,
    or not at the root's depth; ``chain`` None checks everything but the chain.
    """
    note = _note(proof)
    claimed = _checkpoint_text(note)
    # 0. The trust root for the log the checkpoint names; everything is checked under it.
    root = root_for_origin(trust, claimed.origin)
    assert root.transparency is not None
    log = root.transparency
    cache = CheckCache()
    # 1. The leaf, rebuilt from the extra: what the log committed, if step 4 binds it.
    entry = _entry(proof)
    where = f"leaf {entry.leaf_index:,}"
    leaf_hash = entry_leaf_hash(entry, where, cache)
    # 2. The checkpoint: the root's origin, signed by one of the root's log keys (unknown
    #    lines ignored, a known key's bad signature refused: C2SP signed-note).
    try:
        checkpoint, note = open_checkpoint(
            proof.checkpoint, log.log_verifiers, origin=log.log_origin
        )
    except NoteError as exc:
        raise BundleInvalid(
            "checkpoint",
            f"the checkpoint does not verify under trust root {root.label()}'s log keys: "
            f"{exc.detail}",
        ) from None
    # 3. The witnesses: the cosignatures satisfy the root's policy (C2SP tlog-policy).
    try:
        cosigned = tuple(log.policy.check(note))
    except NoteError as exc:
        raise BundleInvalid(
            "witness",
            f"checkpoint {checkpoint.size:,} is not witnessed as trust root {root.label()} "
            f"asks: {exc.detail}",
        ) from None
    finding = WitnessFinding(
        checkpoint.size,
        checked=True,
        has_checkpoint=True,
        log_signatures=_log_signatures(note, root),
        witnessed_by=cosigned,
        witnesses=len(log.policy.witnesses),
        quorum_none=bool(log.policy.satisfied(())),
    )
    # 4. The leaf is in the tree the checkpoint commits to.
    try:
        verify_inclusion(
            leaf_hash, entry.leaf_index, checkpoint.size, entry.inclusion_proof, checkpoint.root
        )
    except (InvalidProof, InvalidInput) as exc:
        raise BundleInvalid(
            "inclusion", f"{where} is not in checkpoint {checkpoint.size:,}: {exc.detail}"
        ) from None
    # 5. Its actor signed it under the trusted domain (a REGISTER), or the registry key the
    #    root names for its place attested it (a TRANSFER): the bundle's own checks.
    creator = _creator(entry)
    if entry.kind is EntryKind.TRANSFER:
        _check_transfer_domain(entry, root, where)
    proved = check_actor(entry, root, creator, where, cache)
    report = TlogProofReport(
        good_type=entry.good_type,
        fingerprint=entry.fingerprint,
        entry=proved,
        creator=checksum_address(creator),
        tree_size=checkpoint.size,
        log_origin=checkpoint.origin,
        checkpoint=finding,
        trust_root=root.label(),
        trust_fingerprint=root.fingerprint(),
        chain=None,
    )
    if chain is None:
        return report
    # 6. The chain: the trusted contract holds the checkpoint's root for its size, deep enough
    #    (a tlog-proof names no anchor transaction: the block is not looked up).
    head = _CheckpointHead(checkpoint.size, checkpoint.root)
    found = check_head_on_chain(head, None, root, chain)
    report = replace(report, chain=found)
    if not found.anchored:
        raise NotAnchoredYet(found.describe(checkpoint.size), report)
    if not found.final:
        raise NotFinalYet(found.describe(checkpoint.size), report)
    return report


def _note(proof: TlogProof) -> Note:
    try:
        return parse_note(proof.checkpoint)
    except NoteError as exc:
        raise BundleInvalid(
            "checkpoint", f"the checkpoint is not a signed note: {exc.detail}"
        ) from None


def _checkpoint_text(note: Note) -> Checkpoint:
    try:
        return Checkpoint.parse(note.text)
    except NoteError as exc:
        raise BundleInvalid("checkpoint", f"the note is not a checkpoint: {exc.detail}") from None


def _entry(proof: TlogProof) -> BundleEntry:
    if proof.extra is None:
        raise BundleInvalid(
            "leaf", "the proof has no extra line: tracemark's carries the entry to rebuild the leaf"
        )
    try:
        extra = ProofExtra.parse(proof.extra)
        entry = extra.entry(proof)
    except MalformedTlogProof as exc:
        raise BundleInvalid("leaf", exc.detail) from None
    if entry.kind not in PROVABLE_KINDS:
        raise BundleInvalid(
            "entry",
            f"a tlog-proof of a {entry.kind.name}: this verifier reads REGISTER and TRANSFER",
        )
    return entry


def _creator(entry: BundleEntry) -> bytes:
    """The good's creator as far as this one entry shows: the REGISTER's signer, or the one the
    registry names in its TRANSFER (its own attestation, checked in step 5)."""
    if entry.kind is not EntryKind.TRANSFER:
        return entry.actor
    try:
        transfer = TransferPayload.from_document(entry.payload, canonical=False)
    except InvalidInput as exc:
        raise BundleInvalid(
            "signature",
            f"leaf {entry.leaf_index:,}: the TRANSFER payload does not parse: {exc.detail}",
        ) from None
    return bytes.fromhex(transfer.creator[2:])


def _check_transfer_domain(entry: BundleEntry, root: TrustRoot, where: str) -> None:
    """A TRANSFER names the registry's domain it was logged under: the trust root's."""
    root.check_domain(_transfer(entry, where).domain, f"{where}: the TRANSFER")


def _transfer(entry: BundleEntry, where: str) -> TransferPayload:
    try:
        return TransferPayload.from_document(entry.payload, canonical=False)
    except InvalidInput as exc:
        raise BundleInvalid(
            "signature", f"{where}: the TRANSFER payload does not parse: {exc.detail}"
        ) from None


def _log_signatures(note: Note, root: TrustRoot) -> tuple[str, ...]:
    """The log keys whose lines the note carries (verified by step 2), by type name."""
    assert root.transparency is not None
    known = {(v.name, v.key_id): v.sig_type for v in root.transparency.log_verifiers}
    return tuple(
        dict.fromkeys(
            LOG_KEY_TYPES[known[(s.name, s.key_id)]]
            for s in note.signatures
            if (s.name, s.key_id) in known
        )
    )


__all__ = [
    "NO_STATE_PROOF",
    "TlogProofReport",
    "check_tlog_proof",
    "proof_origin",
    "root_for_origin",
]
