"""Building an order's dispute evidence (``verifier.orderevidence``, issue 17 item 5) from the
registry: the order's signed changes, the good's proof bundle under a head that covers the
order's DELIVERY entry (its whole history then, before and after the delivery, proved complete
by the state map), and the summary computed from exactly that evidence
(``verifier.orderfacts``), as the offline verifier computes it again.

The head: the largest anchored head covering the DELIVERY, else the latest signed head (not
anchored yet: the evidence then checks everything but the chain, and a later fetch is
anchored). Who may fetch it is the route's business (``api.routes.orderevidence``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from readmodels.bundles import build_bundle, read_payloads
from registry.errors import Conflict, NotFound
from registry.leaf import EntryKind
from registry.orders import Event
from registry.orderviews import OrderView
from verifier.deliverycheck import delivery_payload
from verifier.orderevidence import FORMAT, OrderChange, OrderEvidence
from verifier.orderfacts import facts_of, summarize

if TYPE_CHECKING:
    from registry.service import Registry


class NotDelivered(Conflict):
    """The order was never delivered: there is no DELIVERY entry to show evidence about."""

    code = "not-delivered"
    diagnostics = "Evidence exists once the order is delivered (POST .../deliver)."


def delivery_leaf(registry: Registry, order: OrderView) -> int:
    """The leaf of the order's DELIVERY entry; ``NotDelivered`` if it has none (logged)."""
    if not any(c.event == Event.DELIVER for c in order.changes):
        raise NotDelivered(f"order {order.order_id} was never delivered: no evidence yet")
    deliveries = [
        e
        for e in registry.history(order.good_type, order.fingerprint)
        if e.kind is EntryKind.DELIVERY and e.leaf_index is not None
    ]
    payloads = read_payloads(registry, {e.record_id for e in deliveries})
    for entry in deliveries:
        if payloads[entry.record_id]["delivery"]["order"] == order.order_id:
            assert entry.leaf_index is not None
            return entry.leaf_index
    # A delivery change is always logged with its entry, in one transaction.
    raise NotFound(f"order {order.order_id}'s DELIVERY entry is not logged")  # pragma: no cover


def build_order_evidence(registry: Registry, order: OrderView) -> OrderEvidence:
    """The evidence of a delivered order, as it stands (``NotDelivered`` before delivery)."""
    leaf = delivery_leaf(registry, order)
    bundle = build_bundle(registry, order.good_type, order.fingerprint, covering=leaf)
    delivery = next(e for e in bundle.entries if e.leaf_index == leaf)
    payload = delivery_payload(delivery)
    state = order.changes[-1].to_state
    summary = summarize(
        order_id=order.order_id,
        state=state,
        payload=payload,
        delivery_leaf=leaf,
        tree_size=bundle.tree_head.tree_size,
        facts=facts_of(bundle.entries, delivery, payload, state, order.changes[-1].at),
    )
    return OrderEvidence(
        format=FORMAT,
        order_id=order.order_id,
        delivery_leaf=leaf,
        changes=tuple(
            OrderChange(
                sequence=c.sequence,
                event=c.event,
                from_state=c.from_state,
                to_state=c.to_state,
                actor=c.actor,
                at=c.at,
                change_hash=c.change_hash,
                signature=c.signature,
                signer=c.signer,
            )
            for c in order.changes
        ),
        bundle=bundle,
        summary=summary,
    )


__all__ = ["NotDelivered", "build_order_evidence", "delivery_leaf"]
