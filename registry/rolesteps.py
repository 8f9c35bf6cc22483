"""A singleton role's loop: one step after another while its lease is held, errors logged and
retried with a bounded back-off, until ``stop`` is set. The sequencer's batches
(``registry.sequencer``) and the order sweep's passes (``registry.ordersweep``) both run in it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from registry.errors import LeaseLost, StorageBusy

if TYPE_CHECKING:
    from registry.lease import Lease

#: What fences a step's transaction: the lease's check, run first in it.
Fence = Callable[[Connection], None]


@dataclass(frozen=True)
class Role:
    """How a role's loop speaks and backs off: its logger, what it does ("sequencing"), what
    a retry is called ("retrying"), and the longest back-off (seconds)."""

    logger: logging.Logger
    what: str
    again: str
    max_backoff: float


def run_steps(
    step: Callable[[Fence | None], bool],
    role: Role,
    *,
    interval: float,
    stop: threading.Event,
    lease: Lease | None,
) -> None:
    """Call ``step(fence)`` (the lease's fence, ``None`` without a lease) until
    ``stop`` is set: at once again when it returns True (a full batch: more may be waiting),
    else after ``interval``. With a ``lease``, only while it is held. ``LeaseLost`` is logged
    ("<what> stopped") and the loop stands by; a busy database or any other failure is logged
    ("<what> failed; <again> in ...") and retried after a back-off doubling up to the
    role's ``max_backoff``. The loop never dies on a failed step."""
    logger, what, again = role.logger, role.what, role.again
    backoff = interval
    while not stop.is_set():
        if lease is not None and not lease.held:
            stop.wait(min(interval, lease.interval))  # another process holds the role; stand by
            continue
        try:
            more = step(None if lease is None else lease.fence)
        except LeaseLost as exc:
            logger.warning("%s stopped: %s", what, exc.detail)
            continue
        except StorageBusy:
            logger.warning("database busy; %s in %.1fs", again, backoff)
        except Exception:
            logger.exception("%s failed; %s in %.1fs", what, again, backoff)
        else:
            backoff = interval
            if not more:
                stop.wait(interval)
            continue
        stop.wait(backoff)
        backoff = min(backoff * 2, role.max_backoff)


__all__ = ["Fence", "Role", "run_steps"]
