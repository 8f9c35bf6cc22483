"""The order sweep (issue 17): orders past their time are expired or auto-confirmed unasked.

Every reader settles a due order it meets (``registry.orderstore``), but an order nobody reads
would otherwise wait: its buyer's sale unrecorded, its lines held, its webhook unsent. The
sweep runs in the sequencer's role (``tracemark serve``: one process at a time holds its
lease), because an auto-confirm writes to the log (the sale's TRANSFER entry) and that role is
the log's writer: every few seconds it settles the orders whose reservation has lapsed, oldest
deadline first, a bounded number a pass (``Registry.sweep_orders``), each in its own
transaction, and logs what it did. A failure is logged and retried with a bounded back-off;
the loop stops when ``stop`` is set.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Final

from sqlalchemy import Connection, select

from registry.reservations import reservations_t
from registry.rolesteps import Fence, Role, run_steps

if TYPE_CHECKING:
    from registry.lease import Lease
    from registry.service import Registry

logger = logging.getLogger("tracemark.orders.sweep")

#: Seconds between passes: an auto-confirm is applied at most this late by the sweep.
DEFAULT_SWEEP_INTERVAL: Final = 5.0
#: Longest pause after repeated failures, seconds.
MAX_BACKOFF_SECONDS: Final = 60.0
_ROLE = Role(logger, "order sweep", "sweeping again", MAX_BACKOFF_SECONDS)


def due_orders(conn: Connection, *, now: int, limit: int) -> list[int]:
    """Ids of up to ``limit`` orders whose reservation has lapsed, oldest deadline first."""
    c = reservations_t.c
    query = (
        select(c.order_id)
        .where(c.expires_at.is_not(None), c.expires_at <= now)
        .order_by(c.expires_at, c.order_id)
        .limit(limit)
    )
    return [int(order_id) for order_id in conn.execute(query).scalars()]


def run_order_sweep(
    registry: Registry,
    *,
    interval: float = DEFAULT_SWEEP_INTERVAL,
    stop: threading.Event,
    lease: Lease | None = None,
) -> None:
    """Sweep until ``stop`` is set. With a ``lease`` (the sequencer's), only while it is
    held, each order's transaction fenced by it; a full pass goes again at once."""
    from registry.orderdesk import SWEEP_BATCH

    def step(fence: Fence | None) -> bool:
        settled = registry.sweep_orders(limit=SWEEP_BATCH, fence=fence)
        if settled:
            logger.info("settled %d order(s) past their time", settled)
        return settled >= SWEEP_BATCH  # more may be due: go again without sleeping

    run_steps(step, _ROLE, interval=interval, stop=stop, lease=lease)


__all__ = ["DEFAULT_SWEEP_INTERVAL", "due_orders", "run_order_sweep"]
