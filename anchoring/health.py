"""What the anchoring worker reports about itself: its heartbeat and the alerts a user must hear.

``/readyz`` reads both from ``anchorer_state``; an alert is logged once, when it appears.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update

from anchoring.models import anchors_t
from anchoring.states import ENDED, NOT_YET_FINAL, AnchorState
from anchoring.store import state_t
from registry import log
from registry.db import read_transaction, write_transaction

if TYPE_CHECKING:
    from anchoring.worker import AnchorWorker

logger = logging.getLogger("tracemark.anchoring")


def beat(worker: AnchorWorker) -> None:
    """Record that the worker is alive, with its current alerts: once per loop."""
    found = alerts(worker)
    text = "\n".join(found) or None
    with write_transaction(worker.registry.engine) as conn:
        before = conn.execute(select(state_t.c.last_error).where(state_t.c.id == 1)).first()
        values = {"heartbeat": worker.clock(), "last_error": text}
        if before is None:
            conn.execute(insert(state_t).values(id=1, failures=0, **values))
        else:
            conn.execute(update(state_t).values(**values))
    if text != (before.last_error if before is not None else None):
        for alert in found:
            logger.error("ALERT anchoring: %s", alert)


def alerts(worker: AnchorWorker) -> list[str]:
    """What a user must hear about (THREATS 23, 29, 33, 34): why the anchor in flight waits
    (an unfunded key, the fee cap), an anchor that reverted or failed with no final anchor
    since, and a head that has waited longer than the time-to-anchor objective."""
    found = []
    policy = worker.policy
    with read_transaction(worker.registry.engine) as conn:
        waiting = conn.execute(
            select(anchors_t.c.tree_size, anchors_t.c.error).where(
                anchors_t.c.state.in_(NOT_YET_FINAL), anchors_t.c.error.is_not(None)
            )
        ).all()
        found += [f"anchor of head {size}: {error}" for size, error in waiting]
        last_final = conn.execute(
            select(func.max(anchors_t.c.id)).where(anchors_t.c.state == AnchorState.FINAL)
        ).scalar()
        ended = conn.execute(
            select(anchors_t.c.tree_size, anchors_t.c.state, anchors_t.c.error)
            .where(
                anchors_t.c.id > (last_final or 0),
                anchors_t.c.state.in_(ENDED),
                anchors_t.c.error.is_not(None),
            )
            .order_by(anchors_t.c.id)
        ).all()
        found += [f"anchor of head {size} {state}: {error}" for size, state, error in ended]
        anchored = worker.store.anchored_size(conn)
        waiting_since = conn.execute(
            select(func.min(log.heads_t.c.timestamp)).where(log.heads_t.c.tree_size > anchored)
        ).scalar()
    if waiting_since is not None:
        waited = worker.clock() - int(waiting_since)
        if waited > policy.time_to_anchor_seconds:
            found.append(
                f"time-to-anchor exceeded: a signed head has waited {waited} s for its "
                f"anchor (objective {policy.time_to_anchor_seconds} s)"
            )
    return found


__all__ = ["alerts", "beat"]
