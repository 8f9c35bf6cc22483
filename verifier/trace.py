"""A good's whole history in order: the trace an auditor follows from issuance to its last sale.

``build_trace`` reads, in one read transaction, what the registry holds about one good: its
log entries (the registration, other creators' conflicting claims, transfers, the
revocation), the anchor that first covered each entry, the verifications platforms made, and
who holds it now; it answers a ``TraceOut`` (``verifier.schemas``). ``trace_table`` renders
that for a terminal, ``trace_mermaid`` as a Mermaid ``graph LR`` of who held the good; the
same graph travels as data in ``TraceOut.graph`` so that a page can draw it without parsing
Mermaid.

Order: log entries in log order (leaf index, queued ones last); verifications and anchors by
time among them. Times are whole seconds: within one second a verification goes after the
registration and before a transfer or revocation (a good is checked before it is sold), and
an anchor never comes before an entry it covers.

Bounded: a good verified 10^5 times, or an item resold 10^4 times, shows the first and the
last ``MAX_TRACE_ENTRIES`` / ``MAX_TRACE_VERIFICATIONS`` (half each), with an ``omitted``
event saying how many were left out between them; the counts are always complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from rich.table import Table
from sqlalchemy import Connection, func, select, text
from sqlalchemy import Table as SqlTable

from anchoring.models import AnchorRecord
from registry.db import read_transaction
from registry.eip712 import address_bytes
from registry.errors import NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.identity import identity_of
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.records import checksum, records_t
from registry.service import LoggedEntry, Registry
from registry.transfers import attempts_t, holdings_t, transfers_t
from registry.verifications import counts_t, event_ids_of, events_t, verification_stats
from verifier.bundle import ANCHORED_STATES
from verifier.identity import describe
from verifier.identity import method as identity_method
from verifier.schemas import (
    CreatorIdentityOut,
    RoyaltyShareOut,
    TraceAnchoredOut,
    TraceBatchOut,
    TraceConflictOut,
    TraceCountsOut,
    TraceEdgeOut,
    TraceEventOut,
    TraceGraphOut,
    TraceNodeOut,
    TraceOmittedOut,
    TraceOut,
    TracePartyOut,
    TracePlatformOut,
    TraceRecipientOut,
    TraceRefusedOut,
    TraceRegisteredOut,
    TraceRevokedOut,
    TraceTransferredOut,
    TraceVerifiedOut,
    VerificationsOut,
)

MAX_TRACE_ENTRIES: Final = 1_000
"""Most log entries of one good a trace shows (the first and the last half).

Threat: an item resold (or a code claimed) tens of thousands of times would make one trace
request read, sign-check and render without bound; the counts stay complete.
"""

MAX_TRACE_VERIFICATIONS: Final = 200
"""Most verifications a trace shows (the first and the last half). A popular good is verified
10^5 times; its first verifications say when it surfaced, its last ones where it is now."""

MAX_TRACE_REFUSED: Final = 100
"""Most refused transfers a trace shows (the newest): a bot hammering a good with refused
reports must not make its trace unbounded; the count stays complete."""

MAX_TRACE_PLATFORMS: Final = 100
"""Most platforms listed in ``verified_by`` (those that verified the good most)."""

IN_FLIGHT_STATES: Final = ("sealed", "signed", "broadcast")
"""Anchors on their way to the chain: shown with their state until one is mined."""

#: Hex digits of a party's reference hash shown (32 bits: enough to tell a good's parties
#: apart, too short to test guesses of the reference against).
REFERENCE_DIGITS: Final = 8

Status = Literal["queued", "active", "revoked", "consumed"]

anchors_t: SqlTable = AnchorRecord.__table__  # type: ignore[attr-defined]


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timed:
    """A verification or an anchor, to be merged by time among the log entries."""

    at: int
    seq: int
    event: TraceEventOut
    #: For an anchor: its tree size (it comes after every entry it covers).
    covers_below: int | None = None


def build_trace(
    registry: Registry,
    good_type: GoodType,
    fingerprint: bytes,
    *,
    chain_block: int | None = None,
    creator: str | None = None,
) -> TraceOut:
    """The good's history in order. Raises ``NotFound`` when no creator registered it.

    ``chain_block`` is the newest block the caller saw, to count anchors' confirmations.
    ``creator`` (an address) limits the answer to that creator's goods: another creator's
    good raises the very ``NotFound`` of a good nobody registered, before anything else is
    read (THREATS 35).
    """
    good = f"{good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    with read_transaction(registry.engine) as conn:
        register = register_entry(conn, good_type, fingerprint)
        if register is None or (creator is not None and register.actor != address_bytes(creator)):
            raise NotFound(f"no {good} is registered")
        kinds = _kind_counts(conn, good_type, fingerprint)
        others, omitted_entries = _other_entries(conn, good_type, fingerprint, kinds)
        entries = sorted([register, *others], key=_log_order)
        payloads = _payloads(conn, {e.record_id for e in entries})
        transfers = _transfers(conn, [e.entry_id for e in entries if e.kind is EntryKind.TRANSFER])
        anchors = _first_anchors(conn, [e.leaf_index for e in entries if e.leaf_index is not None])
        verifications, omitted_checks, total_checks = _verifications(conn, good_type, fingerprint)
        refused, total_refused = _refused(conn, good_type, fingerprint)
        stats = verification_stats(conn, int(good_type), fingerprint)
        platforms = _verified_by(conn, good_type, fingerprint)
        holding = conn.execute(
            select(holdings_t).where(
                holdings_t.c.good_type == int(good_type), holdings_t.c.fingerprint == fingerprint
            )
        ).first()
        proved = identity_of(conn, register.actor)

    owner = checksum(register.actor)
    register_payload = payloads[register.record_id]
    registered = _registered(register, register_payload)
    spine: list[tuple[LoggedEntry, TraceEventOut]] = []
    for entry in entries:
        payload = payloads[entry.record_id]
        if entry is register:
            spine.append((entry, registered))
        elif entry.kind is EntryKind.CONFLICT:
            spine.append((entry, _conflict(entry, payload, register)))
        elif entry.kind is EntryKind.REVOKE:
            spine.append((entry, _revoked(entry, payload)))
        elif entry.kind is EntryKind.TRANSFER:
            spine.append((entry, _transferred(entry, payload, transfers.get(entry.entry_id))))
    timed: list[_Timed] = [_Timed(v.at, i, v) for i, v in enumerate(verifications)]
    timed += [_Timed(r.at, len(timed) + i, r) for i, r in enumerate(refused)]
    domain = registry.domain
    for i, (row, covered) in enumerate(anchors):
        anchor = _anchored(row, covered, domain.chain_id, domain.verifying_contract, chain_block)
        timed.append(_Timed(anchor.at, len(timed) + i, anchor, int(row.tree_size)))
    events = _merge(spine, timed)
    if omitted_entries:
        first_of_tail = spine[len(spine) - (MAX_TRACE_ENTRIES // 2)][1]
        gap = TraceOmittedOut(
            what="entries",
            count=omitted_entries,
            summary=f"{omitted_entries:,} log entries left out here",
        )
        events.insert(_position(events, first_of_tail), gap)
    if total_refused > len(refused):
        left_out = total_refused - len(refused)
        gap = TraceOmittedOut(
            what="refused transfers",
            count=left_out,
            summary=f"{left_out:,} older refused transfers left out",
        )
        events.insert(_position(events, refused[0]), gap)
    if omitted_checks:
        first_of_tail = verifications[MAX_TRACE_VERIFICATIONS // 2]
        gap = TraceOmittedOut(
            what="verifications",
            count=omitted_checks,
            summary=f"{omitted_checks:,} verifications left out here",
        )
        events.insert(_position(events, first_of_tail), gap)

    status: Status = "active"
    if kinds.get(EntryKind.REVOKE, 0):
        status = "revoked"
    elif holding is not None and holding.consumed:
        status = "consumed"
    elif register.leaf_index is None:
        status = "queued"
    holder = (
        _creator_party()
        if holding is None
        else _party({"platform": holding.holder_platform, "reference_hash": holding.holder_ref})
    )
    return TraceOut(
        good_type=good_type.name.lower(),  # type: ignore[arg-type]
        fingerprint=fingerprint_hex(fingerprint),
        creator=owner,
        product=registered.product,
        use=registered.use,
        status=status,
        holder=holder,
        verifications=VerificationsOut(
            times=stats.times, platforms=stats.platforms, first_at=stats.first_at
        ),
        verified_by=platforms,
        counts=TraceCountsOut(
            entries=sum(kinds.values()),
            entries_shown=len(entries),
            transfers=kinds.get(EntryKind.TRANSFER, 0),
            conflicts=kinds.get(EntryKind.CONFLICT, 0),
            verifications=total_checks,
            verifications_shown=len(verifications),
            refused=total_refused,
            refused_shown=len(refused),
        ),
        events=events,
        graph=_graph(events, owner),
        chain_block=chain_block,
        creator_identity=None
        if proved is None
        else CreatorIdentityOut(
            name=proved.name,
            domain=proved.domain,
            status=proved.status,  # type: ignore[arg-type]  # "verified" or "lapsed"
            checked_at=proved.checked_at,
            method=identity_method(proved.url),
        ),
    )


def _log_order(entry: LoggedEntry) -> tuple[bool, int, int]:
    return (entry.leaf_index is None, entry.leaf_index or 0, entry.entry_id)


def register_entry(conn: Connection, good_type: GoodType, fingerprint: bytes) -> LoggedEntry | None:
    c = entries_t.c
    # NOTE: the literal "kind = 1" repeats the partial unique index's condition, so that
    # SQLite uses it (a bound parameter would not prove the index applies).
    row = conn.execute(
        select(entries_t).where(
            text("kind = 1"), c.good_type == int(good_type), c.fingerprint == fingerprint
        )
    ).first()
    return None if row is None else LoggedEntry.from_row(row._mapping)


def _kind_counts(conn: Connection, good_type: GoodType, fingerprint: bytes) -> dict[EntryKind, int]:
    c = entries_t.c
    rows = conn.execute(
        select(c.kind, func.count())
        .where(text("kind <> 1"), c.good_type == int(good_type), c.fingerprint == fingerprint)
        .group_by(c.kind)
    ).all()
    counts = {EntryKind(int(kind)): int(n) for kind, n in rows}
    counts[EntryKind.REGISTER] = 1
    return counts


def _other_entries(
    conn: Connection, good_type: GoodType, fingerprint: bytes, kinds: dict[EntryKind, int]
) -> tuple[list[LoggedEntry], int]:
    """The good's entries but its REGISTER: all of them, or the first and last halves."""
    c = entries_t.c
    query = select(entries_t).where(
        text("kind <> 1"), c.good_type == int(good_type), c.fingerprint == fingerprint
    )
    total = sum(kinds.values()) - 1
    room = MAX_TRACE_ENTRIES - 1
    ascending = (c.leaf_index.is_(None), c.leaf_index, c.id)
    if total <= room:
        return [
            LoggedEntry.from_row(r._mapping) for r in conn.execute(query.order_by(*ascending))
        ], 0
    head, tail = room - MAX_TRACE_ENTRIES // 2, MAX_TRACE_ENTRIES // 2
    first = conn.execute(query.order_by(*ascending).limit(head)).all()
    descending = (c.leaf_index.is_(None).desc(), c.leaf_index.desc(), c.id.desc())
    last = conn.execute(query.order_by(*descending).limit(tail)).all()
    rows = [*first, *reversed(last)]
    return [LoggedEntry.from_row(r._mapping) for r in rows], total - head - tail


def _payloads(conn: Connection, record_ids: set[int]) -> dict[int, dict[str, Any]]:
    rows = conn.execute(
        select(records_t.c.id, records_t.c.payload).where(records_t.c.id.in_(record_ids))
    ).all()
    return {int(row.id): json.loads(row.payload) for row in rows}


def _transfers(conn: Connection, entry_ids: list[int]) -> dict[int, Any]:
    if not entry_ids:
        return {}
    t = transfers_t.c
    rows = conn.execute(
        select(t.id, t.entry_id, t.receipt_signature).where(t.entry_id.in_(entry_ids))
    ).all()
    return {int(row.entry_id): row for row in rows}


def _first_anchors(conn: Connection, leaves: list[int]) -> list[tuple[Any, list[int]]]:
    """For the entries' leaves (ascending): the first anchor covering each, with the leaves
    it is the first to cover. A mined or final anchor if there is one, else one on its way."""
    a = anchors_t.c
    columns = (a.tree_size, a.state, a.tx_hash, a.block_number, a.updated_at)
    found: list[tuple[Any, list[int]]] = []
    i = 0
    while i < len(leaves):
        row = None
        for states in (ANCHORED_STATES, IN_FLIGHT_STATES):
            row = conn.execute(
                select(*columns)
                .where(a.state.in_(states), a.tree_size > leaves[i])
                .order_by(a.tree_size, a.id)
                .limit(1)
            ).first()
            if row is not None:
                break
        if row is None:
            break  # no anchor covers this entry, nor any later one
        covered = [leaf for leaf in leaves[i:] if leaf < int(row.tree_size)]
        found.append((row, covered))
        i += len(covered)
    return found


def _verifications(
    conn: Connection, good_type: GoodType, fingerprint: bytes
) -> tuple[list[TraceVerifiedOut], int, int]:
    """The verifications shown (first and last halves), how many were left out, in all."""
    v = events_t.c
    where = (v.id.in_(event_ids_of(conn, int(good_type), fingerprint)),)
    total = int(conn.execute(select(func.count()).where(*where)).scalar_one())
    query = select(v.at, v.platform, v.verdict, v.via).where(*where)
    if total <= MAX_TRACE_VERIFICATIONS:
        rows = conn.execute(query.order_by(v.at, v.id)).all()
    else:
        half = MAX_TRACE_VERIFICATIONS // 2
        first = conn.execute(query.order_by(v.at, v.id).limit(half)).all()
        last = conn.execute(query.order_by(v.at.desc(), v.id.desc()).limit(half)).all()
        rows = [*first, *reversed(last)]
    shown = [
        TraceVerifiedOut(
            at=int(row.at),
            platform=row.platform,
            verdict=row.verdict,
            via=row.via,
            summary=f"verified on {row.platform} by {row.via}: {row.verdict}",
        )
        for row in rows
    ]
    return shown, total - len(shown), total


def _refused(
    conn: Connection, good_type: GoodType, fingerprint: bytes
) -> tuple[list[TraceRefusedOut], int]:
    """The newest refused transfers of the good, oldest first, and how many there are."""
    a = attempts_t.c
    where = (a.good_type == int(good_type), a.fingerprint == fingerprint)
    total = int(conn.execute(select(func.count()).where(*where)).scalar_one())
    rows = conn.execute(
        select(attempts_t).where(*where).order_by(a.id.desc()).limit(MAX_TRACE_REFUSED)
    ).all()
    shown = []
    for row in reversed(rows):
        seller = (
            _creator_party()
            if row.seller_platform is None
            else _party({"platform": row.seller_platform, "reference_hash": bytes(row.seller_ref)})
        )
        buyer = _party({"platform": row.buyer_platform, "reference_hash": bytes(row.buyer_ref)})
        shown.append(
            TraceRefusedOut(
                at=int(row.at),
                platform=row.platform,
                seller=seller,
                buyer=buyer,
                reason=row.reason,
                earlier_transfer_id=row.earlier_transfer_id,
                summary=f"refused ({row.reason}): {row.platform} reported "
                f"{seller.label} -> {buyer.label}",
            )
        )
    return shown, total


def _verified_by(
    conn: Connection, good_type: GoodType, fingerprint: bytes
) -> list[TracePlatformOut]:
    c = counts_t.c
    rows = conn.execute(
        select(c.platform, c.count.label("times"), c.first_at, c.last_at)
        .where(c.good_type == int(good_type), c.fingerprint == fingerprint)
        .order_by(c.count.desc(), c.platform)
        .limit(MAX_TRACE_PLATFORMS)
    ).all()
    return [
        TracePlatformOut(
            platform=r.platform,
            times=int(r.times),
            first_at=int(r.first_at),
            last_at=int(r.last_at),
        )
        for r in rows
    ]


# -- events -----------------------------------------------------------------------------------


def _signed(payload: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    signed = payload.get("signed") or {}
    return (
        str(signed.get("type", "")),
        str(signed.get("signature", "0x")),
        signed.get("message", {}),
    )


def _batch(entry: LoggedEntry, message: dict[str, Any]) -> TraceBatchOut | None:
    if entry.position is None or "itemsRoot" not in message:
        return None
    return TraceBatchOut(
        items_root=message["itemsRoot"], position=entry.position, count=int(message["count"])
    )


def _where(entry: LoggedEntry) -> str:
    return "queued" if entry.leaf_index is None else f"leaf {entry.leaf_index:,}"


def _registered(entry: LoggedEntry, payload: dict[str, Any]) -> TraceRegisteredOut:
    signed_type, signature, message = _signed(payload)
    batch = _batch(entry, message)
    use = {1: "single", 2: "transferable"}.get(int(message.get("use", 0)))
    recipients = (payload.get("royalty_policy") or {}).get("recipients", [])
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
        royalty_policy=[TraceRecipientOut.model_validate(r) for r in recipients],
        summary=f"registered by {creator} at {_where(entry)}{in_batch}",
    )


def _conflict(
    entry: LoggedEntry, payload: dict[str, Any], register: LoggedEntry
) -> TraceConflictOut:
    signed_type, signature, _ = _signed(payload)
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


def _revoked(entry: LoggedEntry, payload: dict[str, Any]) -> TraceRevokedOut:
    signed_type, signature, message = _signed(payload)
    reason = str(message.get("reason", ""))
    by = checksum(entry.actor)
    return TraceRevokedOut(
        at=entry.timestamp,
        leaf_index=entry.leaf_index,
        by=by,
        reason=reason,
        signed_type=signed_type,
        signature=signature,
        batch=_batch(entry, message),
        summary=f"revoked by {by} at {_where(entry)}: {reason}",
    )


def _creator_party() -> TracePartyOut:
    return TracePartyOut(creator=True, platform=None, reference=None, label="creator")


def _party(document: dict[str, Any]) -> TracePartyOut:
    if document.get("creator") is True or document.get("platform") is None:
        return _creator_party()
    platform = str(document["platform"])
    ref = document.get("reference_hash")
    digits = (ref.hex() if isinstance(ref, bytes) else str(ref or "")[2:])[:REFERENCE_DIGITS]
    return TracePartyOut(
        creator=False, platform=platform, reference="0x" + digits, label=f"{platform}:{digits}"
    )


def _transferred(entry: LoggedEntry, payload: dict[str, Any], row: Any) -> TraceTransferredOut:
    transfer = payload.get("transfer") or {}
    royalty = payload.get("royalty") or {}
    seller, buyer = _party(transfer.get("seller") or {}), _party(transfer.get("buyer") or {})
    price, currency, final = (
        transfer.get("price"),
        transfer.get("currency"),
        bool(transfer.get("final")),
    )
    what = "sold to its end user (consumed)" if final else "transferred"
    priced = f" for {price} {currency}" if price is not None else ""
    platform = str(transfer.get("platform", ""))
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
        royalties=[RoyaltyShareOut.model_validate(s) for s in royalty.get("shares", [])],
        seller_amount=royalty.get("seller_amount"),
        transfer_hash="0x" + entry.payload_hash.hex(),
        receipt_signature=None if row is None else "0x" + bytes(row.receipt_signature).hex(),
        summary=(
            f"{what} on {platform}: {seller.label} -> {buyer.label}{priced} at {_where(entry)}"
        ),
    )


def _anchored(
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


def _merge(
    spine: Sequence[tuple[LoggedEntry, TraceEventOut]], timed: list[_Timed]
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


def _position(events: list[TraceEventOut], event: TraceEventOut) -> int:
    """Where this very event object is (equal events, e.g. two identical verifications in
    one second, are told apart by identity)."""
    return next(i for i, found in enumerate(events) if found is event)


def _goes_before(item: _Timed, entry: LoggedEntry) -> bool:
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


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def _graph(events: Sequence[TraceEventOut], creator: str) -> TraceGraphOut:
    """Nodes: the creator, each holder (by platform and reference), the end user, the
    revocation, other claimants; edges: transfers with their price, in log order."""
    nodes: dict[str, TraceNodeOut] = {
        "creator": TraceNodeOut(id="creator", label=f"creator {_short(creator)}", kind="creator")
    }
    edges: list[TraceEdgeOut] = []
    holder = "creator"
    gap: int | None = None

    def node_of(party: TracePartyOut, end_user: bool = False) -> str:
        if party.creator:
            return "creator"
        key = f"{party.platform}:{party.reference}"
        kind = "end_user" if end_user else "holder"
        known = nodes.get(key)
        if known is None or (end_user and known.kind != "end_user"):
            label = f"end user {party.label}" if end_user else party.label
            nodes[key] = TraceNodeOut(id=key, label=label, kind=kind)  # type: ignore[arg-type]
        return key

    transfers = 0
    for event in events:
        if isinstance(event, TraceOmittedOut) and event.what == "entries":
            gap = event.count
        elif isinstance(event, TraceTransferredOut):
            transfers += 1
            seller = node_of(event.seller)
            if gap is not None and seller != holder:
                edges.append(
                    TraceEdgeOut(
                        source=holder,
                        target=seller,
                        label=f"{gap:,} entries left out",
                        kind="omitted",
                        leaf_index=None,
                    )
                )
            gap = None
            buyer = node_of(event.buyer, end_user=event.final)
            price = f"{event.price} {event.currency}" if event.price is not None else "no price"
            final = ", consumed" if event.final else ""
            edges.append(
                TraceEdgeOut(
                    source=seller,
                    target=buyer,
                    label=f"{transfers}. {event.platform}: {price}{final}",
                    kind="final" if event.final else "transfer",
                    leaf_index=event.leaf_index,
                )
            )
            holder = buyer
        elif isinstance(event, TraceRevokedOut):
            nodes["revoked"] = TraceNodeOut(
                id="revoked", label=f"revoked: {event.reason}", kind="revoked"
            )
            edges.append(
                TraceEdgeOut(
                    source=holder,
                    target="revoked",
                    label="revoked" if event.leaf_index is None else f"leaf {event.leaf_index:,}",
                    kind="revocation",
                    leaf_index=event.leaf_index,
                )
            )
        elif isinstance(event, TraceConflictOut):
            key = f"claimant:{event.claimant}"
            nodes[key] = TraceNodeOut(
                id=key, label=f"claim by {_short(event.claimant)}", kind="claimant"
            )
            later = "later claim" if event.first_by_log_order == creator else "claim"
            where = "queued" if event.leaf_index is None else f"leaf {event.leaf_index:,}"
            edges.append(
                TraceEdgeOut(
                    source=key,
                    target="creator",
                    label=f"{later} at {where}",
                    kind="conflict",
                    leaf_index=event.leaf_index,
                )
            )
    return TraceGraphOut(nodes=list(nodes.values()), edges=edges)


# -- renderings -------------------------------------------------------------------------------

_MERMAID_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:_@/+-()…·"
)
_MAX_LABEL = 80
_SHAPES = {
    "creator": ('(["', '"])'),
    "holder": ('["', '"]'),
    "end_user": ('(("', '"))'),
    "revoked": ('{{"', '"}}'),
    "claimant": ('[/"', '"/]'),
}
_ARROWS = {
    "transfer": "-->",
    "final": "==>",
    "revocation": "-.->",
    "conflict": "-.->",
    "omitted": "-.->",
}


def _mermaid_text(label: str) -> str:
    """A label as Mermaid text: anything but plain characters as an entity code (``#34;``),
    so that no quote, bracket, pipe or markup in a reason or a platform id escapes it."""
    if len(label) > _MAX_LABEL:
        label = label[: _MAX_LABEL - 1] + "…"
    return "".join(ch if ch in _MERMAID_SAFE else f"#{ord(ch)};" for ch in label)


def trace_mermaid(trace: TraceOut) -> str:
    """The trace's graph as Mermaid ``graph LR`` text: a node per holder, an edge per
    transfer with its price; consumption (thick edge, round node) and revocation (dotted edge
    to a hexagon) marked in shape and words, so it reads without colour."""
    ids = {node.id: f"n{i}" for i, node in enumerate(trace.graph.nodes)}
    lines = ["graph LR"]
    for node in trace.graph.nodes:
        opening, closing = _SHAPES[node.kind]
        lines.append(f"  {ids[node.id]}{opening}{_mermaid_text(node.label)}{closing}")
    for edge in trace.graph.edges:
        arrow = _ARROWS[edge.kind]
        lines.append(
            f'  {ids[edge.source]} {arrow}|"{_mermaid_text(edge.label)}"| {ids[edge.target]}'
        )
    for kind, style in (("end_user", "stroke-width:3px"), ("revoked", "stroke-dasharray:4 2")):
        members = [ids[n.id] for n in trace.graph.nodes if n.kind == kind]
        if members:
            lines.append(f"  classDef {kind} {style}")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


def _when(at: int | None) -> str:
    if at is None:
        return "queued"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def trace_table(trace: TraceOut) -> Table:
    """The trace as a rich table: one row per event, in order."""
    stats = trace.verifications
    verified = (
        f"verified {stats.times:,} times by {stats.platforms:,} platforms, first at "
        f"{_when(stats.first_at)} UTC"
        if stats.times
        else "never verified"
    )
    holder = "its creator" if trace.holder.creator else trace.holder.label
    proved = trace.creator_identity
    creator = trace.creator
    if proved is not None:
        said = describe(proved.name, proved.domain, proved.status, proved.checked_at)
        creator = f"{trace.creator} ({said})"
    table = Table(
        title=f"{trace.good_type} {trace.fingerprint}",
        caption=(
            f"{trace.status}; created by {creator}; held by {holder}; {verified}; "
            f"{trace.counts.entries_shown:,} of {trace.counts.entries:,} log entries and "
            f"{trace.counts.verifications_shown:,} of {trace.counts.verifications:,} "
            "verifications shown"
        ),
        caption_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("leaf", justify="right")
    table.add_column("event")
    table.add_column("details")
    for number, event in enumerate(trace.events, 1):
        at = getattr(event, "at", None)
        leaf = getattr(event, "leaf_index", None)
        when = "" if isinstance(event, TraceOmittedOut) else _when(at)
        table.add_row(
            str(number),
            when,
            "" if leaf is None else f"{leaf:,}",
            event.kind,
            _details(event),
        )
    return table


def _details(event: TraceEventOut) -> str:
    if isinstance(event, TraceTransferredOut) and event.royalties:
        shares = ", ".join(f"{s.amount} to {_short(s.recipient)}" for s in event.royalties)
        return f"{event.summary}; royalties {shares}; seller keeps {event.seller_amount}"
    if isinstance(event, TraceAnchoredOut):
        tx = f" tx {event.tx_hash}" if event.tx_hash else ""
        confirmations = (
            f" ({event.confirmations:,} confirmations)" if event.confirmations is not None else ""
        )
        return f"{event.summary};{tx}{confirmations}"
    return event.summary


__all__ = [
    "MAX_TRACE_ENTRIES",
    "MAX_TRACE_PLATFORMS",
    "MAX_TRACE_REFUSED",
    "MAX_TRACE_VERIFICATIONS",
    "build_trace",
    "register_entry",
    "trace_mermaid",
    "trace_table",
]
