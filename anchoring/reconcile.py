"""Lining the stored anchors up with the chain: at start, and whenever a final anchor moves.

Anchors the chain no longer holds are marked reorged (recorded, never silently rewritten) and
their heads anchored anew; a head the chain holds but the database does not is adopted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from anchoring.errors import ChainMismatch
from anchoring.models import anchors_t
from anchoring.states import ANCHORED, NOT_YET_FINAL, AnchorState
from registry import log
from registry.db import read_transaction, write_transaction

if TYPE_CHECKING:
    from anchoring.worker import AnchorWorker

logger = logging.getLogger("tracemark.anchoring")


def reconcile(worker: AnchorWorker) -> list[str]:
    """Line the database up with the chain at start (THREATS 50, and a dev chain that came
    back shorter than the database remembers): anchors the chain no longer holds are marked
    reorged and their heads anchored anew; with nothing in flight, the nonce is re-seeded
    from the chain."""
    store = worker.store
    on_chain, on_chain_root = worker.chain.last_anchored()
    notes = []
    with write_transaction(worker.registry.engine) as conn:
        worker.fence(conn)
        ours_in_flight = conn.execute(
            select(anchors_t.c.id).where(
                anchors_t.c.state.in_(NOT_YET_FINAL),
                anchors_t.c.tree_size == on_chain,
                anchors_t.c.root == on_chain_root,
            )
        ).first()
        # A head on chain that we have in flight is our own transaction, mined while we
        # were down: the state machine finds its receipt. Anything else is adopted.
        if on_chain > store.anchored_size(conn) and ours_in_flight is None:
            notes.append(_adopt(worker, conn, on_chain, on_chain_root))
        for anchor in store.all_in(conn, ANCHORED, larger_than=on_chain):
            store.move(conn, anchor, AnchorState.REORGED, f"the chain's last head is {on_chain}")
            notes.append(f"head {anchor.tree_size} is no longer on chain; anchoring again")
        in_flight = conn.execute(
            select(func.count()).where(anchors_t.c.state.in_(NOT_YET_FINAL))
        ).scalar_one()
        if not in_flight:
            store.set_next_nonce(conn, None)
    for note in notes:
        logger.error("anchoring: %s", note)
    return notes


def _adopt(worker: AnchorWorker, conn: Connection, size: int, root: bytes) -> str:
    """The chain holds a head the database does not remember (a restored backup, THREATS
    50). If the log has that head, the anchor is adopted (recorded, not re-sent); if not,
    nothing is anchored over it: the log must be restored first."""
    if log.tree_size(conn) < size or log.root_at(conn, size) != root:
        raise ChainMismatch(
            f"the chain anchored head {size} (root 0x{root.hex()}) that this database does "
            "not hold: restore the log from a newer backup; nothing will be anchored over it"
        )
    store = worker.store
    # Anything this database still had in flight below it is superseded.
    for anchor in store.all_in(conn, NOT_YET_FINAL):
        store.move(conn, anchor, AnchorState.REORGED, f"superseded by head {size} on chain")
    store.add(
        conn,
        tree_size=size,
        root=root,
        previous_size=store.anchored_size(conn),
        state=AnchorState.FINAL,
        detail="adopted from the chain",
        error="adopted from the chain after a restore",
    )
    return f"head {size} was anchored on chain but unknown here: adopted"


def watch_final(worker: AnchorWorker) -> str | None:
    """A final anchor must stay where it was: if its block leaves the chain, finality was
    violated (THREATS 21): a critical alarm, recorded, and the head is anchored again."""
    with read_transaction(worker.registry.engine) as conn:
        anchor = worker.store.last_final_with_tx(conn)
    if anchor is None or anchor.tx_hash is None:
        return None
    receipt = worker.chain.receipt(anchor.tx_hash)
    if receipt is not None and bytes(receipt["blockHash"]) == anchor.block_hash:
        return None
    detail = f"finality violated: block {anchor.block_number} left the chain"
    logger.critical("ALARM anchor of head %s: %s", anchor.tree_size, detail)
    with write_transaction(worker.registry.engine) as conn:
        worker.fence(conn)
        worker.store.move(conn, anchor, AnchorState.REORGED, detail, error=detail)
        # Its nonce may be free again: nothing is in flight, so re-seed from the chain.
        worker.store.set_next_nonce(conn, None)
    return f"head {anchor.tree_size}: {detail}"


__all__ = ["reconcile", "watch_final"]
