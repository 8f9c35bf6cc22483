"""A trace's events: each log entry, verification and anchor as the ``TraceEventOut`` it shows,
and the order that merges them (``readmodels.trace`` reads the rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from registry.entries import LoggedEntry
from registry.fingerprints import USE_NAMES
from registry.leaf import EntryKind
from registry.payloads import RegistrationPayload, RevocationPayload
from registry.records import checksum
from registry.signed import SignedMessage
from registry.transferpayload import TransferPayload
from verifier.schemas import (
    RoyaltyShareOut,
    TraceAnchoredOut,
    TraceBatchOut,
    TraceConflictOut,
    TraceEventOut,
    TracePartyOut,
    TraceRecipientOut,
    TraceRegisteredOut,
    TraceRevokedOut,
    TraceTransferredOut,
    TraceVerifiedOut,
)

#: Hex digits of a party's reference hash shown (32 bits: enough to tell a good's parties
#: apart, too short to test guesses of the reference against).
REFERENCE_DIGITS: Final = 8


@dataclass(frozen=True)
class Timed:
    """A verification or an anchor, to be merged by time among the log entries."""

    at: int
    seq: int
    event: TraceEventOut
    #: For an anchor: its tree size (it comes after every entry it covers).
    covers_below: int | None = None


def _signed(signed: SignedMessage) -> tuple[str, str]:
    """The signed message's type and signature as a trace shows them."""
    return signed.primary_type, "0x" + signed.signature.hex()


def _batch(entry: LoggedEntry, signed: SignedMessage) -> TraceBatchOut | None:
    message = signed.message
    if entry.position is None or "itemsRoot" not in message:
        return None
    return TraceBatchOut(
        items_root="0x" + bytes(message["itemsRoot"]).hex(),
        position=entry.position,
        count=int(message["count"]),
    )


def _where(entry: LoggedEntry) -> str:
    return "queued" if entry.leaf_index is None else f"leaf {entry.leaf_index:,}"


def registered_event(entry: LoggedEntry, payload: dict[str, Any]) -> TraceRegisteredOut:
    registration = RegistrationPayload.from_document(payload)
    signed_type, signature = _signed(registration.signed)
    message = registration.signed.message
    batch = _batch(entry, registration.signed)
    use = USE_NAMES.get(int(message.get("use", 0)))
    policy = registration.royalty_policy
    recipients = () if policy is None else policy.recipients
    creator = checksum(entry.actor)
    in_batch = f" (item {batch.position + 1:,} of a batch of {batch.count:,})" if batch else ""
    return TraceRegisteredOut(
        at=entry.timestamp,
        leaf_index=entry.leaf_index,
        creator=creator,
        signed_type=signed_type,
        signature=signature,
        product=message.get("product") or None,
        use=use,  # type: ignore[arg-type]
        batch=batch,
        royalty_policy=[
            TraceRecipientOut(address=r.address, bps=r.bps, label=r.label) for r in recipients
        ],
        summary=f"registered by {creator} at {_where(entry)}{in_batch}",
    )


def conflict_event(
    entry: LoggedEntry, payload: dict[str, Any], register: LoggedEntry
) -> TraceConflictOut:
    signed_type, signature = _signed(RegistrationPayload.from_document(payload).signed)
    claimant, first = checksum(entry.actor), checksum(register.actor)
    decided = entry.leaf_index is not None and register.leaf_index is not None
    if decided:
        assert entry.leaf_index is not None and register.leaf_index is not None
        winner = first if register.leaf_index < entry.leaf_index else claimant
        summary = (
            f"claimed by {claimant} at {_where(entry)}; {winner} was first "
            f"(log order: leaf {min(register.leaf_index, entry.leaf_index):,} before leaf "
            f"{max(register.leaf_index, entry.leaf_index):,})"
        )
    else:
        summary = f"claimed by {claimant} ({_where(entry)}); no log order yet"
    return TraceConflictOut(
        at=entry.timestamp,
        leaf_index=entry.leaf_index,
        claimant=claimant,
        signed_type=signed_type,
        signature=signature,
        first_creator=first,
        first_leaf_index=register.leaf_index,
        first_by_log_order=winner if decided else None,
        summary=summary,
    )


def revoked_event(entry: LoggedEntry, payload: dict[str, Any]) -> TraceRevokedOut:
    signed = RevocationPayload.from_document(payload).signed
    signed_type, signature = _signed(signed)
    reason = str(signed.message.get("reason", ""))
    by = checksum(entry.actor)
    return TraceRevokedOut(
        at=entry.timestamp,
        leaf_index=entry.leaf_index,
        by=by,
        reason=reason,
        signed_type=signed_type,
        signature=signature,
        batch=_batch(entry, signed),
        summary=f"revoked by {by} at {_where(entry)}: {reason}",
    )


def creator_party() -> TracePartyOut:
    return TracePartyOut(creator=True, platform=None, reference=None, label="creator")


def party(document: Mapping[str, Any]) -> TracePartyOut:
    if document.get("creator") is True or document.get("platform") is None:
        return creator_party()
    platform = str(document["platform"])
    ref = document.get("reference_hash")
    digits = (ref.hex() if isinstance(ref, bytes) else str(ref or "")[2:])[:REFERENCE_DIGITS]
    return TracePartyOut(
        creator=False, platform=platform, reference="0x" + digits, label=f"{platform}:{digits}"
    )


def transferred_event(entry: LoggedEntry, payload: dict[str, Any], row: Any) -> TraceTransferredOut:
    transfer = TransferPayload.from_document(payload)
    seller, buyer = party(transfer.seller), party(transfer.buyer)
    price = None if transfer.price is None else str(transfer.price)
    currency, final = transfer.currency, transfer.final
    what = "sold to its end user (consumed)" if final else "transferred"
    priced = f" for {price} {currency}" if price is not None else ""
    platform = transfer.platform
    return TraceTransferredOut(
        at=entry.timestamp,
        leaf_index=entry.leaf_index,
        transfer_id=None if row is None else int(row.id),
        platform=platform,
        seller=seller,
        buyer=buyer,
        price=price,
        currency=currency,
        final=final,
        royalties=[RoyaltyShareOut.model_validate(s.document()) for s in transfer.shares],
        seller_amount=None if transfer.seller_amount is None else str(transfer.seller_amount),
        transfer_hash="0x" + entry.payload_hash.hex(),
        receipt_signature=None if row is None else "0x" + bytes(row.receipt_signature).hex(),
        summary=(
            f"{what} on {platform}: {seller.label} -> {buyer.label}{priced} at {_where(entry)}"
        ),
    )


def anchored_event(
    row: Any, covered: list[int], chain_id: int, contract: str, chain_block: int | None
) -> TraceAnchoredOut:
    block = row.block_number
    confirmations = (
        None if chain_block is None or block is None else max(0, chain_block - int(block) + 1)
    )
    leaves = ", ".join(f"{leaf:,}" for leaf in covered)
    at_block = f" in block {int(block):,}" if block is not None else ""
    return TraceAnchoredOut(
        at=int(row.updated_at),
        tree_size=int(row.tree_size),
        chain_id=chain_id,
        contract=contract,
        tx_hash=None if row.tx_hash is None else "0x" + bytes(row.tx_hash).hex(),
        block_number=None if block is None else int(block),
        state=row.state,
        confirmations=confirmations,
        covers=covered,
        summary=(
            f"head {int(row.tree_size):,} {row.state} on chain {chain_id}{at_block}, "
            f"covering leaf {leaves}"
        ),
    )


def merge_timed(
    spine: Sequence[tuple[LoggedEntry, TraceEventOut]], timed: list[Timed]
) -> list[TraceEventOut]:
    """The log entries in log order, each verification and anchor placed among them by time."""
    timed = sorted(timed, key=lambda t: (t.at, t.seq))
    events: list[TraceEventOut] = []
    i = 0
    for entry, event in spine:
        while i < len(timed) and _goes_before(timed[i], entry):
            events.append(timed[i].event)
            i += 1
        events.append(event)
    events.extend(t.event for t in timed[i:])
    return events


def position_of(events: list[TraceEventOut], event: TraceEventOut) -> int:
    """Where this very event object is (equal events, e.g. two identical verifications in
    one second, are told apart by identity)."""
    return next(i for i, found in enumerate(events) if found is event)


def _goes_before(item: Timed, entry: LoggedEntry) -> bool:
    if entry.leaf_index is None or entry.timestamp is None:
        return True  # queued entries come last
    if item.covers_below is not None and item.covers_below > entry.leaf_index:
        return False  # an anchor comes after every entry it covers
    if item.at != entry.timestamp:
        return item.at < entry.timestamp
    # The same second: a good is checked before it is sold or revoked.
    return isinstance(item.event, TraceVerifiedOut) and entry.kind in (
        EntryKind.TRANSFER,
        EntryKind.REVOKE,
    )


# -- the graph --------------------------------------------------------------------------------


__all__ = [
    "REFERENCE_DIGITS",
    "Timed",
    "anchored_event",
    "conflict_event",
    "creator_party",
    "merge_timed",
    "party",
    "position_of",
    "registered_event",
    "revoked_event",
    "transferred_event",
]
