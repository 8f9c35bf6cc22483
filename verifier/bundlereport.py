"""What a bundle check proved: the report, its entries and its chain finding, as text and JSON."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from verifier.identityclaim import IdentityClaim

Status = Literal["verified", "not-anchored", "not-final", "chain-not-checked"]

COMPLETENESS_NOT_PROVEN: Final = (
    "history shown as far as this evidence carries it: that it is complete (no later "
    "revocation or transfer left out) is not proven"
)
"""Said with every verdict until bundles carry a proof that a good's history is complete: an
RFC 9162 log proves what is in it, never what is not (issue 11, item 6)."""

_VERBS: Final = {
    EntryKind.REGISTER: "registered",
    EntryKind.REVOKE: "revoked",
    EntryKind.CONFLICT: "claimed again (conflict)",
}


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
