"""The anchoring loop: step the worker while holding the lease, backing off while it fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from anchoring.errors import ChainUnavailable, ReceiptMismatch, TransactionRejected
from anchoring.lease import AnchorLease

if TYPE_CHECKING:
    from anchoring.worker import AnchorWorker

logger = logging.getLogger("tracemark.anchoring")

#: Longest pause between attempts while the chain is down or the key cannot pay (seconds).
MAX_BACKOFF_SECONDS = 30.0


def run_anchoring(worker: AnchorWorker, *, interval: float, stop: Any) -> None:
    """Step the worker until ``stop`` (a threading.Event) is set, backing off on errors.

    Only the holder of the anchoring lease steps (THREATS 28); the others stand by and take
    over when it goes. Errors change nothing stored (each step commits only after its side
    effect succeeded), so retrying is always safe; the registry keeps serving meanwhile.
    """
    lease = AnchorLease(worker.registry.engine)
    backoff = interval
    reconciled = False
    try:
        while not stop.is_set():
            if not lease.held and not lease.acquire():
                stop.wait(interval)  # another worker anchors; stand by
                continue
            if not reconciled:
                try:
                    worker.reconcile()
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
        lease.release()


def _step_once(worker: AnchorWorker, interval: float, backoff: float, stop: Any) -> float:
    """One step and the pause after it; returns the next back-off."""
    try:
        what = worker.step()
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
