"""The registry's order use cases (issue 17), mixed into ``registry.service.Registry``.

Each method owns its transaction (STYLE 8), as the facade's others do; the rules are
``registry.orders`` and the storage ``registry.orderstore``. Kept apart so that the facade
stays one screen per concern.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Engine

from registry import delivery, orderstore
from registry.db import read_transaction, retrying, write_transaction
from registry.eip712 import Domain
from registry.orders import Event, OrderRequest
from registry.orderstore import ChangeSigner, OrderChangeNote, OrderView
from registry.parties import ReferenceKeys

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.delivery import Delivery
    from registry.statecommit import StateMapCache

#: Lapsed reservations settled per sweep transaction.
SWEEP_BATCH = 500


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

    def _change_signer(self, conn: Connection) -> ChangeSigner:
        return ChangeSigner(self._signing_account(conn), self.domain, self.order_listener)

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
                return delivery.deliver(
                    conn,
                    order_id,
                    candidates,
                    platform=platform,
                    account=self._signing_account(conn),
                    domain=self.domain,
                    signer=self._change_signer(conn),
                    now=self.clock(),
                    state_map=self._committing,
                    checkpoint_signer=self.checkpoint_signer,
                    idempotency_key=idempotency_key,
                )

        return retrying(attempt)

    def deliver_order(self, order_id: int, *, platform: str) -> OrderView:
        """Deliver the order's own good by its fingerprint (tests and benchmarks)."""
        with read_transaction(self.engine) as conn:
            fingerprint = orderstore.load_order(conn, order_id).fingerprint
        return self.deliver(order_id, [fingerprint], platform=platform).order

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
