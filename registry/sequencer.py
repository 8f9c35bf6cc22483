"""The sequencer loop: integrate queued entries in batches and publish each signed tree head.

Batching by size OR age (Trillian/Tessera): a full batch is integrated at once, a partial
one at the next tick. Errors are logged and retried with a bounded back-off; the loop never
dies on a busy database.
"""

from __future__ import annotations

import logging
import threading

from registry.errors import LeaseLost, StorageBusy
from registry.fingerprints import fingerprint_hex
from registry.lease import Lease
from registry.service import Registry
from registry.treehead import TreeHead

logger = logging.getLogger("tracemark.sequencer")

#: Longest pause after repeated failures, seconds.
MAX_BACKOFF_SECONDS = 30.0


def describe(head: TreeHead) -> str:
    return f"tree head size={head.tree_size} root={fingerprint_hex(head.root)} ts={head.timestamp}"


def run_sequencer(
    registry: Registry, *, interval: float, stop: threading.Event, lease: Lease | None = None
) -> None:
    """Run until ``stop`` is set; each published head is logged at INFO.

    With a ``lease`` (PostgreSQL deployments: ``tracemark serve --role sequencer`` on several
    machines) only its holder sequences, and each batch's transaction is fenced by it; the
    caller keeps the lease (``Lease.keep``). Without one, this is the only sequencer.
    """
    backoff = interval
    while not stop.is_set():
        if lease is not None and not lease.held:
            stop.wait(min(interval, lease.interval))  # another process sequences; stand by
            continue
        try:
            head = registry.sequence(fence=None if lease is None else lease.fence)
        except LeaseLost as exc:
            logger.warning("sequencing stopped: %s", exc.detail)
            continue
        except StorageBusy:
            logger.warning("database busy; retrying in %.1fs", backoff)
        except Exception:
            logger.exception("sequencing failed; retrying in %.1fs", backoff)
        else:
            backoff = interval
            if head is not None:
                logger.info("signed %s", describe(head))
                # A full batch means more may be waiting: go again without sleeping.
                continue
            stop.wait(interval)
            continue
        stop.wait(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
