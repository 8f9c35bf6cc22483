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
from typing import Any, Final, Literal

from sqlalchemy import Connection, func, select, text

from anchoring.models import anchors_t
from anchoring.states import ANCHORED, NOT_YET_MINED
from readmodels.traceevents import (
    Timed,
    anchored_event,
    conflict_event,
    creator_party,
    merge_timed,
    party,
    position_of,
    registered_event,
    revoked_event,
    transferred_event,
)
from readmodels.tracerender import trace_graph, trace_mermaid, trace_table
from registry.db import read_transaction
from registry.eip712 import address_bytes
from registry.entries import LoggedEntry
from registry.errors import NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.holding import holdings_t
from registry.identity import identity_of
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.records import checksum, records_t
from registry.service import Registry
from registry.telemetry import counts_t, event_ids_of, events_t, verification_stats
from registry.transfers import attempts_t, transfers_t
from verifier.identity import method as identity_method
from verifier.schemas import (
    CreatorIdentityOut,
    TraceCountsOut,
    TraceEventOut,
    TraceOmittedOut,
    TraceOut,
    TracePlatformOut,
    TraceRefusedOut,
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

Status = Literal["queued", "active", "revoked", "consumed"]


# -- reading ----------------------------------------------------------------------------------


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
    registered = registered_event(register, register_payload)
    spine: list[tuple[LoggedEntry, TraceEventOut]] = []
    for entry in entries:
        payload = payloads[entry.record_id]
        if entry is register:
            spine.append((entry, registered))
        elif entry.kind is EntryKind.CONFLICT:
            spine.append((entry, conflict_event(entry, payload, register)))
        elif entry.kind is EntryKind.REVOKE:
            spine.append((entry, revoked_event(entry, payload)))
        elif entry.kind is EntryKind.TRANSFER:
            spine.append((entry, transferred_event(entry, payload, transfers.get(entry.entry_id))))
    timed: list[Timed] = [Timed(v.at, i, v) for i, v in enumerate(verifications)]
    timed += [Timed(r.at, len(timed) + i, r) for i, r in enumerate(refused)]
    domain = registry.domain
    for i, (row, covered) in enumerate(anchors):
        anchor = anchored_event(
            row, covered, domain.chain_id, domain.verifying_contract, chain_block
        )
        timed.append(Timed(anchor.at, len(timed) + i, anchor, int(row.tree_size)))
    events = merge_timed(spine, timed)
    if omitted_entries:
        first_of_tail = spine[len(spine) - (MAX_TRACE_ENTRIES // 2)][1]
        gap = TraceOmittedOut(
            what="entries",
            count=omitted_entries,
            summary=f"{omitted_entries:,} log entries left out here",
        )
        events.insert(position_of(events, first_of_tail), gap)
    if total_refused > len(refused):
        left_out = total_refused - len(refused)
        gap = TraceOmittedOut(
            what="refused transfers",
            count=left_out,
            summary=f"{left_out:,} older refused transfers left out",
        )
        events.insert(position_of(events, refused[0]), gap)
    if omitted_checks:
        first_of_tail = verifications[MAX_TRACE_VERIFICATIONS // 2]
        gap = TraceOmittedOut(
            what="verifications",
            count=omitted_checks,
            summary=f"{omitted_checks:,} verifications left out here",
        )
        events.insert(position_of(events, first_of_tail), gap)

    status: Status = "active"
    if kinds.get(EntryKind.REVOKE, 0):
        status = "revoked"
    elif holding is not None and holding.consumed:
        status = "consumed"
    elif register.leaf_index is None:
        status = "queued"
    holder = (
        creator_party()
        if holding is None
        else party({"platform": holding.holder_platform, "reference_hash": holding.holder_ref})
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
        graph=trace_graph(events, owner),
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
        # One on chain if any; else one still on its way, shown with its state.
        for states in (ANCHORED, NOT_YET_MINED):
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
    # NOTE: on PostgreSQL each statement reads its own snapshot (READ COMMITTED): an event
    # appended between the count and the rows makes more rows than counted, never fewer.
    total = max(total, len(shown))
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
            creator_party()
            if row.seller_platform is None
            else party({"platform": row.seller_platform, "reference_hash": bytes(row.seller_ref)})
        )
        buyer = party({"platform": row.buyer_platform, "reference_hash": bytes(row.buyer_ref)})
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
