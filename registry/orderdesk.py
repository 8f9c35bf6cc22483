"""The registry's order use cases (issue 17), mixed into ``registry.service.Registry``.

Each method owns its transaction (STYLE 8), as the facade's others do; the rules are
``registry.orders`` and the storage ``registry.orderstore``. Kept apart so that the facade
stays one screen per concern.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from registry import delivery, log, orderstore, orderviews, receiptstore, refuseddelivery
from registry.db import read_transaction, retrying, write_transaction
from registry.eip712 import Domain
from registry.errors import Conflict, InvalidInput, LeaseLost, NotFound, TracemarkError
from registry.orderchanges import ChangeSigner, OrderChangeNote
from registry.orders import Event, OrderRequest
from registry.orderstore import OrderView
from registry.ordersweep import due_orders
from registry.parties import ReferenceKeys
from registry.settlement import Settler

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.delivery import Delivery
    from registry.deliveryreceipt import DeliveryReceipt
    from registry.statecommit import StateMapCache

#: Orders settled per sweep pass (each in its own transaction: an auto-confirm logs a sale).
SWEEP_BATCH = 100

logger = logging.getLogger("tracemark.orders")


class OrderDesk:
    """Open, read and move orders; settle their timeouts."""

    # Provided by ``Registry``.
    engine: Engine
    domain: Domain
    clock: Callable[[], int]
    _reference_keys: ReferenceKeys
    _committing: StateMapCache | None
    checkpoint_signer: CheckpointSigner

    def _signing_account(self, conn: Connection) -> LocalAccount:  # pragma: no cover
        raise NotImplementedError

    #: Told of each recorded state change in its transaction (``api.webhooks`` sets it).
    order_listener: Callable[[Connection, OrderChangeNote], object] | None = None

    def _change_signer(self, conn: Connection, *, redeemed: bool = False) -> ChangeSigner:
        account = self._signing_account(conn)
        settler = Settler(
            account, self.domain, self._committing, self.checkpoint_signer, redeemed=redeemed
        )
        return ChangeSigner(account, self.domain, self.order_listener, settler)

    def open_order(self, request: OrderRequest) -> OrderView:
        """Open an order and reserve its good; a retry with its Idempotency-Key replays it."""

        def attempt() -> OrderView:
            with write_transaction(self.engine) as conn:
                return orderstore.open_order(
                    conn,
                    request,
                    keys=self._reference_keys,
                    signer=self._change_signer(conn),
                    now=self.clock(),
                )

        return retrying(attempt)

    def change_order(
        self,
        order_id: int,
        event: Event,
        *,
        platform: str | None,
        idempotency_key: str | None = None,
        redeemed: bool = False,
    ) -> OrderView:
        """Apply one event of the state table (``platform``: the order's own; None: the
        registry). ``InvalidTransition`` (409) changes nothing. ``redeemed``, with a refund
        only: the buyer redeemed the code anyway, so it is consumed (``registry.settlement``).
        """
        if redeemed and event is not Event.REFUND:
            raise InvalidInput("redeemed goes with a refund only")

        def attempt() -> OrderView:
            with write_transaction(self.engine) as conn:
                # NOTE: the log's lock before the order's row, as delivery and opening take
                # them: a change may record the sale (a TRANSFER entry), and one lock order
                # for every writer leaves no cycle to deadlock on.
                log.lock_log(conn)
                return orderstore.change_order(
                    conn,
                    order_id,
                    event,
                    platform=platform,
                    signer=self._change_signer(conn, redeemed=redeemed),
                    now=self.clock(),
                    idempotency_key=idempotency_key,
                )

        return retrying(attempt)

    def deliver(
        self,
        order_id: int,
        candidates: Sequence[bytes],
        *,
        platform: str,
        idempotency_key: str | None = None,
    ) -> Delivery:
        """Deliver a code for the order (``candidates``: its fingerprints under the creator's
        live code keys, or the one fingerprint given): checked, the order delivered, a
        DELIVERY entry logged (``registry.delivery``). A refusal changes nothing."""

        def attempt() -> Delivery:
            with write_transaction(self.engine) as conn:
                account = self._signing_account(conn)
                done = delivery.deliver(
                    conn,
                    order_id,
                    candidates,
                    platform=platform,
                    account=account,
                    domain=self.domain,
                    signer=self._change_signer(conn),
                    now=self.clock(),
                    state_map=self._committing,
                    checkpoint_signer=self.checkpoint_signer,
                    idempotency_key=idempotency_key,
                )
                # Issue 17 item 3: the buyer's receipt, signed in the delivery's transaction
                # by the key that attested its entry (a retry finds the one issued).
                receiptstore.issue(
                    conn,
                    done,
                    account=account,
                    domain=self.domain,
                    now=done.payload.delivered_at,
                )
                return done

        try:
            return retrying(attempt)
        except delivery.NotTheReservedGood:
            self._record_refused_delivery(order_id, platform)
            raise

    def _record_refused_delivery(self, order_id: int, platform: str) -> None:
        """Keep a fake delivery refused, as a refused transfer is kept (issue 18 item 1:
        credit counts it); failing to keep it never changes the answer."""
        try:
            with write_transaction(self.engine) as conn:
                refuseddelivery.record_refused_delivery(
                    conn, order_id, platform=platform, now=self.clock()
                )
        except (TracemarkError, DBAPIError):
            logger.warning("a refused delivery of order %d was not recorded", order_id)

    def deliver_order(self, order_id: int, *, platform: str) -> OrderView:
        """Deliver the order's own good by its fingerprint (tests and benchmarks)."""
        with read_transaction(self.engine) as conn:
            fingerprint = orderstore.load_order(conn, order_id).fingerprint
        return self.deliver(order_id, [fingerprint], platform=platform).order

    def delivery_receipt(self, order_id: int, *, platform: str) -> DeliveryReceipt:
        """The buyer's receipt of a delivered order of ``platform``'s (issue 17 item 3);
        ``NotFound`` for another platform's order, as for none, or one not delivered."""
        with read_transaction(self.engine) as conn:
            row = orderviews.order_row(conn, order_id)
            if row is None or row.platform != platform:
                raise NotFound(f"no order {order_id} of yours")
            receipt = receiptstore.receipt_of_order(conn, order_id)
        if receipt is None:
            raise NotFound(f"order {order_id} has no receipt: it was not delivered")
        return receipt

    def delivery_receipt_by_id(self, receipt_id: str) -> DeliveryReceipt:
        """The receipt a short link names (public: the id is the capability)."""
        with read_transaction(self.engine) as conn:
            receipt = receiptstore.receipt_by_id(conn, receipt_id)
        if receipt is None:
            raise NotFound("no receipt of that id")
        return receipt

    def order(self, order_id: int) -> OrderView:
        """An order, with a timeout that is due applied first (the lazy path)."""
        with read_transaction(self.engine) as conn:
            view = orderstore.load_order(conn, order_id)
        if orderstore.due_event(view, self.clock()) is None:
            return view

        def attempt() -> OrderView:
            with write_transaction(self.engine) as conn:
                log.lock_log(conn)  # an auto-confirm records the sale (see change_order)
                orderstore.settle_order(
                    conn, order_id, signer=self._change_signer(conn), now=self.clock()
                )
                return orderstore.load_order(conn, order_id)

        try:
            return retrying(attempt)
        except (Conflict, InvalidInput) as exc:
            # A read answers the order: one whose sale cannot be recorded now (never expected:
            # the reservation keeps the holder) is shown as stored, unsettled, and logged.
            logger.warning("order %d not settled on reading: %s", order_id, exc.detail)
            return view

    def order_ids(self, platform: str, *, after: int, limit: int) -> list[int]:
        """Ids of the orders a platform opened, oldest first, after a cursor."""
        with read_transaction(self.engine) as conn:
            return orderstore.order_ids(conn, platform, after=after, limit=limit)

    def sweep_orders(
        self, *, limit: int = SWEEP_BATCH, fence: Callable[[Connection], None] | None = None
    ) -> int:
        """Expire or auto-confirm up to ``limit`` orders past their time, oldest deadline
        first, each in its own transaction; how many. An auto-confirm records the sale, so
        one order the sale cannot be recorded for (logged) does not hold the others back.
        ``fence``: the sweeping role's lease check (``registry.lease.Lease.fence``)."""
        with read_transaction(self.engine) as conn:
            due = due_orders(conn, now=self.clock(), limit=limit)
        settled = 0
        for order_id in due:

            def attempt(order_id: int = order_id) -> bool:
                with write_transaction(self.engine) as conn:
                    if fence is not None:
                        fence(conn)
                    log.lock_log(conn)
                    return orderstore.settle_order(
                        conn, order_id, signer=self._change_signer(conn), now=self.clock()
                    )

            try:
                settled += retrying(attempt)
            except TracemarkError as exc:
                if isinstance(exc, LeaseLost):
                    raise
                logger.warning("order %d not settled: %s", order_id, exc.detail)
        return settled


__all__ = ["SWEEP_BATCH", "OrderDesk"]
