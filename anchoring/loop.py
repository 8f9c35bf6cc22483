"""The anchoring loop: step the worker while holding the lease, backing off while it fails."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from anchoring.errors import ChainUnavailable, ReceiptMismatch, TransactionRejected
from registry.errors import LeaseLost
from registry.lease import Lease

if TYPE_CHECKING:
    from anchoring.worker import AnchorWorker

logger = logging.getLogger("tracemark.anchoring")

#: Longest pause between attempts while the chain is down or the key cannot pay (seconds).
MAX_BACKOFF_SECONDS = 30.0


def run_anchoring(
    worker: AnchorWorker, *, interval: float, stop: Any, lease: Lease | None = None
) -> None:
    """Step the worker until ``stop`` (a threading.Event) is set, backing off on errors.

    Only the holder of the anchoring lease steps (THREATS 28, ``registry.lease``); the others
    stand by and take over when it goes. The worker's sealing and signing transactions are
    fenced by the lease, so a holder that lost it (paused past its expiry) signs nothing;
    a transaction it already signed and stored is the one the next holder sends. Errors
    change nothing stored (each step commits only after its side effect succeeded), so
    retrying is always safe; the registry keeps serving meanwhile. Without a ``lease``, one
    of the default length is taken and kept here.
    """
    own = lease is None
    if lease is None:
        lease = Lease(worker.registry.engine, "anchoring")
    keeper_stop = threading.Event()
    if own:
        lease.keep(keeper_stop)
    worker.fence = lease.fence
    backoff = interval
    reconciled = False
    try:
        while not stop.is_set():
            if not lease.held:
                reconciled = False  # a new holding starts by lining up with the chain
                stop.wait(min(interval, lease.interval))  # another worker anchors; stand by
                continue
            if not reconciled:
                try:
                    worker.reconcile()
                except LeaseLost as exc:
                    logger.warning("anchoring stopped: %s", exc.detail)
                    continue
                except ChainUnavailable as exc:
                    # A worker started while the node is down waits for it (THREATS 30).
                    logger.warning("anchoring: %s; retrying in %.1fs", exc.detail, backoff)
                    stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                    continue
                reconciled = True
            backoff = _step_once(worker, interval, backoff, stop)
            worker.beat()
    finally:
        keeper_stop.set()


def _step_once(worker: AnchorWorker, interval: float, backoff: float, stop: Any) -> float:
    """One step and the pause after it; returns the next back-off."""
    try:
        what = worker.step()
    except LeaseLost as exc:
        logger.warning("anchoring stopped: %s", exc.detail)
        return interval
    except (ChainUnavailable, TransactionRejected, ReceiptMismatch) as exc:
        logger.warning("anchoring: %s; retrying in %.1fs", exc.detail, backoff)
    except Exception:
        logger.exception("anchoring step failed; retrying in %.1fs", backoff)
    else:
        if what is not None:
            logger.debug("anchoring: %s", what)  # each transition logs itself
        else:
            stop.wait(interval)
        return interval
    stop.wait(backoff)
    return min(backoff * 2, MAX_BACKOFF_SECONDS)


__all__ = ["MAX_BACKOFF_SECONDS", "run_anchoring"]
