"""An anchor's states, their named sets and the transitions the worker may make (DESIGN.md).

    sealed -> signed -> broadcast -> mined -> final        (and reorged, reverted, fatal)

The values are the strings stored in ``anchors.state`` and ``anchor_events`` and shown on the
wire (``status``, bundles, traces): they never change. Every state change goes through
``check_transition``, so the table below is what the worker does, not what it meant to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from anchoring.errors import AnchoringError


class AnchorState(StrEnum):
    """Where one tree head is on its way to the chain."""

    #: The head is chosen (size, root and the anchored size it extends); nothing signed yet.
    SEALED = "sealed"
    #: Its transaction is signed and stored with its nonce, not yet handed to a node.
    SIGNED = "signed"
    #: A node has the transaction; waiting for a receipt.
    BROADCAST = "broadcast"
    #: A receipt proves the head on chain; waiting for confirmations (or the finalized tag).
    MINED = "mined"
    #: Confirmed: the anchor a verifier may rely on.
    FINAL = "final"
    #: Its block left the chain (a reorg, a chain that lost its state, or superseded by a head
    #: adopted from the chain): on record, and the head is anchored again.
    REORGED = "reorged"
    #: Mined with status 0: never an anchor (THREATS 29).
    REVERTED = "reverted"
    #: Refused for good (by the node, or a receipt that proves another head): never an anchor.
    FATAL = "fatal"


NOT_YET_FINAL: Final = frozenset(
    {AnchorState.SEALED, AnchorState.SIGNED, AnchorState.BROADCAST, AnchorState.MINED}
)
"""The anchor the worker is still moving (one at a time): it may yet become final."""

NOT_YET_MINED: Final = frozenset({AnchorState.SEALED, AnchorState.SIGNED, AnchorState.BROADCAST})
"""On its way to the chain, no transaction of it mined yet: shown with its state until one is."""

ANCHORED: Final = frozenset({AnchorState.MINED, AnchorState.FINAL})
"""Its transaction is on chain: what a new anchor extends, and the only anchors a verify
answer or a bundle points to."""

ENDED: Final = frozenset({AnchorState.REORGED, AnchorState.REVERTED, AnchorState.FATAL})
"""Never (or no longer) an anchor: kept on record with its reason; the head is sealed anew."""

NO_STATE: Final = "-"
"""The ``from_state`` of an anchor's first event: it had no state before it was recorded."""

TRANSITIONS: Final[Mapping[AnchorState | None, frozenset[AnchorState]]] = {
    # A new row: a head sealed by the worker, or one adopted from the chain after a restore
    # (THREATS 50), which the chain already holds.
    None: frozenset({AnchorState.SEALED, AnchorState.FINAL}),
    # Each in-flight state may be superseded by a head adopted from the chain (``reorged``).
    AnchorState.SEALED: frozenset({AnchorState.SIGNED, AnchorState.REORGED}),
    # The node refuses it for good: fatal.
    AnchorState.SIGNED: frozenset({AnchorState.BROADCAST, AnchorState.FATAL, AnchorState.REORGED}),
    AnchorState.BROADCAST: frozenset(
        {
            AnchorState.MINED,
            # A receipt that proves nothing (THREATS 29/45).
            AnchorState.REVERTED,
            AnchorState.FATAL,
            # A foreign transaction took our nonce (THREATS 32): sealed again, fresh nonce.
            AnchorState.SEALED,
            AnchorState.REORGED,
        }
    ),
    # Reorged out of its block before final: back to waiting for a receipt.
    AnchorState.MINED: frozenset({AnchorState.FINAL, AnchorState.BROADCAST, AnchorState.REORGED}),
    # Finality violated (THREATS 21) or the chain no longer holds it (THREATS 50).
    AnchorState.FINAL: frozenset({AnchorState.REORGED}),
    AnchorState.REORGED: frozenset(),
    AnchorState.REVERTED: frozenset(),
    AnchorState.FATAL: frozenset(),
}
"""Every state change the worker makes (``None``: the row is new). A note on the trail that
changes no state (resealed, repriced, a nonce gap) is an event, not a transition."""


class IllegalTransition(AnchoringError):
    """The worker tried a state change the table does not allow: a bug, nothing was stored."""

    code = "illegal-anchor-transition"
    # NOTE: an AnchoringError (500): the worker's loop logs it and retries; nothing moved.
    diagnostics = "Report it with the worker's log: the anchor stayed in the state it was in."


def check_transition(from_state: AnchorState | None, to_state: AnchorState) -> None:
    """Raise ``IllegalTransition`` unless ``from_state -> to_state`` is in ``TRANSITIONS``."""
    if to_state not in TRANSITIONS[from_state]:
        before = NO_STATE if from_state is None else from_state.value
        raise IllegalTransition(f"an anchor may not go from {before} to {to_state.value}")


__all__ = [
    "ANCHORED",
    "ENDED",
    "NOT_YET_FINAL",
    "NOT_YET_MINED",
    "NO_STATE",
    "TRANSITIONS",
    "AnchorState",
    "IllegalTransition",
    "check_transition",
]
