"""The sequencer loop: integrate queued entries in batches and publish each signed tree head.

Batching by size OR age (Trillian/Tessera): a full batch is integrated at once, a partial
one at the next tick. Errors are logged and retried with a bounded back-off; the loop never
dies on a busy database.
"""

from __future__ import annotations

import logging
import threading

from registry.fingerprints import fingerprint_hex
from registry.lease import Lease
from registry.rolesteps import Fence, Role, run_steps
from registry.service import Registry
from registry.treehead import TreeHead

logger = logging.getLogger("tracemark.sequencer")

#: Longest pause after repeated failures, seconds.
MAX_BACKOFF_SECONDS = 30.0

_ROLE = Role(logger, "sequencing", "retrying", MAX_BACKOFF_SECONDS)


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

    def step(fence: Fence | None) -> bool:
        head = registry.sequence(fence=fence)
        if head is None:
            return False
        logger.info("signed %s", describe(head))
        return True  # a full batch means more may be waiting: go again without sleeping

    run_steps(step, _ROLE, interval=interval, stop=stop, lease=lease)
