"""The registry's order use cases (issue 17), mixed into ``registry.service.Registry``.

Each method owns its transaction (STYLE 8), as the facade's others do; the rules are
``registry.orders`` and the storage ``registry.orderstore``. Kept apart so that the facade
stays one screen per concern.
"""

from __future__ import annotations

from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine

from registry import orderstore
from registry.db import read_transaction, retrying, write_transaction
from registry.eip712 import Domain
from registry.orders import Event, OrderRequest
from registry.orderstore import ChangeSigner, OrderView
from registry.parties import ReferenceKeys

#: Lapsed reservations settled per sweep transaction.
SWEEP_BATCH = 500


class OrderDesk:
    """Open, read and move orders; settle their timeouts."""

    # Provided by ``Registry``.
    engine: Engine
    domain: Domain
    clock: Callable[[], int]
    _reference_keys: ReferenceKeys

    def _signing_account(self, conn: Connection) -> LocalAccount:  # pragma: no cover
        raise NotImplementedError

    def _change_signer(self, conn: Connection) -> ChangeSigner:
        return ChangeSigner(self._signing_account(conn), self.domain)

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
    ) -> OrderView:
        """Apply one event of the state table (``platform``: the order's own; None: the
        registry). ``InvalidTransition`` (409) changes nothing."""

        def attempt() -> OrderView:
            with write_transaction(self.engine) as conn:
                return orderstore.change_order(
                    conn,
                    order_id,
                    event,
                    platform=platform,
                    signer=self._change_signer(conn),
                    now=self.clock(),
                    idempotency_key=idempotency_key,
                )

        return retrying(attempt)

    def deliver_order(self, order_id: int, *, platform: str) -> OrderView:
        """The state change of a delivery, and only that: issue 17 item 2 adds the delivered
        code's checks and its log entry (``orderstore._apply``'s hook). No route calls it."""
        return self.change_order(order_id, Event.DELIVER, platform=platform)

    def order(self, order_id: int) -> OrderView:
        """An order, with a timeout that is due applied first (the lazy path)."""
        with read_transaction(self.engine) as conn:
            view = orderstore.load_order(conn, order_id)
        if orderstore.due_event(view, self.clock()) is None:
            return view

        def attempt() -> OrderView:
            with write_transaction(self.engine) as conn:
                orderstore.settle_order(
                    conn, order_id, signer=self._change_signer(conn), now=self.clock()
                )
                return orderstore.load_order(conn, order_id)

        return retrying(attempt)

    def order_ids(self, platform: str, *, after: int, limit: int) -> list[int]:
        """Ids of the orders a platform opened, oldest first, after a cursor."""
        with read_transaction(self.engine) as conn:
            return orderstore.order_ids(conn, platform, after=after, limit=limit)

    def sweep_orders(self, *, limit: int = SWEEP_BATCH) -> int:
        """Expire or auto-confirm up to ``limit`` orders past their time; how many."""
        with write_transaction(self.engine) as conn:
            return orderstore.sweep(
                conn, signer=self._change_signer(conn), now=self.clock(), limit=limit
            )


__all__ = ["SWEEP_BATCH", "OrderDesk"]
