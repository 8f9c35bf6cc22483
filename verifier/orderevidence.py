"""An order's dispute evidence (issue 17 item 5), ``tracemark-order-evidence/v1``: its format
and its offline check.

The evidence stands alone: it verifies with nothing but the chain and a pinned trust root.
It carries

- ``changes``: the order's state changes, opening to now, each hash-chained
  (``registry.orders.change_hash``) and signed by the registry (EIP-712 ``OrderStateChange``);
- ``bundle``: the good's proof bundle (``tracemark-bundle/v4``) under a head that covers the
  order's DELIVERY entry: every entry of the good under that head (before and after the
  delivery) with its inclusion proof, and the state map's value, which proves they are all;
- ``delivery_leaf``: which of the bundle's entries is this order's DELIVERY;
- ``summary``: what the evidence shows, in facts and in English and Chinese
  (``verifier.orderfacts``).

Nothing it says about itself is trusted. ``check_order_evidence`` checks the bundle as any
bundle (leaves, payloads, signatures, proofs, the state map, the head, its checkpoint, and the
chain), requires the history to be proved complete, finds the DELIVERY at ``delivery_leaf``
and requires it to be this order's, walks the change chain (every hash recomputed, every move
in the state table, every signature recovered under the trust root's domain to a key the
trust root names) and requires its opening to be the change the DELIVERY entry binds
(``opened``) and its delivery to be at the DELIVERY's time; then it computes the summary again
from what it verified and refuses the evidence if the shipped one differs in anything.

What is not proved: the changes are signed, not logged, so a bundle made earlier, or one with
its last changes left out, shows an earlier state (the summary says "as of its last signed
change"); what happened after the head is not in it.

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError

from registry.edges import Address, Hash32, SignatureBytes, Uint64
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, describe_validation
from registry.leaf import EntryKind
from registry.orders import (
    CHANGE_TYPE,
    OPENED,
    Event,
    InvalidTransition,
    State,
    change_document,
    change_hash,
    next_state,
)
from registry.signatures import verify_signature
from registry.treehead import TreeHead
from verifier import boundedjson
from verifier.bundle import MAX_BUNDLE_BYTES, Bundle, BundleEntry, MalformedBundle
from verifier.bundlereport import BundleReport, Status
from verifier.deliverycheck import delivery_payload
from verifier.entrycheck import CheckCache
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.headcheck import AnchorView, check_head_on_chain
from verifier.offline import check_bundle
from verifier.orderfacts import facts_of, summarize
from verifier.trust import TrustPolicy, TrustRoot

FORMAT: Final = "tracemark-order-evidence/v1"

MAX_ORDER_CHANGES: Final = 16
"""Most changes one order's evidence carries. An order makes at most four (open, deliver,
dispute, resolve); the bound keeps a hostile file's signature recoveries few."""

MAX_EVIDENCE_BYTES: Final = MAX_BUNDLE_BYTES + 64 * 1024
"""Largest evidence file read: a bundle and a few changes and summary lines."""


class MalformedOrderEvidence(MalformedBundle):
    """The file is not a ``tracemark-order-evidence/v1`` document."""

    code = "malformed-order-evidence"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class OrderChange(_Model):
    """One state change as the registry signed it."""

    sequence: Annotated[StrictInt, Field(ge=0, lt=MAX_ORDER_CHANGES)]
    event: _Name
    from_state: _Name | None
    to_state: _Name
    #: "platform:<id>", or "registry" for a timeout it applied.
    actor: _Name
    at: Uint64
    change_hash: Hash32
    signature: SignatureBytes
    signer: Address


class OrderEvidence(_Model):
    """A ``tracemark-order-evidence/v1`` document."""

    format: Literal["tracemark-order-evidence/v1"]
    order_id: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    #: The leaf of the order's DELIVERY entry, one of the bundle's entries.
    delivery_leaf: Annotated[StrictInt, Field(ge=0)]
    changes: Annotated[tuple[OrderChange, ...], Field(min_length=1, max_length=MAX_ORDER_CHANGES)]
    bundle: Bundle
    #: ``verifier.orderfacts.summarize`` of the evidence: checked equal to it, never trusted.
    summary: dict[str, Any]

    @property
    def tree_head(self) -> TreeHead:
        return self.bundle.tree_head

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    @classmethod
    def parse(cls, data: bytes | str) -> OrderEvidence:
        """Parse strictly: bounded size, one value, no duplicate keys, no NaN, no unknown
        fields, every value of its type and range."""
        document = boundedjson.strict_document(
            data, MAX_EVIDENCE_BYTES, MalformedOrderEvidence, "an order's evidence"
        )
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: Any) -> OrderEvidence:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise MalformedOrderEvidence(f"an order's evidence is a {FORMAT} object")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MalformedOrderEvidence(
                "malformed order evidence: " + describe_validation(exc, most=3)
            ) from None


def is_order_evidence(document: Any) -> bool:
    return isinstance(document, dict) and document.get("format") == FORMAT


@dataclass(frozen=True)
class OrderEvidenceReport:
    """What an order's evidence proved: the order, its state as of its last signed change,
    the summary (recomputed and equal to the shipped one), and the good's bundle report."""

    order_id: int
    state: str
    delivery_leaf: int
    changes: int
    summary_document: dict[str, Any]
    bundle: BundleReport

    @property
    def status(self) -> Status:
        return self.bundle.status

    @property
    def clean(self) -> bool:
        return bool(self.summary_document["clean"])

    def summary(self) -> str:
        lines = "; ".join(self.summary_document["en"])
        plural = "" if self.changes == 1 else "s"
        return (
            f"{lines} ({self.changes} signed change{plural} of the order). "
            f"Evidence: {self.bundle.summary()}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary(),
            "order_id": self.order_id,
            "state": self.state,
            "delivery_leaf": self.delivery_leaf,
            "clean": self.clean,
            "facts": self.summary_document["facts"],
            "en": self.summary_document["en"],
            "zh": self.summary_document["zh"],
            "bundle": self.bundle.as_dict(),
        }


def check_order_evidence(
    evidence: OrderEvidence,
    trust: TrustPolicy,
    chain: AnchorView | None,
    *,
    cache: CheckCache | None = None,
) -> OrderEvidenceReport:
    """Check an order's evidence under the caller's trust policy; return what it proves, or
    raise ``BundleInvalid`` (the step named), ``UntrustedRegistry``, or ``NotAnchoredYet`` /
    ``NotFinalYet`` carrying this report. ``chain`` None checks everything but the chain."""
    bundle = evidence.bundle
    head = bundle.tree_head
    root = trust.root_for(head.domain)
    # 1. The good's bundle, as any bundle, all but the chain (done last, below).
    bundle_report = check_bundle(bundle, trust, None, cache=cache)
    # 2. Its history is proved complete: an entry left out would change the summary unseen.
    if bundle_report.state is None:
        raise BundleInvalid(
            "completeness",
            "the good's history is not proved complete under the evidence's head (no state "
            "map value): an entry left out could not be told",
        )
    # 3. The DELIVERY at delivery_leaf is this order's (and the only one for it).
    delivery = _delivery(evidence)
    payload = delivery_payload(delivery)
    # 4. The order's signed change chain, bound to the DELIVERY entry.
    state = _check_changes(evidence, root, payload.opened, payload.delivered_at)
    # 5. The summary, computed again from what was verified.
    try:
        facts = facts_of(bundle.entries, delivery, payload, state, evidence.changes[-1].at)
    except InvalidInput as exc:  # pragma: no cover - the bundle check parsed them already
        raise BundleInvalid("summary", f"an entry's payload: {exc.detail}") from None
    expected = summarize(
        order_id=evidence.order_id,
        state=state,
        payload=payload,
        delivery_leaf=delivery.leaf_index,
        tree_size=head.tree_size,
        facts=facts,
    )
    if expected != evidence.summary:
        raise BundleInvalid("summary", _summary_difference(expected, evidence.summary))
    report = OrderEvidenceReport(
        order_id=evidence.order_id,
        state=state,
        delivery_leaf=delivery.leaf_index,
        changes=len(evidence.changes),
        summary_document=expected,
        bundle=bundle_report,
    )
    if chain is None:
        return report
    # 6. The chain: the trusted contract holds this head's root, deep enough.
    finding = check_head_on_chain(head, bundle.anchor, root, chain)
    report = dataclasses.replace(report, bundle=dataclasses.replace(bundle_report, chain=finding))
    if not finding.anchored:
        raise NotAnchoredYet(finding.describe(head.tree_size), report)
    if not finding.final:
        raise NotFinalYet(finding.describe(head.tree_size), report)
    return report


def _delivery(evidence: OrderEvidence) -> BundleEntry:
    entries = evidence.bundle.entries
    entry = next((e for e in entries if e.leaf_index == evidence.delivery_leaf), None)
    where = f"leaf {evidence.delivery_leaf:,}"
    if entry is None or entry.kind is not EntryKind.DELIVERY:
        raise BundleInvalid("delivery", f"{where} is not a DELIVERY entry of the bundle")
    ours = [
        e.leaf_index
        for e in entries
        if e.kind is EntryKind.DELIVERY and delivery_payload(e).order_id == evidence.order_id
    ]
    if ours != [entry.leaf_index]:
        raise BundleInvalid(
            "delivery",
            f"{where} is not the one DELIVERY of order {evidence.order_id} "
            f"(the bundle's deliveries for it are at leaves {ours})",
        )
    return entry


def _check_changes(
    evidence: OrderEvidence, root: TrustRoot, opened: bytes, delivered_at: int
) -> str:
    """The order's state as of its last change, once every change is proved: in sequence,
    each move in the state table, each hash recomputed over the previous one, each signed
    under the trust root's domain by a key the trust root names; the first is the opening
    the DELIVERY binds, and the delivery change is at the DELIVERY's time."""
    good = evidence.bundle.good
    previous: bytes | None = None
    state: State | None = None
    last_at = 0
    delivered = []
    for number, change in enumerate(evidence.changes):
        where = f"order {evidence.order_id}'s change {change.sequence}"
        if change.sequence != number:
            raise BundleInvalid("changes", f"{where} is not change {number}: changes are missing")
        try:
            to_state = State(change.to_state)
            from_state = None if change.from_state is None else State(change.from_state)
            if number == 0:
                if (change.event, from_state, to_state) != (OPENED, None, State.RESERVED):
                    raise InvalidInput("the first change is not the opening")
            else:
                if from_state is not state:
                    raise InvalidInput(f"it moves from {change.from_state}, not from {state}")
                assert from_state is not None
                if next_state(from_state, Event(change.event)) is not to_state:
                    raise InvalidInput("its move is not in the state table")
        except (ValueError, InvalidInput, InvalidTransition) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc)
            raise BundleInvalid("changes", f"{where}: {detail}") from None
        if change.at < last_at:
            raise BundleInvalid("changes", f"{where} is dated before the change it follows")
        digest = change_hash(
            change_document(
                order_id=evidence.order_id,
                sequence=change.sequence,
                event=change.event,
                from_state=from_state,
                to_state=to_state,
                actor=change.actor,
                at=change.at,
                previous=previous,
                good_type=int(good.good_type),
                fingerprint=good.fingerprint,
            )
        )
        if digest != change.change_hash:
            raise BundleInvalid(
                "changes", f"{where}: its hash is not the hash of what it says after the one before"
            )
        if not root.names_key(change.signer):
            raise BundleInvalid(
                "changes",
                f"{where} is signed by {checksum_address(change.signer)}, a key trust root "
                f"{root.label()} does not name",
            )
        message = {
            "orderId": evidence.order_id,
            "sequence": change.sequence,
            "changeHash": digest,
            "timestamp": change.at,
        }
        try:
            verify_signature(
                CHANGE_TYPE,
                message,
                root.domain(),
                change.signature,
                checksum_address(change.signer),
            )
        except InvalidInput as exc:  # SignatureError is an InvalidInput
            raise BundleInvalid("changes", f"{where}: the signature: {exc.detail}") from None
        if change.event == Event.DELIVER:
            delivered.append(change.at)
        previous, state, last_at = digest, to_state, change.at
    if evidence.changes[0].change_hash != opened:
        raise BundleInvalid(
            "changes",
            "the order's opening change is not the one its DELIVERY entry binds (opened)",
        )
    if delivered != [delivered_at]:
        raise BundleInvalid(
            "changes", "the order's delivery change is not at the DELIVERY entry's time"
        )
    assert state is not None
    return state.value


def _summary_difference(expected: dict[str, Any], shipped: dict[str, Any]) -> str:
    """Where the shipped summary departs from the evidence's (the first key that differs)."""
    for key in ("clean", "facts", "en", "zh"):
        if expected.get(key) != shipped.get(key):
            return (
                f"the summary's '{key}' is not what the verified evidence shows: the summary "
                "must be computed from the evidence, never taken from it"
            )
    return "the summary carries fields the evidence does not compute"


__all__ = [
    "FORMAT",
    "MAX_EVIDENCE_BYTES",
    "MAX_ORDER_CHANGES",
    "MalformedOrderEvidence",
    "OrderChange",
    "OrderEvidence",
    "OrderEvidenceReport",
    "check_order_evidence",
    "is_order_evidence",
]
