"""Checking an evidence export (``verifier.exportformat``) under the caller's trust policy.

The entry model and every check of a good are the bundle's (``verifier.bundle``,
``verifier.offline.check_bundle``): an export adds the heads' chain of consistency.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.merkle import verify_consistency
from registry.treehead import TreeHead
from verifier.bundle import (
    FORMAT as BUNDLE_FORMAT,
)
from verifier.bundle import (
    Bundle,
)
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN, ChainFinding, Status
from verifier.checkpointcheck import WitnessFinding, check_checkpoint
from verifier.entrycheck import CheckCache
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.exportformat import FORMAT_V2, Export, ExportGood
from verifier.headcheck import AnchorView, check_head_on_chain
from verifier.offline import prove_bundle
from verifier.trust import TrustPolicy, TrustRoot

# -- checking one -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadFinding:
    """One head of the export, and what the chain said of it (None: not checked)."""

    tree_size: int
    claimed_anchor: bool
    chain: ChainFinding | None
    #: What the head's checkpoint proved (None: the check did not get that far).
    witness: WitnessFinding | None = None


_KIND_WORDS: Final = {
    "REGISTER": ("registration", "registrations"),
    "TRANSFER": ("transfer", "transfers"),
    "REVOKE": ("revocation", "revocations"),
    "CONFLICT": ("conflicting claim", "conflicting claims"),
}


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _anchored_head(head: HeadFinding) -> str:
    chain = head.chain
    if chain is None or chain.block_number is None or chain.confirmations is None:
        return f"head {head.tree_size:,}"
    return (
        f"head {head.tree_size:,} at block {chain.block_number:,} "
        f"({_count(chain.confirmations, 'confirmation', 'confirmations')})"
    )


@dataclass(frozen=True)
class ExportReport:
    """Exactly what an export proved, under which trust root."""

    goods: int
    #: Entries proved, by kind name (REGISTER, TRANSFER, ...).
    entries: dict[str, int]
    heads: tuple[HeadFinding, ...]
    #: The keys that signed the heads, in head order, each once.
    head_signers: tuple[str, ...]
    chain_id: int | None
    contract: str | None
    #: The trust root the check used (None for an empty export: nothing to check under one).
    trust_root: str | None
    trust_fingerprint: str | None
    chain_checked: bool
    pending_entries: int
    next_after: int | None
    #: The export's format (v1 carries no checkpoints).
    format: str = FORMAT_V2

    @property
    def status(self) -> Status:
        """``verified`` when the chain holds the largest head's root at the trust root's
        depth: the consistency proofs then put every head, and so every entry, inside it."""
        if not self.chain_checked:
            return "chain-not-checked"
        last = self.heads[-1].chain if self.heads else None
        if last is None or not last.anchored:
            return "not-anchored"
        return "verified" if last.final else "not-final"

    def summary(self) -> str:
        """One line: exactly what was proved, and what was not."""
        if not self.heads:
            return "an empty export: no goods, nothing proved"
        count = sum(self.entries.values())
        kinds = ", ".join(
            _count(self.entries[kind], *_KIND_WORDS[kind])
            for kind in _KIND_WORDS
            if self.entries.get(kind)
        )
        sizes = ", ".join(f"{h.tree_size:,}" for h in self.heads)
        parts = [
            f"{_count(self.goods, 'good', 'goods')} ({_count(count, 'entry', 'entries')}: "
            f"{kinds}) under {_count(len(self.heads), 'head', 'heads')} (size {sizes}) "
            f"signed by {', '.join(self.head_signers)}"
        ]
        if len(self.heads) > 1:
            parts.append(
                f"heads consistent: one append-only log from size "
                f"{self.heads[0].tree_size:,} to {self.heads[-1].tree_size:,}"
            )
        parts.extend(h.witness.describe() for h in self.heads if h.witness is not None)
        if self.chain_checked:
            where = f"on chain {self.chain_id} in contract {self.contract}"
            anchored = [h for h in self.heads if h.chain is not None and h.chain.anchored]
            if anchored:
                parts.append(f"anchored {where}: " + ", ".join(map(_anchored_head, anchored)))
            missing = ", ".join(f"{h.tree_size:,}" for h in self.heads if h not in anchored)
            if missing and self.status in ("verified", "not-final"):
                parts.append(f"head {missing} not anchored itself, but inside the anchored last")
            elif missing:
                parts.append(f"not anchored {where} yet: head {missing}")
            last = self.heads[-1].chain
            if last is not None and last.anchored:
                state = "final" if last.final else "NOT final yet"
                parts.append(f"the last head is {state} by the trust root's rule ({last.rule})")
        else:
            claimed = ", ".join(f"{h.tree_size:,}" for h in self.heads if h.claimed_anchor)
            parts.append(f"chain not checked (the export says anchored: head {claimed or 'none'})")
        parts.append(f"trust root {self.trust_root}")
        if self.pending_entries:
            parts.append(
                f"the registry reports {_count(self.pending_entries, 'more entry', 'more entries')}"
                " of these goods not under these heads"
            )
        if self.next_after is not None:
            parts.append(f"one page of a selection: the next starts --after {self.next_after}")
        parts.append(COMPLETENESS_NOT_PROVEN)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "status": self.status,
            "summary": self.summary(),
            "goods": self.goods,
            "entries": dict(sorted(self.entries.items())),
            "head_signers": list(self.head_signers),
            "chain_id": self.chain_id,
            "contract": self.contract,
            "trust_root": self.trust_root,
            "trust_fingerprint": self.trust_fingerprint,
            "heads": [
                {
                    "tree_size": h.tree_size,
                    "claimed_anchor": h.claimed_anchor,
                    "anchored": None if h.chain is None else h.chain.anchored,
                    "final": None if h.chain is None else h.chain.final,
                    "block_number": None if h.chain is None else h.chain.block_number,
                    "confirmations": None if h.chain is None else h.chain.confirmations,
                    "witness": None if h.witness is None else h.witness.as_dict(),
                }
                for h in self.heads
            ],
            "pending_entries": self.pending_entries,
            "next_after": self.next_after,
            "complete": False,
            "completeness": COMPLETENESS_NOT_PROVEN,
        }


def check_export(export: Export, trust: TrustPolicy, chain: AnchorView | None) -> ExportReport:
    """Check a whole export under the caller's trust policy; return what it proves, or raise.

    Steps: (0) the trust root the caller pinned for the export's registry (else
    ``UntrustedRegistry``); (1) its shape: heads ascending, of one registry, each used by a
    good, anchors and consistency proofs naming consecutive heads, one checkpoint (or null) a
    head; (2) the consistency proof from each head to the next; (2b) each head's checkpoint
    under the trust root's log keys and witness policy (``check_checkpoint``); (3) every good
    as a bundle under its head (``check_bundle``: leaves, payloads, signatures under the
    trusted domain, batch proofs, inclusion, the head's signer and signature, the anchor
    pointer); (4) with a chain, every head against the
    trusted contract, the last at the trust root's depth (else ``NotAnchoredYet`` /
    ``NotFinalYet`` with the report so far). Raises ``BundleInvalid`` for evidence that does
    not verify; transport failures of the chain propagate: they prove nothing.
    """
    checker = _ExportChecker(export)
    if not export.heads:
        return checker.report(None, chain_checked=chain is not None)
    root = trust.root_for(export.heads[0].domain)
    checker.run(root, chain)
    report = checker.report(root, chain_checked=chain is not None)
    if chain is not None:
        last = report.heads[-1].chain
        assert last is not None
        if not last.anchored:
            raise NotAnchoredYet(last.describe(report.heads[-1].tree_size), report)
        if not last.final:
            raise NotFinalYet(last.describe(report.heads[-1].tree_size), report)
    return report


class _ExportChecker:
    def __init__(self, export: Export) -> None:
        self.export = export
        #: Entries proved, by kind; named in the report (an enum's ``name`` is a Python-level
        #: property: read once a kind, not once an entry).
        self.entries: dict[EntryKind, int] = {}
        self.findings: dict[int, ChainFinding] = {}
        self.witnesses: dict[int, WitnessFinding] = {}

    def report(self, root: TrustRoot | None, *, chain_checked: bool) -> ExportReport:
        export = self.export
        anchored = {a.tree_size for a in export.anchors}
        signers = tuple(dict.fromkeys(checksum_address(h.signer) for h in export.heads))
        return ExportReport(
            goods=len(export.goods),
            entries={kind.name: count for kind, count in self.entries.items()},
            heads=tuple(
                HeadFinding(
                    h.tree_size,
                    h.tree_size in anchored,
                    self.findings.get(h.tree_size),
                    self.witnesses.get(h.tree_size),
                )
                for h in export.heads
            ),
            head_signers=signers,
            chain_id=None if root is None else root.chain_id,
            contract=None if root is None else root.contract_address,
            trust_root=None if root is None else root.label(),
            trust_fingerprint=None if root is None else root.fingerprint(),
            chain_checked=chain_checked,
            pending_entries=sum(g.pending_entries for g in export.goods),
            next_after=export.next_after,
            format=export.format,
        )

    def run(self, root: TrustRoot, chain: AnchorView | None) -> None:
        export = self.export
        heads = {h.tree_size: h for h in export.heads}
        anchors = {a.tree_size: a for a in export.anchors}
        # 1. The shape: what refers to what, and one registry the trust root names.
        _check_shape(export, heads)
        if not root.names_key(export.registry):
            raise BundleInvalid(
                "shape",
                f"the export names registry {checksum_address(export.registry)}, a key trust "
                f"root {root.label()} does not name",
            )
        # 2. The heads are one append-only log: each extends the one before.
        for link in export.consistency:
            older, newer = heads[link.from_size], heads[link.to_size]
            try:
                verify_consistency(
                    older.tree_size, newer.tree_size, link.proof, older.root, newer.root
                )
            except (InvalidProof, InvalidInput) as exc:
                raise BundleInvalid(
                    "consistency",
                    f"head {newer.tree_size:,} does not extend head {older.tree_size:,}: "
                    f"{exc.detail}",
                ) from None
        # 2b. Each head's checkpoint: signed by the log's keys the trust root names, the
        #     head's size and root, cosigned as its witness policy asks (issue 15).
        for index, head in enumerate(export.heads):
            self.witnesses[head.tree_size] = check_checkpoint(
                export.checkpoint_of(index), head, root
            )
        # 3. Every good, as the bundle it is under its head (the same checks, the same code),
        #    under the one trust root: every head is of the log whose root was chosen above.
        cache = CheckCache()  # a batch's payload and signature, a head: checked once
        bundles: dict[int, Bundle] = {}  # the first good's bundle under each head
        for good in export.goods:
            # Every part was validated, by the bundle's own types, as the export was read:
            # the bundle is built from them validating nothing again (10^5 entries' payloads
            # would each be encoded once more), as a copy of the head's first bundle with the
            # good's parts put in (a third of the cost of ``model_construct``).
            parts: dict[str, Any] = {
                "good": good.good,
                "entry": good.entry,
                "later_entries": good.later_entries,
                "pending_entries": good.pending_entries,
            }
            first = bundles.get(good.tree_size)
            if first is None:
                bundle = bundles[good.tree_size] = Bundle.model_construct(
                    format=BUNDLE_FORMAT,
                    tree_head=heads[good.tree_size],
                    anchor=anchors.get(good.tree_size),
                    **parts,
                )
            else:
                bundle = first.model_copy(update=parts)
            try:
                proved = prove_bundle(bundle, root, cache)
            except BundleInvalid as exc:
                raise BundleInvalid(exc.step, f"{_good_name(good)}: {exc.detail}") from None
            for entry in proved:
                self.entries[entry.kind] = self.entries.get(entry.kind, 0) + 1
        # 4. The chain: the trusted contract's root for each head's size is the head's root.
        if chain is not None:
            for head in export.heads:
                self.findings[head.tree_size] = check_head_on_chain(
                    head, anchors.get(head.tree_size), root, chain
                )


def _good_name(good: ExportGood) -> str:
    """How a failure names the good (made only for a failure: 5,000 names cost 0.03 s)."""
    return f"{good.good.good_type.name.lower()} {fingerprint_hex(good.good.fingerprint)}"


def _check_shape(export: Export, heads: dict[int, TreeHead]) -> None:
    def fail(detail: str) -> BundleInvalid:
        return BundleInvalid("shape", detail)

    sizes = [h.tree_size for h in export.heads]
    if sizes != sorted(set(sizes)):
        raise fail("the heads are not in strictly ascending size")
    if export.heads:
        # One log: one domain. The signers may differ across a key rotation; each head's
        # signer is checked against the trust root with its signature (``check_head``).
        first = export.heads[0]
        for head in export.heads[1:]:
            if head.domain != first.domain:
                raise fail(
                    f"head {head.tree_size:,} is of another registry or contract than head "
                    f"{first.tree_size:,}: an export holds one log"
                )
    seen: set[tuple[GoodType, bytes]] = set()
    used: set[int] = set()
    for good in export.goods:
        key = (good.good.good_type, good.good.fingerprint)
        if key in seen:
            raise fail(f"{_good_name(good)} is in the export twice")
        seen.add(key)
        if good.tree_size not in heads:
            raise fail(
                f"{_good_name(good)} is proved under head {good.tree_size:,}, which is not "
                f"among the export's heads ({', '.join(f'{s:,}' for s in sizes) or 'none'})"
            )
        used.add(good.tree_size)
    unused = [s for s in sizes if s not in used]
    if unused:
        raise fail(f"head {unused[0]:,} proves nothing in this export")
    if export.checkpoints is not None and len(export.checkpoints) != len(export.heads):
        raise fail(
            f"{len(export.checkpoints):,} checkpoints for {len(export.heads):,} heads: one "
            "(or null) a head, in the heads' order"
        )
    anchor_sizes = [a.tree_size for a in export.anchors]
    if anchor_sizes != sorted(set(anchor_sizes)):
        raise fail("the anchors are not in strictly ascending size")
    for size in anchor_sizes:
        if size not in heads:
            raise fail(f"an anchor names head {size:,}, which is not among the export's heads")
    expected = list(pairwise(sizes))
    links = [(link.from_size, link.to_size) for link in export.consistency]
    if links != expected:
        missing = next((pair for pair in expected if pair not in links), None)
        detail = (
            f"no consistency proof from head {missing[0]:,} to head {missing[1]:,}"
            if missing is not None
            else "the consistency proofs do not link each head to the next"
        )
        raise fail(detail)


__all__ = ["ExportReport", "HeadFinding", "check_export"]
