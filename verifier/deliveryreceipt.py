"""Checking the buyer's delivery receipt (issue 17 item 3) offline, under a pinned trust root.

``check_delivery_receipt`` proves, with nothing but the receipt, the caller's trust policy
and (optionally) the good's proof bundle and the chain:

1. the receipt parses strictly: its document is exactly the one its DELIVERY payload, leaf
   and facts make (``registry.deliveryreceipt.DeliveryReceipt.from_json``), so nothing is
   shown beside what is signed;
2. the registry it names is one the caller trusts (the domain of a pinned trust root), and
   it is signed by the registry key that root names for the DELIVERY's leaf: the EIP-712
   ``DeliveryReceipt`` (with the receipt hash over the document) recovers to that key under
   the trust root's own domain; the ``typed_data`` shown, if any, is that very message;
3. with the bundle: the bundle verifies (``verifier.offline.check_bundle``: leaves, payloads,
   signatures, inclusion, head, state map, checkpoint, and the chain when one is given); it
   is about this good; its DELIVERY at the receipt's leaf has the receipt's payload hash; and
   the receipt's facts are what the log shows before that leaf: the creator's REGISTER at the
   leaf named, as many CONFLICT, REVOKE, TRANSFER and DELIVERY entries as counted, no final
   sale when it says unconsumed. A v3+ bundle proves those entries are all of the good's
   (the state map); the report says whether completeness was proven.

Raises ``VerificationError`` (``UntrustedRegistry`` for an unpinned registry, the bundle's
``BundleInvalid`` / ``NotAnchoredYet`` / ``NotFinalYet`` as ``check_bundle`` raises them).
Pure, as ``verifier.offline``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.deliveryreceipt import PRIMARY_TYPE, RECEIPT_FORMAT, DeliveryReceipt
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, SignatureError
from registry.fingerprints import fingerprint_hex
from registry.leaf import EntryKind
from registry.signatures import verify_signature
from verifier.bundle import Bundle
from verifier.bundlereport import BundleReport
from verifier.errors import VerificationError
from verifier.headcheck import AnchorView
from verifier.offline import check_bundle
from verifier.trust import TrustPolicy, TrustRoot


@dataclass(frozen=True)
class ReceiptReport:
    """What a delivery receipt was proved to say."""

    receipt: DeliveryReceipt
    trust_root: str
    #: The bundle's report when one was checked with the receipt, else None (then only the
    #: registry's signature was checked, not the log or the chain).
    bundle: BundleReport | None

    @property
    def facts_proven(self) -> bool:
        """Whether the facts were checked against the log (a bundle was given)."""
        return self.bundle is not None

    @property
    def status(self) -> str:
        """``verified`` only when the bundle was checked against the chain; otherwise
        ``signature-only`` (no bundle) or the bundle's status (``chain-not-checked``)."""
        return "signature-only" if self.bundle is None else self.bundle.status

    def as_dict(self) -> dict[str, Any]:
        r = self.receipt
        return {
            "status": self.status,
            "summary": self.summary(),
            "receipt_id": r.receipt_id,
            "order_id": r.order_id,
            "leaf_index": r.leaf_index,
            "good_type": r.good_type.name.lower(),
            "fingerprint": fingerprint_hex(r.fingerprint),
            "platform": r.delivery.platform,
            "delivered_at": r.delivery.delivered_at,
            "buyer_commitment": "0x" + r.delivery.buyer_commitment.hex(),
            "facts": r.facts.document(),
            "facts_proven": self.facts_proven,
            "trust_root": self.trust_root,
            "bundle": None if self.bundle is None else self.bundle.as_dict(),
        }

    def summary(self) -> str:
        r, facts = self.receipt, self.receipt.facts
        good = f"{r.good_type.name.lower()} {fingerprint_hex(r.fingerprint)}"
        said = "authentic and never sold before" if facts.never_sold_before else "delivered"
        line = (
            f"receipt {r.receipt_id}: {good}, {said}, delivered for order {r.order_id} by "
            f"{r.delivery.platform} at {r.delivery.delivered_at} (DELIVERY at leaf "
            f"{r.leaf_index:,}), signed by the registry under trust root {self.trust_root}"
        )
        if self.bundle is None:
            return line + "; facts not checked against the log (no bundle given)"
        return (
            f"{line}; facts match the log ({self.bundle.completeness}), bundle {self.bundle.status}"
        )


def is_receipt_file(data: bytes) -> bool:
    """Whether a file's bytes look like a delivery receipt (its document's format names it):
    how ``tracemark verify`` tells a receipt from a bundle, an export or evidence."""
    return RECEIPT_FORMAT.encode() in data[:4096] and b'"document"' in data[:4096]


def parse_receipt_file(data: bytes) -> DeliveryReceipt:
    """A receipt file's receipt, parsed strictly; ``VerificationError`` if it is not one."""
    try:
        document = json.loads(data)
        return DeliveryReceipt.from_json(document)
    except (ValueError, InvalidInput) as exc:
        detail = getattr(exc, "detail", None) or "not JSON"
        raise VerificationError(f"the receipt does not parse: {detail}") from None


def check_delivery_receipt(
    receipt: Mapping[str, Any] | DeliveryReceipt,
    trust: TrustPolicy,
    *,
    bundle: Bundle | None = None,
    chain: AnchorView | None = None,
) -> ReceiptReport:
    """Check a delivery receipt (its JSON, or parsed) under the caller's pinned trust; with the
    good's ``bundle``, against the log too (and the chain, when ``chain`` is given). See the
    module's steps; raises ``VerificationError``."""
    # 1. It parses, and its document is exactly the one its parts make.
    typed_data = None
    if isinstance(receipt, DeliveryReceipt):
        parsed = receipt
    else:
        try:
            parsed = DeliveryReceipt.from_json(receipt)
        except InvalidInput as exc:
            raise VerificationError(f"the receipt does not parse: {exc.detail}") from None
        typed_data = receipt.get("typed_data")
    # 2. A registry the caller trusts, the key it names for the DELIVERY's leaf, the signature.
    root = trust.root_for(parsed.domain)
    _check_signature(parsed, root, typed_data)
    if bundle is None:
        return ReceiptReport(parsed, root.label(), None)
    # 3. The log: the bundle verifies, and shows this delivery and these facts.
    report = check_bundle(bundle, trust, chain)
    _check_against_bundle(parsed, bundle, report)
    return ReceiptReport(parsed, root.label(), report)


def _check_signature(receipt: DeliveryReceipt, root: TrustRoot, typed_data: object) -> None:
    expected = checksum_address(root.key_for_entry(receipt.leaf_index))
    if receipt.signer != expected:
        raise VerificationError(
            f"the receipt is signed by {receipt.signer}, but trust root {root.label()} names "
            f"{expected} for leaf {receipt.leaf_index:,}",
            step="signature",
        )
    if receipt.delivery.registry != expected:
        raise VerificationError(
            "the receipt's DELIVERY payload names another registry key than its signer",
            step="signature",
        )
    if typed_data is not None and typed_data != receipt.typed_data():
        raise VerificationError(
            "the receipt's typed_data is not the message of its document", step="signature"
        )
    try:
        # Under the trust root's domain, never only the one the receipt carries.
        verify_signature(
            PRIMARY_TYPE, receipt.message(), root.domain(), receipt.signature, expected
        )
    except (SignatureError, InvalidInput) as exc:
        raise VerificationError(
            f"the receipt's signature does not verify: {exc.detail}", step="signature"
        ) from None


def _check_against_bundle(receipt: DeliveryReceipt, bundle: Bundle, report: BundleReport) -> None:
    def refuse(detail: str) -> VerificationError:
        return VerificationError(f"the receipt and the log disagree: {detail}", step="log")

    if (bundle.good.good_type, bundle.good.fingerprint) != (
        receipt.good_type,
        receipt.fingerprint,
    ):
        raise refuse("the bundle is about another good")
    leaf = receipt.leaf_index
    delivered = [e for e in bundle.entries if e.leaf_index == leaf]
    if not delivered or delivered[0].kind is not EntryKind.DELIVERY:
        raise refuse(f"the bundle has no DELIVERY entry at leaf {leaf:,} (not logged yet?)")
    if delivered[0].payload_hash != receipt.delivery.payload_hash():
        raise refuse(f"the DELIVERY at leaf {leaf:,} is not the receipt's delivery")
    before = [p for p in report.entries if p.leaf_index < leaf]
    facts = receipt.facts
    register = next((p for p in before if p.kind is EntryKind.REGISTER), None)
    if register is None or (register.actor, register.leaf_index) != (
        facts.creator,
        facts.registered_leaf,
    ):
        raise refuse("the creator's registration is not the one the receipt names")

    def count(kind: EntryKind) -> int:
        return sum(1 for p in before if p.kind is kind)

    seen = {
        "conflicts": count(EntryKind.CONFLICT),
        "revoked": count(EntryKind.REVOKE) > 0,
        "transfers_before": count(EntryKind.TRANSFER),
        "earlier_deliveries": count(EntryKind.DELIVERY),
    }
    said = {name: getattr(facts, name) for name in seen}
    if seen != said:
        wrong = sorted(name for name in seen if seen[name] != said[name])
        raise refuse(f"the log shows other {', '.join(wrong)} before the delivery")
    if not facts.consumed and any(p.kind is EntryKind.TRANSFER and p.final for p in before):
        raise refuse("the log shows a final sale before the delivery, the receipt none")


__all__ = ["ReceiptReport", "check_delivery_receipt", "is_receipt_file", "parse_receipt_file"]
