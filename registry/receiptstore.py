"""Issuing and reading the buyer's delivery receipts (issue 17 item 3), in the caller's
transaction.

``issue`` runs in the delivery's own write transaction, right after the DELIVERY entry is
sequenced (``registry.orderdesk``): the facts are read from the good's entries before that
leaf and its holding, the document (``registry.deliveryreceipt``) is signed by the registry
key that attested the DELIVERY, and kept with a fresh random id. A retried delivery finds
the receipt already there and returns it unchanged; a refused delivery rolls the receipt
back with everything else.
"""

from __future__ import annotations

import json
import secrets

import rfc8785
from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, func, select

from registry.delivery import Delivery
from registry.deliverypayload import DeliveryPayload
from registry.deliveryreceipt import (
    PRIMARY_TYPE,
    RECEIPT_ID_BYTES,
    DeliveryReceipt,
    ReceiptFacts,
    receipt_hash,
    receipt_message,
)
from registry.eip712 import Domain, checksum_address
from registry.errors import NotFound
from registry.holding import holdings_t
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models.receipts import DeliveryReceiptRow
from registry.records import records_t
from registry.signatures import sign

receipts_t = DeliveryReceiptRow.__table__  # type: ignore[attr-defined]


def new_receipt_id() -> str:
    """A fresh receipt id: 128 random bits as 22 base64url characters."""
    return secrets.token_urlsafe(RECEIPT_ID_BYTES)


def facts_before(
    conn: Connection, good_type: int, fingerprint: bytes, leaf_index: int
) -> ReceiptFacts:
    """The good's facts as of its DELIVERY at ``leaf_index``: its entries before that leaf,
    counted by kind, and its holding (the delivery checked it is the seller's, unconsumed)."""
    c = entries_t.c
    rows = conn.execute(
        select(c.kind, c.actor, c.leaf_index)
        .where(
            c.good_type == good_type,
            c.fingerprint == fingerprint,
            c.leaf_index.is_not(None),
            c.leaf_index < leaf_index,
        )
        .order_by(c.leaf_index)
    ).all()
    counts: dict[int, int] = {}
    register = None
    for row in rows:
        counts[int(row.kind)] = counts.get(int(row.kind), 0) + 1
        if register is None and int(row.kind) == int(EntryKind.REGISTER):
            register = row
    if register is None:  # pragma: no cover - a delivery checks the good is registered
        raise NotFound("the delivered good has no REGISTER entry before its delivery")
    h = holdings_t.c
    consumed = conn.execute(
        select(h.consumed).where(h.good_type == good_type, h.fingerprint == fingerprint)
    ).scalar_one_or_none()
    return ReceiptFacts(
        creator=checksum_address(bytes(register.actor)),
        registered_leaf=int(register.leaf_index),
        conflicts=counts.get(int(EntryKind.CONFLICT), 0),
        revoked=counts.get(int(EntryKind.REVOKE), 0) > 0,
        consumed=bool(consumed),
        # The delivery refused any other holder (registry.delivery._check_deliverable) in
        # this very transaction, so this is what it checked, not an assumption.
        held_by_seller=True,
        transfers_before=counts.get(int(EntryKind.TRANSFER), 0),
        earlier_deliveries=counts.get(int(EntryKind.DELIVERY), 0),
    )


def issue(
    conn: Connection, delivery: Delivery, *, account: LocalAccount, domain: Domain, now: int
) -> DeliveryReceipt:
    """The order's receipt: the one already issued (a retried delivery), or a new one signed
    by ``account`` (the key that attested the DELIVERY, in the same transaction)."""
    order_id = delivery.order.order_id
    existing = receipt_of_order(conn, order_id)
    if existing is not None:
        return existing
    payload = delivery.payload
    facts = facts_before(conn, int(payload.good_type), payload.fingerprint, delivery.leaf_index)
    receipt_id = new_receipt_id()
    signer = checksum_address(bytes.fromhex(account.address[2:]))
    unsigned = DeliveryReceipt.build(receipt_id, payload, delivery.leaf_index, facts, b"", signer)
    document = unsigned.document
    signature = sign(PRIMARY_TYPE, receipt_message(document), domain, bytes(account.key))
    conn.execute(
        receipts_t.insert().values(
            order_id=order_id,
            receipt_id=receipt_id,
            leaf_index=delivery.leaf_index,
            document=rfc8785.dumps(document),
            receipt_hash=receipt_hash(document),
            signature=signature,
            signer=bytes.fromhex(signer[2:]),
            issued_at=now,
        )
    )
    return DeliveryReceipt(receipt_id, document, payload, facts, signature, signer)


def receipt_of_order(conn: Connection, order_id: int) -> DeliveryReceipt | None:
    """The receipt of an order, or None (not delivered)."""
    return _load(conn, receipts_t.c.order_id == order_id)


def receipt_by_id(conn: Connection, receipt_id: str) -> DeliveryReceipt | None:
    """The receipt a short link names, or None."""
    return _load(conn, receipts_t.c.receipt_id == receipt_id)


def _load(conn: Connection, where: object) -> DeliveryReceipt | None:
    row = conn.execute(select(receipts_t).where(where)).first()  # type: ignore[arg-type]
    if row is None:
        return None
    c = entries_t.c
    payload = conn.execute(
        select(records_t.c.payload)
        .join(entries_t, records_t.c.id == c.record_id)
        .where(c.leaf_index == int(row.leaf_index), c.kind == int(EntryKind.DELIVERY))
    ).scalar_one()
    delivery = DeliveryPayload.from_json(payload)
    data = {
        "receipt_id": row.receipt_id,
        "document": _json(bytes(row.document)),
        "delivery": delivery.document(),
        "signature": "0x" + bytes(row.signature).hex(),
        "signer": checksum_address(bytes(row.signer)),
    }
    # Parsed as any reader parses it: a stored row that no longer agrees with its DELIVERY
    # entry fails here rather than being shown.
    return DeliveryReceipt.from_json(data)


def _json(data: bytes) -> dict[str, object]:
    value = json.loads(data)
    assert isinstance(value, dict)
    return value


def receipt_count(conn: Connection) -> int:
    """How many receipts were issued (tests)."""
    return int(conn.execute(select(func.count()).select_from(receipts_t)).scalar_one())


__all__ = [
    "facts_before",
    "issue",
    "new_receipt_id",
    "receipt_by_id",
    "receipt_count",
    "receipt_of_order",
    "receipts_t",
]
