"""An order's state changes as recorded: each hash-chained, signed, and heard in its transaction.

A change is a JSON document (``registry.orders.change_document``) hashed with the previous
change's hash (a chain per order) and signed by the registry's current key (EIP-712
``OrderStateChange``); its row is written in the caller's transaction, and the hook that
hears of it (``ChangeSigner.on_change``: the webhooks' transactional outbox, issue 17 item 8)
runs in that same transaction, so the change and its event are written together or not at
all. Which change to make is ``registry.orderstore``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection

from registry.eip712 import Domain, address_bytes
from registry.orders import CHANGE_TYPE, State, change_document, change_hash
from registry.orderviews import changes_t
from registry.signatures import sign


@dataclass(frozen=True)
class OrderChangeNote:
    """One recorded state change, as told to ``ChangeSigner.on_change`` (the webhooks' outbox):
    nothing secret (no buyer reference, salt or code)."""

    order_id: int
    platform: str
    sequence: int
    event: str
    from_state: str | None
    to_state: str
    actor: str
    at: int
    change_hash: bytes
    good_type: int
    fingerprint: bytes


@dataclass(frozen=True)
class ChangeSigner:
    """The registry's current key and domain, which sign each state change, and who hears of
    each change in its own transaction (issue 17 item 8: the webhooks' transactional outbox)."""

    account: LocalAccount
    domain: Domain
    on_change: Callable[[Connection, OrderChangeNote], object] | None = None
    #: Called as an order enters a state, in the change's transaction: the sale recorded and
    #: its lines due, or its lines reversed (``registry.settlement.Settler``).
    settle: Callable[[Connection, Any, State, int], None] | None = None


def record_change(
    conn: Connection,
    *,
    order_id: int,
    sequence: int,
    event: str,
    from_state: State | None,
    to_state: State,
    actor: str,
    now: int,
    previous: bytes | None,
    good: tuple[int, bytes],
    signer: ChangeSigner,
    idempotency_key: str | None,
    platform: str,
) -> None:
    document = change_document(
        order_id=order_id,
        sequence=sequence,
        event=event,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        at=now,
        previous=previous,
        good_type=good[0],
        fingerprint=good[1],
    )
    digest = change_hash(document)
    message = {"orderId": order_id, "sequence": sequence, "changeHash": digest, "timestamp": now}
    signature = sign(CHANGE_TYPE, message, signer.domain, bytes(signer.account.key))
    conn.execute(
        changes_t.insert().values(
            order_id=order_id,
            sequence=sequence,
            event=event,
            from_state=None if from_state is None else from_state.value,
            to_state=to_state.value,
            actor=actor,
            at=now,
            change_hash=digest,
            signature=signature,
            signer=address_bytes(signer.account.address),
            idempotency_key=idempotency_key,
        )
    )
    if signer.on_change is not None:  # in this transaction: the change and its event, or neither
        signer.on_change(
            conn,
            OrderChangeNote(
                order_id=order_id,
                platform=platform,
                sequence=sequence,
                event=event,
                from_state=None if from_state is None else from_state.value,
                to_state=to_state.value,
                actor=actor,
                at=now,
                change_hash=digest,
                good_type=good[0],
                fingerprint=good[1],
            ),
        )


__all__ = ["ChangeSigner", "OrderChangeNote", "record_change"]
