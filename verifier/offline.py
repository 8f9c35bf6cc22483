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

from typing import Final, TypeVar

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof, SignatureError
from registry.fingerprints import fingerprint_hex
from registry.leaf import EntryKind, batch_entry_payload_hash, encode_leaf, subject_fingerprint
from registry.merkle import hash_leaf, verify_inclusion
from registry.payloads import (
    Payload,
    RegistrationPayload,
    RevocationPayload,
    SignedPayload,
)
from registry.requests import metadata_hash
from registry.royalty import policy_hash
from registry.signatures import verify_signature
from registry.transferpayload import TransferPayload
from registry.treehead import TreeHead
from verifier.bundle import (
    Bundle,
    BundleEntry,
    SubjectEntry,
)
from verifier.bundlereport import (
    COMPLETENESS_NOT_PROVEN,
    BundleReport,
    ChainFinding,
    ProvedEntry,
    StateFinding,
)
from verifier.checkpointcheck import WitnessFinding, check_checkpoint
from verifier.deliverycheck import check_delivery
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

#: The signed struct each kind of entry carries, without and with a batch proof.
SIGNED_TYPES: Final[dict[EntryKind, tuple[str, str]]] = {
    EntryKind.REGISTER: ("Registration", "BatchRegistration"),
    EntryKind.CONFLICT: ("Registration", "BatchRegistration"),
    EntryKind.REVOKE: ("Revocation", "BatchRevocation"),
}

P = TypeVar("P", bound=Payload)

#: The payload type each kind of signed entry is read through (``registry.payloads``).
PAYLOAD_TYPES: Final[dict[EntryKind, type[RegistrationPayload] | type[RevocationPayload]]] = {
    EntryKind.REGISTER: RegistrationPayload,
    EntryKind.CONFLICT: RegistrationPayload,
    EntryKind.REVOKE: RevocationPayload,
}


# -- the check --------------------------------------------------------------------------------


class CheckCache:
    """Work that many bundles of one export share, done once: the creator's signature over a
    bulk batch's one payload (read through its type), and a head's signer and signature. Keys
    are the full values checked (a payload by its SHA-256), never a claim about them, so a hit
    is the same check's same answer. (An entry's payload digest is kept with the entry:
    ``BundleEntry.payload_sha256``.)"""

    def __init__(self) -> None:
        self._messages: dict[tuple[str, bytes, str], SignedPayload] = {}
        self._heads: set[tuple[int, bytes, bytes, bytes]] = set()


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
            leaf_hash = _leaf_hash(entry, where, self.cache)
            # 3. (b) Whoever the leaf names as actor signed it, under this registry's domain.
            proved = _check_actor(entry, root, creator, where, self.cache)
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


def _leaf_hash(entry: BundleEntry, where: str, cache: CheckCache) -> bytes:
    try:
        document_hash = entry.payload_sha256
        batch = entry.batch_proof
        if batch is not None:
            # A batch's payload is hashed once; each good's is SHA-256(that || uint32 position).
            document_hash = batch_entry_payload_hash(document_hash, batch.position)
        # The fields were validated as the entry was read, and ``encode_leaf`` checks them
        # again with ``LeafData``'s errors (a good's entry always has a good type): no
        # ``LeafData`` is built for a third check (4 us an entry).
        leaf_hash = hash_leaf(
            encode_leaf(
                entry.kind,
                entry.good_type,
                entry.fingerprint,
                entry.actor,
                entry.payload_hash,
                entry.timestamp,
            )
        )
    except InvalidInput as exc:
        raise BundleInvalid("leaf", f"{where}: {exc.detail}") from None
    if document_hash != entry.payload_hash:
        what = "the batch payload at this position" if entry.batch_proof else "the payload"
        raise BundleInvalid(
            "leaf", f"{where}: the leaf's payload_hash is not the SHA-256 of {what}"
        )
    return leaf_hash


def _check_actor(
    entry: BundleEntry, root: TrustRoot, creator: bytes, where: str, cache: CheckCache
) -> ProvedEntry:
    actor = checksum_address(entry.actor)
    if entry.kind is EntryKind.TRANSFER:
        return _check_transfer(entry, root, creator, where)
    if entry.kind is EntryKind.DELIVERY:
        return check_delivery(entry, root, where)
    if entry.kind is EntryKind.REVOKE and entry.actor != creator:
        raise BundleInvalid(
            "signature",
            f"{where}: a revocation by {actor}, not by the good's creator "
            f"{checksum_address(creator)}",
        )
    try:
        return _check_signed_payload(entry, actor, root, where, cache)
    except (InvalidInput, InvalidProof) as exc:  # SignatureError is an InvalidInput
        step = "batch" if isinstance(exc, InvalidProof) else "signature"
        raise BundleInvalid(step, f"{where}: {exc.detail}") from None


def _check_transfer(entry: BundleEntry, root: TrustRoot, creator: bytes, where: str) -> ProvedEntry:
    """A TRANSFER is the registry's attestation of what a platform reported: the actor is the
    registry key the trust root names for the entry's place in the log, and the payload
    names this good, its creator and the registry."""
    actor = checksum_address(entry.actor)
    expected = root.key_for_entry(entry.leaf_index)
    if entry.actor != expected:
        raise BundleInvalid(
            "signature",
            f"{where}: a TRANSFER's actor {actor} is not the registry key trust root "
            f"{root.label()} names there ({checksum_address(expected)})",
        )
    try:
        transfer = _typed_payload(entry, TransferPayload)
    except InvalidInput as exc:
        raise BundleInvalid(
            "signature", f"{where}: the TRANSFER payload does not parse: {exc.detail}"
        ) from None
    named = (transfer.good_type, transfer.fingerprint, transfer.creator, transfer.registry)
    if named != (entry.good_type, entry.fingerprint, checksum_address(creator), actor):
        raise BundleInvalid(
            "signature",
            f"{where}: the TRANSFER payload does not name this good, its creator and the registry",
        )
    return ProvedEntry(
        EntryKind.TRANSFER,
        entry.leaf_index,
        actor,
        None,
        None,
        None,
        None,
        final=transfer.final,
        platform=transfer.platform,
    )


def _check_signed_payload(
    entry: BundleEntry, actor: str, root: TrustRoot, where: str, cache: CheckCache
) -> ProvedEntry:
    """The creator's signed message in the payload covers this entry's good, was made for
    this registry's domain (the trust root's, never only the one stored with it), and
    recovers to the entry's actor under it."""
    single, batched = SIGNED_TYPES[entry.kind]
    batch = entry.batch_proof
    expected = single if batch is None else batched
    key = (expected, entry.payload_sha256, actor)
    payload = cache._messages.get(key)
    if payload is None:
        payload = _verified_payload(entry, expected, actor, root, where)
        cache._messages[key] = payload
    message = payload.signed.message
    # What was signed is this good.
    if message["goodType"] != int(entry.good_type):
        raise InvalidInput(f"the {expected} is for good type {message['goodType']}")
    if batch is None:
        if message["fingerprint"] != entry.fingerprint:
            raise InvalidInput(f"the {expected} is for another fingerprint")
    else:
        if (message["itemsRoot"], message["count"]) != (batch.items_root, batch.count):
            raise InvalidProof(
                f"the batch proof's items root and count are not the ones the {expected} signed"
            )
        try:
            verify_inclusion(
                hash_leaf(entry.fingerprint),
                batch.position,
                batch.count,
                batch.inclusion_proof,
                batch.items_root,
            )
        except InvalidProof as exc:
            raise InvalidProof(
                f"the fingerprint is not under the signed items root: {exc.detail}"
            ) from None
    reason = message.get("reason")
    return ProvedEntry(
        entry.kind,
        entry.leaf_index,
        actor,
        expected,
        None if batch is None else batch.position,
        None if batch is None else batch.count,
        reason if isinstance(reason, str) else None,
    )


def _verified_payload(
    entry: BundleEntry, expected: str, actor: str, root: TrustRoot, where: str
) -> SignedPayload:
    """The entry's payload through its type, once its domain, signature, signer and attached
    documents are checked (what every good of one bulk batch shares).

    NOTE: the payload must be in its type's canonical form (the parsed value writes the very
    bytes shipped, proved by its hash), so the policy and metadata hashes below, computed from
    the parsed values, are those of the shipped documents. Payloads the registry logs are
    always in that form; a bundle whose payload is not is refused here, with the reason.
    """
    try:
        payload = _typed_payload(entry, PAYLOAD_TYPES[entry.kind])
    except InvalidInput as exc:
        raise InvalidInput(
            f"the payload is not a {entry.kind.name} payload: {exc.detail}"
        ) from None
    signed = payload.signed
    if signed.primary_type != expected:
        raise InvalidInput(f"a {entry.kind.name} entry here must carry a signed {expected}")
    # A signature is valid only under the domain it was made for; a creator's signed message
    # copied from another registry's log names that registry's domain: refused here, before
    # its signature is even recovered.
    root.check_domain(payload.domain, f"{where}: the {expected}")
    # The creator's signature: 65 bytes, low s, v in {27, 28}, recovering the claimed signer
    # under the trusted domain (THREATS 12-16); and that signer is the leaf's actor.
    try:
        verify_signature(expected, signed.message, root.domain(), signed.signature, signed.signer)
    except SignatureError as exc:
        raise SignatureError(f"the {expected} signature: {exc.detail}") from None
    if signed.signer != actor:
        raise SignatureError(f"the {expected} was signed by {signed.signer}, not the leaf's actor")
    if isinstance(payload, RegistrationPayload):
        # The policy and metadata shown are the ones the creator signed the hashes of.
        policy, metadata = payload.royalty_policy, payload.metadata
        for name, signed_hash, shown in (
            ("royalty_policy", "royaltyPolicy", None if policy is None else policy_hash(policy)),
            ("metadata", "metadata", None if metadata is None else metadata_hash(metadata)),
        ):
            if shown != signed.message[signed_hash]:
                raise InvalidInput(f"the payload's {name} is not the one the {expected} signed")
    return payload


def _typed_payload(entry: BundleEntry, payload_type: type[P]) -> P:
    """The entry's payload through its type, in its canonical form: the parsed value writes
    the very bytes shipped (checked by the digest already taken of them, not a second
    encoding of the document), so nothing read from it differs from what the leaf commits."""
    payload = payload_type.from_document(entry.payload, canonical=False)
    if payload.payload_hash() != entry.payload_sha256:
        raise InvalidInput("it is not in its canonical form")
    return payload


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
