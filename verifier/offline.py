"""Checking a proof bundle with nothing but the chain and a pinned trust root.

Nothing the bundle says about itself is trusted (STYLE 15). The caller's trust policy names
the registry (chain, anchor contract, the keys that sign heads of each size, the finality
rule); every leaf is re-encoded from its fields and every payload re-hashed; every creator's
EIP-712 signature is recovered under the trust root's domain, and a signature stored with
another domain is refused (one carried over from another registry's log); every inclusion
proof is walked to the head's root; the head's signature must recover to the key the trust
root names for its size; and the root is read from the trusted anchor contract itself, at
the depth the trust root asks (THREATS 8), never from the bundle, whose ``anchor`` only says
where to look for the block. A v3 bundle's ``state`` is checked too (``verifier.statecheck``):
the head's last leaf commits to the state map, which must hold exactly the entries shown, and
the report then says the history is complete as of the head. A v4 bundle's ``checkpoint`` is
checked under the trust root's log keys and witness policy (``verifier.checkpointcheck``): the
report then says who witnessed the head.

``check_bundle`` returns what was proved or raises (``verifier.errors``): ``BundleInvalid``,
``UntrustedRegistry``, or ``NotAnchoredYet`` / ``NotFinalYet`` carrying the partial report.

Pure except for the chain a caller hands in (an ``AnchorView``: ``anchoring.reader.ChainReader``
over plain JSON-RPC, or ``anchoring.chain.Chain`` over web3): this module imports neither web3
nor an ORM.
"""

from __future__ import annotations

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof
from registry.fingerprints import fingerprint_hex
from registry.leaf import EntryKind, subject_fingerprint
from registry.merkle import verify_inclusion
from registry.treehead import TreeHead
from verifier.bundle import Bundle, SubjectEntry
from verifier.bundlereport import (
    COMPLETENESS_NOT_PROVEN,
    BundleReport,
    ChainFinding,
    ProvedEntry,
    StateFinding,
)
from verifier.checkpointcheck import WitnessFinding, check_checkpoint
from verifier.entrycheck import CheckCache, check_actor, entry_leaf_hash
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.headcheck import (
    AnchorView,
    check_anchor_pointer,
    check_head,
    check_head_on_chain,
    describe_pointer,
)
from verifier.identityclaim import IdentityClaim, InvalidIdentityEntry, verify_identity_entry
from verifier.statecheck import check_complete
from verifier.trust import TrustPolicy, TrustRoot

# -- the check --------------------------------------------------------------------------------


def check_bundle(
    bundle: Bundle,
    trust: TrustPolicy,
    chain: AnchorView | None,
    *,
    cache: CheckCache | None = None,
) -> BundleReport:
    """Check a bundle under the caller's trust policy; return what it proves, or raise.

    ``trust`` names the registries the caller pinned: a bundle from any other raises
    ``UntrustedRegistry``. ``chain``, when given, is the trust root's anchor contract on a
    node of the trust root's chain; ``None`` checks everything but the chain (the report's
    status then says so). Raises ``BundleInvalid`` for evidence that does not verify,
    ``NotAnchoredYet`` / ``NotFinalYet`` (with the report so far) for a head the contract does
    not hold yet, or not at the trust root's depth. Transport failures of the chain
    (``ChainUnavailable``) propagate: they prove nothing. ``cache`` shares work across the
    bundles of one export.
    """
    head = bundle.tree_head
    # 0. The caller's trust root for the registry the head names; the rest is checked under it.
    root = trust.root_for(head.domain)
    checker = _Checker(bundle, root, cache or CheckCache())
    checker.run()
    # 8b. The head's checkpoint: signed by the log's keys the trust root names, the same size
    #     and root, cosigned as its witness policy asks (issue 15).
    checker.witness = check_checkpoint(bundle.checkpoint, head, root)
    report = checker.report(None)
    if chain is None:
        return report
    # 9. The chain: the trusted chain and contract, holding this very root deep enough.
    finding = check_head_on_chain(head, bundle.anchor, root, chain)
    report = checker.report(finding)
    if not finding.anchored:
        raise NotAnchoredYet(finding.describe(head.tree_size), report)
    if not finding.final:
        raise NotFinalYet(finding.describe(head.tree_size), report)
    return report


def prove_bundle(bundle: Bundle, root: TrustRoot, cache: CheckCache) -> list[ProvedEntry]:
    """Steps 1-8 of ``check_bundle`` (all but the chain) under a trust root the caller already
    chose for the bundle's head; the entries proved, in order, or raise ``BundleInvalid``.
    What an export runs for each of its goods (``verifier.export``): one root for all of
    them, and no report per good."""
    checker = _Checker(bundle, root, cache)
    checker.run()
    return checker.proved


class _Checker:
    def __init__(self, bundle: Bundle, root: TrustRoot, cache: CheckCache) -> None:
        self.bundle = bundle
        self.root = root
        self.cache = cache
        self.proved: list[ProvedEntry] = []
        self.identity: IdentityClaim | None = None
        self.state: StateFinding | None = None
        self.witness: WitnessFinding | None = None

    def report(self, chain: ChainFinding | None) -> BundleReport:
        bundle = self.bundle
        return BundleReport(
            good_type=bundle.good.good_type,
            fingerprint=bundle.good.fingerprint,
            entries=tuple(self.proved),
            tree_size=bundle.tree_head.tree_size,
            head_signer=checksum_address(bundle.tree_head.signer),
            trust_root=self.root.label(),
            trust_fingerprint=self.root.fingerprint(),
            chain=chain,
            claimed_anchor=describe_pointer(bundle.anchor),
            pending_entries=bundle.pending_entries,
            creator_identity=self.identity,
            state=self.state,
            witness=self.witness,
        )

    def run(self) -> None:
        bundle, head, root = self.bundle, self.bundle.tree_head, self.root
        # 1. One good, one REGISTER entry first, the rest in log order.
        _check_shape(bundle)
        creator = bundle.entry.actor
        leaf_hashes: list[tuple[int, bytes]] = []
        for entry in bundle.entries:
            where = f"leaf {entry.leaf_index:,}"
            # 2. (a) The leaf is re-encoded from its fields, its payload hash recomputed.
            leaf_hash = entry_leaf_hash(entry, where, self.cache)
            # 3. (b) Whoever the leaf names as actor signed it, under this registry's domain.
            proved = check_actor(entry, root, creator, where, self.cache)
            # 4. (c) The leaf is in the tree the head commits to.
            try:
                verify_inclusion(
                    leaf_hash, entry.leaf_index, head.tree_size, entry.inclusion_proof, head.root
                )
            except (InvalidProof, InvalidInput) as exc:
                raise BundleInvalid(
                    "inclusion", f"{where} is not in head {head.tree_size:,}: {exc.detail}"
                ) from None
            self.proved.append(proved)
            leaf_hashes.append((entry.leaf_index, leaf_hash))
        # 5. (d) The head is signed, under the trusted domain, by the key the trust root names
        #    for its size (a rotation keeps old heads under the old key, new ones under the new).
        seen = (head.tree_size, head.root, head.signature, head.signer)
        if seen not in self.cache._heads:
            check_head(head, root)
            self.cache._heads.add(seen)
        # 6. The anchor pointer, if any, points at this head on the trusted chain and contract.
        check_anchor_pointer(head, bundle.anchor, root)
        # 7. The creator's name, if the bundle shows one: a CREATOR_IDENTITY entry about this
        #    creator, attested by the registry key for its place, in the same head.
        if bundle.creator_identity is not None:
            self.identity = _check_identity(bundle.creator_identity, root, creator, head)
        # 8. (v3) The head's last leaf commits to the state map, and the map holds exactly the
        #    entries shown: the history is complete as of the head.
        if bundle.state is not None:
            good = bundle.good
            self.state = check_complete(
                bundle.state, head, good.good_type, good.fingerprint, leaf_hashes
            )


def _check_identity(
    entry: SubjectEntry, root: TrustRoot, creator: bytes, head: TreeHead
) -> IdentityClaim:
    where = f"the creator identity at leaf {entry.leaf_index:,}"
    if entry.kind is not EntryKind.CREATOR_IDENTITY:
        raise BundleInvalid("identity", f"{where} is a {entry.kind.name} entry")
    if entry.fingerprint != subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator):
        raise BundleInvalid("identity", f"{where} is about another creator")
    try:
        leaf_hash = entry.leaf().leaf_hash()
    except InvalidInput as exc:
        raise BundleInvalid("identity", f"{where}: {exc.detail}") from None
    if entry.payload_sha256 != entry.payload_hash:
        raise BundleInvalid("identity", f"{where}: payload_hash is not the payload's SHA-256")
    attester = root.key_for_entry(entry.leaf_index)
    if entry.actor != attester:
        raise BundleInvalid(
            "identity",
            f"{where} is attested by {checksum_address(entry.actor)}, not the registry key "
            f"trust root {root.label()} names there ({checksum_address(attester)})",
        )
    try:
        claim = verify_identity_entry(
            entry.payload,
            creator=creator,
            eip712_domain=root.domain(),
            registry=checksum_address(attester),
        )
        verify_inclusion(
            leaf_hash, entry.leaf_index, head.tree_size, entry.inclusion_proof, head.root
        )
    except (InvalidIdentityEntry, InvalidInput, InvalidProof) as exc:
        raise BundleInvalid("identity", f"{where}: {exc.detail}") from None
    return claim


def _check_shape(bundle: Bundle) -> None:
    good = bundle.good
    if bundle.entry.kind is not EntryKind.REGISTER:
        raise BundleInvalid(
            "entry", f"the bundle's entry is a {bundle.entry.kind.name}, not the REGISTER"
        )
    last = -1
    for entry in bundle.entries:
        if (entry.good_type, entry.fingerprint) != (good.good_type, good.fingerprint):
            raise BundleInvalid(
                "entry",
                f"leaf {entry.leaf_index:,} is about {entry.good_type.name.lower()} "
                f"{fingerprint_hex(entry.fingerprint)}, not the bundle's good",
            )
        if entry is not bundle.entry and entry.kind is EntryKind.REGISTER:
            raise BundleInvalid("entry", f"leaf {entry.leaf_index:,} is a second REGISTER")
    for entry in bundle.later_entries:
        if entry.leaf_index == bundle.entry.leaf_index or entry.leaf_index <= last:
            raise BundleInvalid(
                "entry", f"later entries are not in log order at leaf {entry.leaf_index:,}"
            )
        last = entry.leaf_index


__all__ = [
    "COMPLETENESS_NOT_PROVEN",
    "AnchorView",
    "BundleInvalid",
    "BundleReport",
    "ChainFinding",
    "ProvedEntry",
    "check_bundle",
    "check_head",
    "check_head_on_chain",
    "prove_bundle",
]
