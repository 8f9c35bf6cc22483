"""Delivery for an order (issue 17 item 2): the delivered code is checked and logged.

The order's platform sends the code it delivered (as the fingerprints it names under the
good's creator's live code keys, hashed by the caller exactly as verify hashes a code) or a
fingerprint. In one transaction, under the log's lock (the holder and the log cannot move
meanwhile):

1. the order moves ``reserved -deliver-> delivered`` (``orderstore.change_order``: its row
   lock, a due expiry applied first, the state table; a retry with the same
   Idempotency-Key replays and logs nothing new);
2. the delivered good is checked: it is the reserved one (else ``NotTheReservedGood``, the
   classic fake delivery, saying what the delivered code is), not revoked, not consumed, and
   still held by the order's seller (else ``DoubleSale``: sold elsewhere);
3. the order's royalty and rebate lines are written ``held`` (``registry.settlement``;
   parts past the price refuse the delivery);
4. a DELIVERY entry (``registry.deliverypayload``) is queued, sequenced at once and the head
   published (as a TRANSFER's): it lands in the good's state-map history and is anchored with
   the next anchor.

Any refusal raises and the transaction rolls back: the order, its changes and the log are
untouched. The code itself never reaches this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, select

from registry import log, orderstore, settlement
from registry.deliverypayload import DeliveryPayload
from registry.eip712 import Domain, address_bytes
from registry.errors import Conflict, NotFound
from registry.fingerprints import fingerprint_hex
from registry.holding import current_holding, order_seller_holds
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.orderchanges import ChangeSigner
from registry.orders import Event
from registry.orderstore import OrderView
from registry.orderviews import changes_t, order_row
from registry.records import checksum, log_registry_record_at_once, records_t
from registry.transferrequests import DoubleSale, GoodConsumed, GoodRevoked

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

#: The record type of a DELIVERY entry's payload in ``signed_records``.
DELIVERY_RECORD: str = "Delivery"


class NotTheReservedGood(Conflict):
    """The delivered code is not the good the order reserved (a fake or mistaken delivery)."""

    code = "not-the-reserved-good"
    diagnostics = "Deliver the code of the very good the order reserved; nothing was changed."


@dataclass(frozen=True)
class Delivery:
    """A delivered order and its DELIVERY entry."""

    order: OrderView
    leaf_index: int
    payload_hash: bytes
    payload: DeliveryPayload


def deliver(
    conn: Connection,
    order_id: int,
    candidates: Sequence[bytes],
    *,
    platform: str,
    account: LocalAccount,
    domain: Domain,
    signer: ChangeSigner,
    now: int,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
    idempotency_key: str | None = None,
) -> Delivery:
    """Deliver ``candidates`` (the delivered code's fingerprints, the current key's first)
    for the order; see the module's steps."""
    log.lock_log(conn)
    row = order_row(conn, order_id)
    if row is None or row.platform != platform:
        raise NotFound(f"no order {order_id} of yours")
    view = orderstore.change_order(
        conn,
        order_id,
        Event.DELIVER,
        platform=platform,
        signer=signer,
        now=now,
        idempotency_key=idempotency_key,
    )
    if view.replayed:
        return _replay(conn, view)
    good_type, fingerprint = int(view.good_type), view.fingerprint
    good = f"{view.good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    if fingerprint not in candidates:
        what = _describe(conn, good_type, candidates[0] if candidates else None)
        raise NotTheReservedGood(
            f"the code delivered is not the good order {order_id} reserved ({good}): {what}"
        )
    _check_deliverable(conn, row, good)
    # The order's money: its royalty and rebate lines, held until the sale stands.
    settlement.hold_lines(conn, row, now=now)

    opened = conn.execute(
        select(changes_t.c.change_hash).where(
            changes_t.c.order_id == order_id, changes_t.c.sequence == 0
        )
    ).scalar_one()
    registry = address_bytes(account.address)
    payload = DeliveryPayload(
        order_id=order_id,
        opened=bytes(opened),
        good_type=view.good_type,
        fingerprint=fingerprint,
        platform=platform,
        seller_platform=view.seller_platform,
        buyer_commitment=view.buyer_commitment,
        price=view.price,
        currency=view.currency,
        delivered_at=now,
        registry=checksum(registry),
        domain=domain,
    )
    logged = log_registry_record_at_once(
        conn,
        payload,
        primary_type=DELIVERY_RECORD,
        kind=EntryKind.DELIVERY,
        good_type=good_type,
        fingerprint=fingerprint,
        account=account,
        domain=domain,
        now=now,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )
    return Delivery(view, logged.leaf_index, logged.payload_hash, payload)


def _describe(conn: Connection, good_type: int, fingerprint: bytes | None) -> str:
    """What the delivered code is, in one phrase (public facts: a verify answers the same)."""
    if fingerprint is None:
        return "its creator has no code key to name it by"
    c = entries_t.c
    kinds = set(
        conn.execute(
            select(c.kind).where(c.good_type == good_type, c.fingerprint == fingerprint)
        ).scalars()
    )
    if int(EntryKind.REGISTER) not in kinds:
        return "it is not registered"
    if int(EntryKind.REVOKE) in kinds:
        return "it is another good, revoked by its creator"
    return "it is another registered good"


def _check_deliverable(conn: Connection, order: object, good: str) -> None:
    """The reserved good is unrevoked, unconsumed and still held by the order's seller."""
    good_type = int(order.good_type)  # type: ignore[attr-defined]
    fingerprint = bytes(order.fingerprint)  # type: ignore[attr-defined]
    c = entries_t.c
    revoked = conn.execute(
        select(c.id).where(
            c.kind == int(EntryKind.REVOKE), c.good_type == good_type, c.fingerprint == fingerprint
        )
    ).first()
    if revoked is not None:
        raise GoodRevoked(f"{good} was revoked by its creator: it may not be delivered")
    holding, _ = current_holding(conn, good_type, fingerprint)
    if holding is not None and holding.consumed:
        raise GoodConsumed(f"{good} was consumed by a final sale: it may not be delivered")
    seller = (order.seller_platform, order.seller_ref)  # type: ignore[attr-defined]
    moved = not order_seller_holds(seller[0], seller[1], holding)
    if moved:
        raise DoubleSale(
            f"{good} is no longer held by the order's seller: it was sold elsewhere",
            None if holding is None else {"transfer_id": int(holding.last_transfer_id)},
        )


def _replay(conn: Connection, view: OrderView) -> Delivery:
    """The delivery a retried request already made: the order's DELIVERY entry."""
    c = entries_t.c
    rows = conn.execute(
        select(c.leaf_index, c.payload_hash, records_t.c.payload)
        .join(records_t, records_t.c.id == c.record_id)
        .where(
            c.kind == int(EntryKind.DELIVERY),
            c.good_type == int(view.good_type),
            c.fingerprint == view.fingerprint,
        )
        .order_by(c.id)
    ).all()
    for row in rows:
        payload = DeliveryPayload.from_json(row.payload)
        if payload.order_id == view.order_id:
            return Delivery(view, int(row.leaf_index), bytes(row.payload_hash), payload)
    raise NotFound(f"order {view.order_id} has no delivery entry")  # pragma: no cover


__all__ = ["DELIVERY_RECORD", "Delivery", "NotTheReservedGood", "deliver"]
