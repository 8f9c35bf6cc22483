"""How a trace is drawn: its graph of who held the good (as data), as Mermaid, as a table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rich.table import Table

from verifier.identity import describe
from verifier.schemas import (
    TraceAnchoredOut,
    TraceConflictOut,
    TraceEdgeOut,
    TraceEventOut,
    TraceGraphOut,
    TraceNodeOut,
    TraceOmittedOut,
    TraceOut,
    TracePartyOut,
    TraceRevokedOut,
    TraceTransferredOut,
)


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def trace_graph(events: Sequence[TraceEventOut], creator: str) -> TraceGraphOut:
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


__all__ = ["trace_graph", "trace_mermaid", "trace_table"]
