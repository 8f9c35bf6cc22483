"""The anchoring worker's stored state: anchor rows as frozen values, attempts, trail, nonce.

Every function takes the caller's transaction (the worker's step owns it): a state change,
its event and the attempt it signed commit together, before the side effect that follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Table, func, insert, select, update

from anchoring.chain import SignedAnchor
from anchoring.models import AnchorAttempt, AnchorerState, AnchorEvent, anchors_t
from anchoring.states import (
    ANCHORED,
    NO_STATE,
    NOT_YET_FINAL,
    AnchorState,
    check_transition,
)

logger = logging.getLogger("tracemark.anchoring")

attempts_t: Table = AnchorAttempt.__table__  # type: ignore[attr-defined]
events_t: Table = AnchorEvent.__table__  # type: ignore[attr-defined]
state_t: Table = AnchorerState.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Anchor:
    """One row of ``anchors`` as the worker read it (a change is a new read, never an edit)."""

    id: int
    tree_size: int
    root: bytes
    #: The anchored size this head extends (its consistency proof starts there).
    previous_size: int
    state: AnchorState
    nonce: int | None
    tx_hash: bytes | None
    block_number: int | None
    block_hash: bytes | None
    created_at: int
    updated_at: int
    #: Why it waits or why it ended (shown by ``status`` and the alerts), if it does.
    error: str | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Anchor:
        """The one place an ``anchors`` row becomes a value (the driver's types normalised)."""
        m = row._mapping
        return cls(
            id=int(m["id"]),
            tree_size=int(m["tree_size"]),
            root=bytes(m["root"]),
            previous_size=int(m["previous_size"]),
            state=AnchorState(m["state"]),
            nonce=None if m["nonce"] is None else int(m["nonce"]),
            tx_hash=None if m["tx_hash"] is None else bytes(m["tx_hash"]),
            block_number=None if m["block_number"] is None else int(m["block_number"]),
            block_hash=None if m["block_hash"] is None else bytes(m["block_hash"]),
            created_at=int(m["created_at"]),
            updated_at=int(m["updated_at"]),
            error=m["error"],
        )


@dataclass(frozen=True)
class Attempt:
    """One signed transaction of an anchor (``anchor_attempts``): the first or a replacement."""

    id: int
    anchor_id: int
    tx_hash: bytes
    raw: bytes
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    created_at: int
    #: The chain's block number when it was (last) sent; None until it is.
    sent_block: int | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Attempt:
        """The one place an ``anchor_attempts`` row becomes a value."""
        m = row._mapping
        return cls(
            id=int(m["id"]),
            anchor_id=int(m["anchor_id"]),
            tx_hash=bytes(m["tx_hash"]),
            raw=bytes(m["raw"]),
            nonce=int(m["nonce"]),
            max_fee_per_gas=int(m["max_fee_per_gas"]),
            max_priority_fee_per_gas=int(m["max_priority_fee_per_gas"]),
            created_at=int(m["created_at"]),
            sent_block=None if m["sent_block"] is None else int(m["sent_block"]),
        )


class AnchorStore:
    """Reads and writes the worker's tables; every state change is checked against the table
    of allowed transitions (``anchoring.states``) and recorded on the trail."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock

    # -- anchors ----------------------------------------------------------------------------

    def in_flight(self, conn: Connection) -> Anchor | None:
        """The oldest anchor not yet final and not ended: the one the worker moves."""
        row = conn.execute(
            select(anchors_t)
            .where(anchors_t.c.state.in_(NOT_YET_FINAL))
            .order_by(anchors_t.c.id)
            .limit(1)
        ).first()
        return None if row is None else Anchor.from_row(row)

    def all_in(
        self, conn: Connection, states: frozenset[AnchorState], *, larger_than: int = -1
    ) -> list[Anchor]:
        """Every anchor in one of ``states`` whose tree is larger than ``larger_than``, oldest
        first."""
        rows = conn.execute(
            select(anchors_t)
            .where(anchors_t.c.state.in_(states), anchors_t.c.tree_size > larger_than)
            .order_by(anchors_t.c.id)
        ).all()
        return [Anchor.from_row(row) for row in rows]

    def last_final_with_tx(self, conn: Connection) -> Anchor | None:
        """The newest final anchor the worker sent itself (adopted ones have no transaction)."""
        row = conn.execute(
            select(anchors_t)
            .where(anchors_t.c.state == AnchorState.FINAL, anchors_t.c.tx_hash.is_not(None))
            .order_by(anchors_t.c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else Anchor.from_row(row)

    def anchored_size(self, conn: Connection) -> int:
        """The largest tree size mined or final (0 before the first anchor)."""
        size = conn.execute(
            select(func.max(anchors_t.c.tree_size)).where(anchors_t.c.state.in_(ANCHORED))
        ).scalar()
        return int(size or 0)

    def add(
        self,
        conn: Connection,
        *,
        tree_size: int,
        root: bytes,
        previous_size: int,
        state: AnchorState,
        detail: str,
        error: str | None = None,
    ) -> int:
        """Record a new anchor in ``state`` (sealed, or final when adopted); returns its id."""
        check_transition(None, state)
        now = self.clock()
        anchor_id: int = conn.execute(
            insert(anchors_t)
            .values(
                tree_size=tree_size,
                root=root,
                previous_size=previous_size,
                state=state,
                created_at=now,
                updated_at=now,
                error=error,
            )
            .returning(anchors_t.c.id)
        ).scalar_one()
        self.event(conn, anchor_id, NO_STATE, state, detail)
        return anchor_id

    def move(
        self, conn: Connection, anchor: Anchor, state: AnchorState, detail: str, **values: Any
    ) -> None:
        """Move ``anchor`` to ``state`` (only from the state it was read in) and record why;
        raises ``IllegalTransition`` before anything is written if the table forbids it."""
        check_transition(anchor.state, state)
        # A transition ends the wait an ``error`` explained, unless it states its own.
        values.setdefault("error", None)
        conn.execute(
            update(anchors_t)
            .where(anchors_t.c.id == anchor.id, anchors_t.c.state == anchor.state)
            .values(state=state, updated_at=self.clock(), **values)
        )
        self.event(conn, anchor.id, anchor.state, state, detail)
        logger.info(
            "anchor of head %s: %s -> %s (%s)", anchor.tree_size, anchor.state, state, detail
        )

    def reseal(self, conn: Connection, anchor: Anchor, tree_size: int, root: bytes) -> None:
        """Grow a sealed anchor to a newer head (nothing of it was signed yet)."""
        conn.execute(
            update(anchors_t)
            .where(anchors_t.c.id == anchor.id, anchors_t.c.state == AnchorState.SEALED)
            .values(tree_size=tree_size, root=root, updated_at=self.clock())
        )
        self.event(
            conn, anchor.id, AnchorState.SEALED, AnchorState.SEALED, f"resealed at head {tree_size}"
        )

    def set_error(self, conn: Connection, anchor_id: int, error: str | None) -> None:
        """Say why the anchor waits (None: it no longer does)."""
        conn.execute(update(anchors_t).where(anchors_t.c.id == anchor_id).values(error=error))

    def event(
        self, conn: Connection, anchor_id: int, from_state: str, to_state: str, detail: str
    ) -> None:
        """One line of the audit trail (a note with ``from_state == to_state`` moves nothing)."""
        conn.execute(
            insert(events_t).values(
                anchor_id=anchor_id,
                at=self.clock(),
                from_state=from_state,
                to_state=to_state,
                detail=detail,
            )
        )

    # -- attempts ---------------------------------------------------------------------------

    def attempts(self, conn: Connection, anchor_id: int) -> list[Attempt]:
        """Every signed transaction of the anchor, oldest first."""
        rows = conn.execute(
            select(attempts_t).where(attempts_t.c.anchor_id == anchor_id).order_by(attempts_t.c.id)
        ).all()
        return [Attempt.from_row(row) for row in rows]

    def add_attempt(self, conn: Connection, anchor_id: int, signed: SignedAnchor) -> None:
        conn.execute(
            insert(attempts_t).values(
                anchor_id=anchor_id,
                tx_hash=signed.tx_hash,
                raw=signed.raw,
                nonce=signed.nonce,
                max_fee_per_gas=signed.max_fee_per_gas,
                max_priority_fee_per_gas=signed.max_priority_fee_per_gas,
                created_at=self.clock(),
            )
        )

    def mark_sent(self, conn: Connection, anchor_id: int, tx_hash: bytes, block: int) -> None:
        """Record the block at which an attempt was (last) sent: "stuck" counts from there."""
        conn.execute(
            update(attempts_t)
            .where(attempts_t.c.tx_hash == tx_hash, attempts_t.c.anchor_id == anchor_id)
            .values(sent_block=block)
        )

    # -- the anchoring key's nonce ----------------------------------------------------------

    def take_nonce(self, conn: Connection, from_chain: Callable[[], int]) -> int:
        """Nonces come from the database, gapless (THREATS 26), seeded from the chain
        (``from_chain``: its pending nonce) when none is stored."""
        row = conn.execute(select(state_t.c.next_nonce).where(state_t.c.id == 1)).first()
        if row is None or row.next_nonce is None:
            nonce = from_chain()
            if row is None:
                conn.execute(
                    insert(state_t).values(id=1, next_nonce=nonce + 1, heartbeat=0, failures=0)
                )
            else:
                conn.execute(update(state_t).values(next_nonce=nonce + 1))
            return nonce
        conn.execute(update(state_t).values(next_nonce=int(row.next_nonce) + 1))
        return int(row.next_nonce)

    def set_next_nonce(self, conn: Connection, nonce: int | None) -> None:
        """Store the next nonce to use (None: re-seed it from the chain on the next signing)."""
        conn.execute(update(state_t).values(next_nonce=nonce))


__all__ = ["Anchor", "AnchorStore", "Attempt", "anchors_t", "attempts_t", "events_t", "state_t"]
