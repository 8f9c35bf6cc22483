"""Checking a proof bundle with nothing but the chain and a pinned trust root.

Nothing the bundle says about itself is trusted (STYLE 15). The caller's trust policy names
the registry (chain, anchor contract, the keys that sign heads of each size, the finality
rule); every leaf is re-encoded from its fields and every payload re-hashed; every creator's
EIP-712 signature is recovered under the trust root's domain, and a signature stored with
another domain is refused (one carried over from another registry's log); every inclusion
proof is walked to the head's root; the head's signature must recover to the key the trust
root names for its size; and the root is read from the trusted anchor contract itself, at
the depth the trust root asks (THREATS 8), never from the bundle, whose ``anchor`` only says
where to look for the block.

``check_bundle`` returns what was proved or raises (``verifier.errors``): ``BundleInvalid``,
``UntrustedRegistry``, or ``NotAnchoredYet`` / ``NotFinalYet`` carrying the partial report.

Pure except for the chain a caller hands in (an ``AnchorView``: ``anchoring.reader.ChainReader``
over plain JSON-RPC, or ``anchoring.chain.Chain`` over web3): this module imports neither web3
nor an ORM.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from anchoring.errors import ChainMismatch, ReceiptMismatch
from registry.eip712 import STRUCT_TYPES, Domain, checksum_address, parse_address, parse_message
from registry.errors import InvalidInput, InvalidProof, SignatureError
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind, batch_entry_payload_hash, payload_hash, subject_fingerprint
from registry.merkle import hash_leaf, verify_inclusion
from registry.signatures import verify_signature
from verifier.bundle import (
    AnchorPointer,
    Bundle,
    BundleEntry,
    SignedTreeHead,
    SubjectEntry,
    payload_digest,
)
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.identity import IdentityClaim, InvalidIdentityEntry, verify_identity_entry
from verifier.trust import TrustPolicy, TrustRoot


class AnchorView(Protocol):
    """The reads a check makes of the trusted anchor contract; ``ChainReader`` (plain
    JSON-RPC, what ``tracemark verify`` uses) and ``Chain`` (web3) both provide them, and one
    behavioural test suite runs both."""

    address: str

    def chain_id(self) -> int: ...
    def check(self, expected_chain_id: int) -> None: ...
    def root_at(self, size: int) -> bytes | None: ...
    def root_at_block(self, size: int, block: int) -> bytes | None: ...
    def confirmed_root(self, size: int, confirmations: int) -> bytes | None: ...
    def finalized_block(self) -> int: ...
    def block_number(self) -> int: ...
    def anchor_block(self, tx_hash: bytes, size: int, root: bytes) -> int | None: ...


Status = Literal["verified", "not-anchored", "not-final", "chain-not-checked"]

COMPLETENESS_NOT_PROVEN: Final = (
    "history shown as far as this evidence carries it: that it is complete (no later "
    "revocation or transfer left out) is not proven"
)
"""Said with every verdict until bundles carry a proof that a good's history is complete: an
RFC 9162 log proves what is in it, never what is not (issue 11, item 6)."""

#: The signed struct each kind of entry carries, without and with a batch proof.
SIGNED_TYPES: Final[dict[EntryKind, tuple[str, str]]] = {
    EntryKind.REGISTER: ("Registration", "BatchRegistration"),
    EntryKind.CONFLICT: ("Registration", "BatchRegistration"),
    EntryKind.REVOKE: ("Revocation", "BatchRevocation"),
}

_VERBS: Final = {
    EntryKind.REGISTER: "registered",
    EntryKind.REVOKE: "revoked",
    EntryKind.CONFLICT: "claimed again (conflict)",
}


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvedEntry:
    """One entry the bundle proves: what happened to the good, by whom, where in the log."""

    kind: EntryKind
    leaf_index: int
    actor: str
    #: The struct the actor signed (None for a TRANSFER, attested by the registry's key).
    signed_type: str | None
    #: For an entry of a bulk batch: its 0-based position and the batch's size.
    batch_position: int | None
    batch_count: int | None
    #: A revocation's signed reason.
    reason: str | None
    #: A TRANSFER's platform, and whether it was the final sale that consumes a code.
    platform: str | None = None
    final: bool = False

    def describe(self) -> str:
        if self.kind is EntryKind.TRANSFER:
            what = "consumed by a final sale" if self.final else "transferred"
            on = f" on {self.platform}" if self.platform else ""
            return f"{what}{on} (attested by the registry) at leaf {self.leaf_index:,}"
        batch = ""
        if self.batch_position is not None and self.batch_count is not None:
            batch = f" (item {self.batch_position + 1:,} of a batch of {self.batch_count:,})"
        return f"{_VERBS[self.kind]} by {self.actor} at leaf {self.leaf_index:,}{batch}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.name,
            "leaf_index": self.leaf_index,
            "actor": self.actor,
            "signed_type": self.signed_type,
            "batch_position": self.batch_position,
            "batch_count": self.batch_count,
            "reason": self.reason,
            "platform": self.platform,
            "final": self.final,
        }


@dataclass(frozen=True)
class ChainFinding:
    """What the chain itself says about a head, under the trust root's finality rule."""

    chain_id: int
    contract: str
    #: The contract holds the head's root for its size (at the latest block).
    anchored: bool
    #: ... and held it at the depth the trust root asks.
    final: bool
    #: The trust root's rule, in words ("3 confirmations", "the network's finalized block").
    rule: str
    #: The block of the anchoring transaction, from its receipt (None without a pointer).
    block_number: int | None
    confirmations: int | None

    def describe(self, tree_size: int) -> str:
        where = f"on chain {self.chain_id} in contract {self.contract}"
        if not self.anchored:
            return f"head {tree_size:,} is not anchored {where} yet"
        if self.block_number is None or self.confirmations is None:
            depth = "block not named"
        else:
            plural = "" if self.confirmations == 1 else "s"
            depth = f"at block {self.block_number:,}, {self.confirmations:,} confirmation{plural}"
        if not self.final:
            return (
                f"head {tree_size:,} anchored {where} ({depth}) but not final yet: the trust "
                f"root asks {self.rule}"
            )
        return f"head {tree_size:,} anchored {where} ({depth}; final by {self.rule})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "anchored": self.anchored,
            "final": self.final,
            "rule": self.rule,
            "block_number": self.block_number,
            "confirmations": self.confirmations,
        }


@dataclass(frozen=True)
class BundleReport:
    """Exactly what a bundle proved, under which trust root."""

    good_type: GoodType
    fingerprint: bytes
    #: The entries proved, in log order.
    entries: tuple[ProvedEntry, ...]
    tree_size: int
    #: The head's signer: the key the trust root names for the head's size.
    head_signer: str
    #: The trust root the check used: its label and fingerprint.
    trust_root: str
    trust_fingerprint: str
    #: What the chain said; None when no chain was checked.
    chain: ChainFinding | None
    #: The bundle's own anchor pointer, for the record (unverified without a chain).
    claimed_anchor: str | None
    pending_entries: int
    #: The creator's name as the log shows it (a v2 bundle's CREATOR_IDENTITY entry, proved
    #: under the head), or None: an address with no proven name.
    creator_identity: IdentityClaim | None = None

    @property
    def status(self) -> Status:
        if self.chain is None:
            return "chain-not-checked"
        if not self.chain.anchored:
            return "not-anchored"
        return "verified" if self.chain.final else "not-final"

    def summary(self) -> str:
        """One line: what was proved, under which trust root, and what was not."""
        good = f"{self.good_type.name.lower()} {fingerprint_hex(self.fingerprint)}"
        parts = [f"{good} " + ", ".join(entry.describe() for entry in self.entries)]
        parts.append(_creator_line(self.entries[0].actor, self.creator_identity))
        parts.append(f"in head {self.tree_size:,} signed by {self.head_signer}")
        if self.chain is not None:
            parts.append(self.chain.describe(self.tree_size))
        elif self.claimed_anchor is not None:
            parts.append(f"chain not checked (the bundle says {self.claimed_anchor})")
        else:
            parts.append("chain not checked (the bundle names no anchor yet)")
        parts.append(f"trust root {self.trust_root}")
        if self.pending_entries:
            parts.append(
                f"the registry reports {self.pending_entries:,} more entr"
                f"{'y' if self.pending_entries == 1 else 'ies'} of this good not under this head"
            )
        parts.append(COMPLETENESS_NOT_PROVEN)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "good_type": self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "entries": [entry.as_dict() for entry in self.entries],
            "tree_size": self.tree_size,
            "head_signer": self.head_signer,
            "trust_root": self.trust_root,
            "trust_fingerprint": self.trust_fingerprint,
            "chain": None if self.chain is None else self.chain.as_dict(),
            "claimed_anchor": self.claimed_anchor,
            "pending_entries": self.pending_entries,
            "creator_identity": None
            if self.creator_identity is None
            else {**self.creator_identity.answer(), "creator": self.creator_identity.creator},
            "complete": False,
            "completeness": COMPLETENESS_NOT_PROVEN,
        }


def _creator_line(creator: str, claim: IdentityClaim | None) -> str:
    """Who the creator is, as far as the log proves it: never an unverified name as if it
    were verified."""
    if claim is None:
        return f"creator {creator} (no verified name)"
    when = time.strftime("%Y-%m-%d", time.gmtime(claim.checked_at))
    if claim.status == "verified":
        return (
            f"creator {creator} is {claim.name!r}, verified owner of {claim.domain} "
            f"({claim.method}, checked {when})"
        )
    return (
        f"creator {creator} once proved the name {claim.name!r} on {claim.domain}: NO LONGER "
        f"VERIFIED since {when}"
    )


# -- the check --------------------------------------------------------------------------------


class CheckCache:
    """Work that many bundles of one export share, done once: the creator's signature over a
    bulk batch's one payload, and a head's signer and signature. Keys are the full values
    checked (a payload by its SHA-256), never a claim about them, so a hit is the same
    check's same answer. (Payload digests themselves are remembered by
    ``verifier.bundle.payload_digest``.)"""

    def __init__(self) -> None:
        self._messages: dict[tuple[str, bytes, str], dict[str, object]] = {}
        self._heads: set[tuple[int, bytes, bytes, bytes]] = set()

    @staticmethod
    def payload_hash(payload: dict[str, Any]) -> bytes:
        return payload_digest(payload)


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
    root = trust.root_for(head.domain.domain())
    checker = _Checker(bundle, root, cache or CheckCache())
    checker.run()
    report = checker.report(None)
    if chain is None:
        return report
    # 7. The chain: the trusted chain and contract, holding this very root deep enough.
    finding = check_head_on_chain(head, bundle.anchor, root, chain)
    report = checker.report(finding)
    if not finding.anchored:
        raise NotAnchoredYet(finding.describe(head.tree_size), report)
    if not finding.final:
        raise NotFinalYet(finding.describe(head.tree_size), report)
    return report


class _Checker:
    def __init__(self, bundle: Bundle, root: TrustRoot, cache: CheckCache) -> None:
        self.bundle = bundle
        self.root = root
        self.cache = cache
        self.proved: list[ProvedEntry] = []
        self.identity: IdentityClaim | None = None

    def report(self, chain: ChainFinding | None) -> BundleReport:
        bundle, anchor = self.bundle, self.bundle.anchor
        claimed = None
        if anchor is not None:
            block = "" if anchor.block_number is None else f" at block {anchor.block_number:,}"
            claimed = (
                f"head {anchor.tree_size:,} is {anchor.state} on chain {anchor.chain_id} in "
                f"contract {checksum_address(anchor.contract)}{block}"
            )
        return BundleReport(
            good_type=bundle.good.good_type,
            fingerprint=bundle.good.fingerprint,
            entries=tuple(self.proved),
            tree_size=bundle.tree_head.tree_size,
            head_signer=checksum_address(bundle.tree_head.signer),
            trust_root=self.root.label(),
            trust_fingerprint=self.root.fingerprint(),
            chain=chain,
            claimed_anchor=claimed,
            pending_entries=bundle.pending_entries,
            creator_identity=self.identity,
        )

    def run(self) -> None:
        bundle, head, root = self.bundle, self.bundle.tree_head, self.root
        # 1. One good, one REGISTER entry first, the rest in log order.
        _check_shape(bundle)
        creator = bundle.entry.actor
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
        # 5. (d) The head is signed, under the trusted domain, by the key the trust root names
        #    for its size (a rotation keeps old heads under the old key, new ones under the new).
        seen = (head.tree_size, head.root, head.signature, head.signer)
        if seen not in self.cache._heads:
            check_head(head, root)
            self.cache._heads.add(seen)
        # 6. The anchor pointer, if any, points at this head on the trusted chain and contract.
        _check_pointer(bundle, root)
        # 7. The creator's name, if the bundle shows one: a CREATOR_IDENTITY entry about this
        #    creator, attested by the registry key for its place, in the same head.
        if bundle.creator_identity is not None:
            self.identity = _check_identity(bundle.creator_identity, root, creator, head)


def _check_identity(
    entry: SubjectEntry, root: TrustRoot, creator: bytes, head: SignedTreeHead
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
    if payload_hash(entry.payload) != entry.payload_hash:
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
        document_hash = cache.payload_hash(entry.payload)
        batch = entry.batch_proof
        if batch is not None:
            # A batch's payload is hashed once; each good's is SHA-256(that || uint32 position).
            document_hash = batch_entry_payload_hash(document_hash, batch.position)
        leaf_hash = entry.leaf().leaf_hash()
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
    transfer = entry.payload.get("transfer")
    if not isinstance(transfer, dict):
        raise BundleInvalid("signature", f"{where}: the TRANSFER payload holds no transfer")
    named = (
        transfer.get("good_type"),
        transfer.get("fingerprint"),
        transfer.get("creator"),
        entry.payload.get("registry"),
    )
    if named != (
        int(entry.good_type),
        fingerprint_hex(entry.fingerprint),
        checksum_address(creator),
        actor,
    ):
        raise BundleInvalid(
            "signature",
            f"{where}: the TRANSFER payload does not name this good, its creator and the registry",
        )
    final, platform = transfer.get("final"), transfer.get("platform")
    return ProvedEntry(
        EntryKind.TRANSFER,
        entry.leaf_index,
        actor,
        None,
        None,
        None,
        None,
        final=final is True,
        platform=platform if isinstance(platform, str) else None,
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
    payload = entry.payload
    signed = payload.get("signed")
    if not isinstance(signed, dict) or set(signed) != {"type", "signer", "message", "signature"}:
        raise InvalidInput("the payload holds no signed message {type, signer, message, signature}")
    if signed["type"] != expected:
        raise InvalidInput(f"a {entry.kind.name} entry here must carry a signed {expected}")
    key = (expected, cache.payload_hash(payload), actor)
    message = cache._messages.get(key)
    if message is None:
        message = _verified_message(payload, signed, expected, actor, root, where, cache)
        cache._messages[key] = message
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


def _verified_message(
    payload: dict[str, Any],
    signed: dict[str, Any],
    expected: str,
    actor: str,
    root: TrustRoot,
    where: str,
    cache: CheckCache,
) -> dict[str, object]:
    """The payload's signed message, once its domain, signature, signer and attached
    documents are checked (what every good of one bulk batch shares)."""
    domain_document = payload.get("domain")
    if not isinstance(domain_document, dict):
        raise InvalidInput("the payload holds no EIP-712 domain")
    domain = Domain.from_dict(domain_document)
    # A signature is valid only under the domain it was made for; a creator's signed message
    # copied from another registry's log names that registry's domain: refused here, before
    # its signature is even recovered.
    root.check_domain(domain, f"{where}: the {expected}")
    message = _message(expected, signed["message"])
    signer, signature = signed["signer"], signed["signature"]
    if not isinstance(signer, str) or not isinstance(signature, str):
        raise InvalidInput("the signed message's signer and signature must be 0x-hex text")
    # The creator's signature: 65 bytes, low s, v in {27, 28}, recovering the claimed signer
    # under the trusted domain (THREATS 12-16); and that signer is the leaf's actor.
    try:
        verify_signature(expected, message, root.domain(), signature, signer)
    except SignatureError as exc:
        raise SignatureError(f"the {expected} signature: {exc.detail}") from None
    if parse_address(signer) != actor:
        raise SignatureError(f"the {expected} was signed by {signer}, not the leaf's actor")
    if expected.endswith("Registration"):
        # The policy and metadata shown are the ones the creator signed the hashes of.
        for name, field in (("royalty_policy", "royaltyPolicy"), ("metadata", "metadata")):
            document = payload.get(name)
            if not isinstance(document, dict) or cache.payload_hash(document) != message[field]:
                raise InvalidInput(f"the payload's {name} is not the one the {expected} signed")
    return message


def _message(primary_type: str, document: object) -> dict[str, object]:
    """A signed message from its payload form (bytes32 as 0x-hex, uint64 as canonical decimal
    strings, DESIGN deviation 4), validated against its struct type."""
    if not isinstance(document, dict):
        raise InvalidInput(f"the {primary_type} message must be a JSON object")
    message: dict[str, object] = dict(document)
    for member in STRUCT_TYPES[primary_type]:
        name = member["name"]
        value = document.get(name)
        if member["type"] == "uint64":
            if not (isinstance(value, str) and value.isascii() and value.isdigit()) or (
                str(int(value)) != value
            ):
                raise InvalidInput(f"{primary_type}.{name} must be a decimal string")
            message[name] = int(value)
    return parse_message(primary_type, message)


def check_head(head: SignedTreeHead, root: TrustRoot) -> None:
    """The head was signed for the trusted domain, by the key the trust root names for its
    size. Shared by bundles and exports."""
    root.check_domain(head.domain.domain(), f"head {head.tree_size:,}")
    root.check_head_signer(head.tree_size, head.signer)
    try:
        verify_signature(
            "TreeHead", head.message(), root.domain(), head.signature, checksum_address(head.signer)
        )
    except (SignatureError, InvalidInput) as exc:
        raise BundleInvalid(
            "tree-head", f"head {head.tree_size:,}: its signature: {exc.detail}"
        ) from None


def _check_pointer(bundle: Bundle, root: TrustRoot) -> None:
    head, anchor = bundle.tree_head, bundle.anchor
    if anchor is None:
        return
    pointed = (anchor.tree_size, anchor.chain_id, checksum_address(anchor.contract))
    if pointed != (head.tree_size, root.chain_id, root.contract_address):
        raise BundleInvalid(
            "anchor",
            f"the anchor names head {anchor.tree_size:,} on chain {anchor.chain_id} in "
            f"{checksum_address(anchor.contract)}, not head {head.tree_size:,} on chain "
            f"{root.chain_id} in {root.contract_address}",
        )


def check_head_on_chain(
    head: SignedTreeHead, anchor: AnchorPointer | None, root: TrustRoot, chain: AnchorView
) -> ChainFinding:
    """Steps: (1) the node serves the trusted chain, (2) the contract asked is the trusted
    one and holds the TracemarkAnchor code, (3) its root for the head's size is the head's
    root, (4) it was already at the depth the trust root asks (``confirmations`` blocks, or
    the ``finalized`` block), (5) the pointed transaction anchored it, and how deep its block is.

    Returns the finding (anchored? final?); raises ``BundleInvalid`` where the chain
    contradicts the evidence. Shared by bundles and exports, which hold many heads."""
    # 1.
    chain_id = chain.chain_id()
    if chain_id != root.chain_id:
        raise BundleInvalid(
            "chain",
            f"the node serves chain {chain_id}, but trust root {root.label()} is for chain "
            f"{root.chain_id}",
        )
    # 2. The contract is the trusted one, whatever the bundle points at.
    if chain.address != root.contract_address:
        raise BundleInvalid(
            "chain",
            f"asked to check against contract {chain.address}, but trust root {root.label()} "
            f"names {root.contract_address}",
        )
    try:
        chain.check(chain_id)
    except ChainMismatch as exc:
        raise BundleInvalid("chain", exc.detail) from None
    rule = root.finality.describe()
    # 3. The root comes from the contract, never from the bundle (THREATS 8).
    latest = chain.root_at(head.tree_size)
    if latest is None:
        if anchor is not None:
            raise BundleInvalid(
                "chain",
                f"the evidence says head {head.tree_size:,} is anchored, but contract "
                f"{chain.address} on chain {chain_id} holds no root for that size (removed "
                "by a reorganisation, or never anchored)",
            )
        return ChainFinding(chain_id, chain.address, False, False, rule, None, None)
    if latest != head.root:
        raise BundleInvalid(
            "chain",
            f"contract {chain.address} on chain {chain_id} anchored root 0x{latest.hex()} for "
            f"size {head.tree_size:,}, not the head's root 0x{head.root.hex()}: the contract "
            "never anchored this head",
        )
    # 4. ... and held it as deep as the trust root asks: a shallower root can still be
    #    removed by a reorganisation.
    if root.finality.finalized:
        deep = chain.root_at_block(head.tree_size, chain.finalized_block())
    else:
        assert root.finality.confirmations is not None
        deep = chain.confirmed_root(head.tree_size, root.finality.confirmations)
    final = deep == head.root
    # 5. The block, from the pointed transaction's receipt (a pointer the chain confirms).
    if anchor is None or anchor.tx_hash is None:
        return ChainFinding(chain_id, chain.address, True, final, rule, None, None)
    try:
        block = chain.anchor_block(anchor.tx_hash, head.tree_size, head.root)
    except ReceiptMismatch as exc:
        raise BundleInvalid(
            "chain",
            f"transaction 0x{anchor.tx_hash.hex()} does not anchor head {head.tree_size:,}: "
            f"{exc.detail}",
        ) from None
    if block is None:
        raise BundleInvalid(
            "chain", f"transaction 0x{anchor.tx_hash.hex()} is not mined on chain {chain_id}"
        )
    confirmations = chain.block_number() - block + 1
    return ChainFinding(chain_id, chain.address, True, final, rule, block, confirmations)


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
]
