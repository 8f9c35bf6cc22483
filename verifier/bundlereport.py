"""What a bundle or absence check proved: the reports, their entries, state and chain
findings, as text and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from verifier.checkpointcheck import WitnessFinding
from verifier.identityclaim import IdentityClaim
from verifier.timetext import utc_text

Status = Literal["verified", "not-anchored", "not-final", "chain-not-checked"]

COMPLETENESS_NOT_PROVEN: Final = (
    "history shown as far as this evidence carries it: that it is complete (no later "
    "revocation or transfer left out) is not proven"
)
"""Said with every verdict of a bundle that carries no proof that the good's history is
complete (v1, v2, or v3 under a head that ends in no state commitment): an RFC 9162 log
proves what is in it, never what is not (issue 11, item 6)."""

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
    #: A DELIVERY's order (issue 17).
    order_id: int | None = None

    def describe(self) -> str:
        if self.kind is EntryKind.DELIVERY:
            return (
                f"delivered for order {self.order_id} on {self.platform} "
                f"(attested by the registry) at leaf {self.leaf_index:,}"
            )
        if self.kind is EntryKind.TRANSFER:
            what = "consumed by a final sale" if self.final else "transferred"
            on = f" on {self.platform}" if self.platform else ""
            return f"{what}{on} (attested by the registry) at leaf {self.leaf_index:,}"
        batch = ""
        if self.batch_position is not None and self.batch_count is not None:
            batch = f" (item {self.batch_position + 1:,} of a batch of {self.batch_count:,})"
        return f"{_VERBS[self.kind]} by {self.actor} at leaf {self.leaf_index:,}{batch}"

    def as_dict(self) -> dict[str, Any]:
        document = self._fields()
        if self.order_id is not None:  # only a DELIVERY's: earlier reports stay as they were
            document["order_id"] = self.order_id
        return document

    def _fields(self) -> dict[str, Any]:
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
class StateFinding:
    """What the state map under a head proved about a good (issue 14): the head's last leaf is
    a STATE_COMMITMENT entry carrying the map root, and the good has exactly ``entry_count``
    entries there, the last at ``last_leaf_index`` (both None: the good is not in the map)."""

    tree_size: int
    commitment_leaf_index: int
    map_root: bytes
    entry_count: int | None
    last_leaf_index: int | None

    def completeness(self) -> str:
        """The short statement a report carries: complete as of which head."""
        return f"complete as of head {self.tree_size:,}"

    def describe(self) -> str:
        plural = "y" if self.entry_count == 1 else "ies"
        return (
            f"{self.completeness()}: the state map committed at leaf "
            f"{self.commitment_leaf_index:,} holds {self.entry_count:,} entr{plural} of this "
            f"good, the last at leaf {self.last_leaf_index:,}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "commitment_leaf_index": self.commitment_leaf_index,
            "map_root": "0x" + self.map_root.hex(),
            "entry_count": self.entry_count,
            "last_leaf_index": self.last_leaf_index,
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
    #: What the state map proved (a v3 bundle under a head with a state commitment): the
    #: entries above are all of the good's entries under the head. None: not proven.
    state: StateFinding | None = None
    #: What the head's checkpoint proved (issue 15): the log's signature and who cosigned it.
    witness: WitnessFinding | None = None

    @property
    def status(self) -> Status:
        return _status(self.chain)

    @property
    def completeness(self) -> str:
        """Whether the history shown is proven complete, in words."""
        return COMPLETENESS_NOT_PROVEN if self.state is None else self.state.completeness()

    def summary(self) -> str:
        """One line: what was proved, under which trust root, and what was not."""
        good = f"{self.good_type.name.lower()} {fingerprint_hex(self.fingerprint)}"
        parts = [f"{good} " + ", ".join(entry.describe() for entry in self.entries)]
        parts.append(_creator_line(self.entries[0].actor, self.creator_identity))
        parts.append(f"in head {self.tree_size:,} signed by {self.head_signer}")
        if self.witness is not None:
            parts.append(self.witness.describe())
        parts.append(_chain_part(self.chain, self.tree_size, self.claimed_anchor, "bundle"))
        parts.append(f"trust root {self.trust_root}")
        if self.pending_entries:
            parts.append(
                f"the registry reports {self.pending_entries:,} more entr"
                f"{'y' if self.pending_entries == 1 else 'ies'} of this good not under this head"
            )
        parts.append(COMPLETENESS_NOT_PROVEN if self.state is None else self.state.describe())
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "good_type": self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            "entries": [entry.as_dict() for entry in self.entries],
            **_head_fields(self),
            "witness": None if self.witness is None else self.witness.as_dict(),
            "pending_entries": self.pending_entries,
            "creator_identity": None
            if self.creator_identity is None
            else {**self.creator_identity.answer(), "creator": self.creator_identity.creator},
            "complete": self.state is not None,
            "completeness": self.completeness,
            "state": None if self.state is None else self.state.as_dict(),
        }


@dataclass(frozen=True)
class AbsenceReport:
    """What an absence proof proved: the good is not in the log as of the head, under which
    trust root, and what the chain said."""

    good_type: GoodType
    fingerprint: bytes
    tree_size: int
    head_signer: str
    trust_root: str
    trust_fingerprint: str
    state: StateFinding
    chain: ChainFinding | None
    claimed_anchor: str | None
    #: What the head's checkpoint proved (issue 15).
    witness: WitnessFinding | None = None

    @property
    def status(self) -> Status:
        return _status(self.chain)

    def summary(self) -> str:
        """One line: the good is not in the log as of the head, and how that was proved."""
        good = f"{self.good_type.name.lower()} {fingerprint_hex(self.fingerprint)}"
        how = [
            f"state map committed at leaf {self.state.commitment_leaf_index:,}",
            f"head signed by {self.head_signer}",
            *(() if self.witness is None else (self.witness.describe(),)),
            _chain_part(self.chain, self.tree_size, self.claimed_anchor, "proof"),
            f"trust root {self.trust_root}",
        ]
        return f"{good} is not in the log as of head {self.tree_size:,} ({'; '.join(how)})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "registered": False,
            "summary": self.summary(),
            "good_type": self.good_type.name.lower(),
            "fingerprint": fingerprint_hex(self.fingerprint),
            **_head_fields(self),
            "witness": None if self.witness is None else self.witness.as_dict(),
            "state": self.state.as_dict(),
        }


def _head_fields(report: BundleReport | AbsenceReport) -> dict[str, Any]:
    """The head a report's proofs are under, its signer, the trust root and what the chain
    said: the same keys, in the same order, in both reports' JSON."""
    return {
        "tree_size": report.tree_size,
        "head_signer": report.head_signer,
        "trust_root": report.trust_root,
        "trust_fingerprint": report.trust_fingerprint,
        "chain": None if report.chain is None else report.chain.as_dict(),
        "claimed_anchor": report.claimed_anchor,
    }


def _status(chain: ChainFinding | None) -> Status:
    if chain is None:
        return "chain-not-checked"
    if not chain.anchored:
        return "not-anchored"
    return "verified" if chain.final else "not-final"


def _chain_part(
    chain: ChainFinding | None, tree_size: int, claimed_anchor: str | None, what: str
) -> str:
    """What the chain said of the head, or that it was not checked (and what the evidence,
    a ``what``, claims: unverified)."""
    if chain is not None:
        return chain.describe(tree_size)
    if claimed_anchor is not None:
        return f"chain not checked (the {what} says {claimed_anchor})"
    return f"chain not checked (the {what} names no anchor yet)"


def _creator_line(creator: str, claim: IdentityClaim | None) -> str:
    """Who the creator is, as far as the log proves it: never an unverified name as if it
    were verified."""
    if claim is None:
        return f"creator {creator} (no verified name)"
    when = utc_text(claim.checked_at, "%Y-%m-%d")  # a uint64: any number an entry carries
    if claim.status == "verified":
        return (
            f"creator {creator} is {claim.name!r}, verified owner of {claim.domain} "
            f"({claim.method}, checked {when})"
        )
    return (
        f"creator {creator} once proved the name {claim.name!r} on {claim.domain}: NO LONGER "
        f"VERIFIED since {when}"
    )
