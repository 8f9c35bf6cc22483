"""The anchoring worker: a persisted state machine, never a loop of hope (DESIGN.md).

    sealed -> signed -> broadcast -> mined -> final        (and reorged, reverted, fatal)

Each ``step`` makes at most one transition (``anchoring.states`` lists the allowed ones), and
commits it before the side effect that follows it: the head is sealed, then the raw
transaction is signed and stored with its nonce, then it is broadcast, then its receipt is
verified. A crash anywhere resumes from the stored state: a stored raw transaction is re-sent
as is ("already known" and "nonce too low" mean "look up the receipt", never "sign again"),
so no head is lost and none is anchored twice. One anchor is in flight at a time; its
consistency proof starts at the last mined head.

The worker's other duties live beside it: ``replacement`` (a transaction without a receipt),
``reconcile`` (lining up with the chain), ``health`` (heartbeat and alerts), ``loop`` (the
lease and the back-off), ``store`` (its tables).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, func, select

from anchoring import health, reconcile, replacement
from anchoring.chain import Chain, SignedAnchor
from anchoring.classify import SendVerdict
from anchoring.errors import ChainUnavailable, ReceiptMismatch, TransactionRejected
from anchoring.policy import AnchorPolicy
from anchoring.states import AnchorState
from anchoring.store import Anchor, AnchorStore, Attempt
from registry import checkpoints, log
from registry.db import read_transaction, write_transaction
from registry.service import Registry
from registry.treehead import TreeHead

logger = logging.getLogger("tracemark.anchoring")

#: Tests set this to a step boundary ("sealed", "signed", "sent", "mined") to have the worker
#: SIGKILL itself right there, as a crash would.
FAULT_POINT_ENV = "TRACEMARK_FAULT_POINT"


def latest_published_head(conn: Connection) -> TreeHead | None:
    """The newest head whose checkpoint is published: with a witness policy, one the quorum
    of witnesses cosigned (``anchoring.witnessing``); without one, every head as signed. A
    head still waiting for its witnesses, or refused by them, is never anchored."""
    size = checkpoints.latest_published_size(conn)
    return log.tree_head_at(conn, size) if size else None


def _unfenced(conn: Connection) -> None:
    """The fence of a worker run on its own (tests, ``tracemark anchor --now``)."""


def _fault(point: str) -> None:
    if os.environ.get(FAULT_POINT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


class AnchorWorker:
    """Moves the registry's signed tree heads onto the chain, one transition per ``step``."""

    def __init__(
        self,
        registry: Registry,
        chain: Chain,
        account: LocalAccount,
        policy: AnchorPolicy | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.registry = registry
        self.chain = chain
        self.account = account
        self.policy = policy or AnchorPolicy()
        self.clock = clock or registry.clock
        self.store = AnchorStore(self.clock)
        #: Run first in the sealing and signing transactions (``registry.lease.Lease.fence``):
        #: raises ``LeaseLost`` when another process holds the anchoring role now.
        self.fence: Callable[[Connection], None] = _unfenced

    # -- one transition -------------------------------------------------------------------------

    def step(self) -> str | None:
        """Make at most one transition; returns what happened (None: nothing to do).

        A chain that is down changes nothing (THREATS 30): the error propagates for the
        caller's back-off, and the stored state stays as it was.
        """
        with read_transaction(self.registry.engine) as conn:
            anchor = self.store.in_flight(conn)
        if anchor is None:
            return reconcile.watch_final(self) or self._seal()
        handler = {
            AnchorState.SEALED: self._sign,
            AnchorState.SIGNED: self._broadcast,
            AnchorState.BROADCAST: self._await_receipt,
            AnchorState.MINED: self._await_finality,
        }[anchor.state]
        return handler(anchor)

    def run_until_idle(self, max_steps: int = 100) -> list[str]:
        """Step until nothing is left to do (tests, ``tracemark anchor --now``)."""
        done = []
        for _ in range(max_steps):
            what = self.step()
            if what is None:
                break
            done.append(what)
        return done

    def reconcile(self) -> list[str]:
        """Line the database up with the chain at start (``anchoring.reconcile``)."""
        return reconcile.reconcile(self)

    def beat(self) -> None:
        """Record that the worker is alive, with its current alerts (``/readyz`` reads both):
        once per loop."""
        health.beat(self)

    def alerts(self) -> list[str]:
        """What a user must hear about now (``anchoring.health``)."""
        return health.alerts(self)

    def note_error(self, detail: str, anchor: Anchor) -> None:
        """Say why anchoring waits, on the anchor's row (visible in ``status``) and in the log."""
        logger.warning("anchoring paused: %s", detail)
        with write_transaction(self.registry.engine) as conn:
            self.store.set_error(conn, anchor.id, detail)

    # -- sealed ---------------------------------------------------------------------------------

    def _seal(self) -> str | None:
        """Seal the latest published head if enough entries or time have piled up."""
        with write_transaction(self.registry.engine) as conn:
            self.fence(conn)
            head = latest_published_head(conn)
            anchored = self.store.anchored_size(conn)
            if head is None or head.tree_size <= anchored:
                return None
            waiting_since = conn.execute(
                select(func.min(log.heads_t.c.timestamp)).where(log.heads_t.c.tree_size > anchored)
            ).scalar_one()
            now = self.clock()
            due = (
                head.tree_size - anchored >= self.policy.max_entries
                or now - int(waiting_since) >= self.policy.max_age_seconds
            )
            if not due:
                return None
            self.store.add(
                conn,
                tree_size=head.tree_size,
                root=head.root,
                previous_size=anchored,
                state=AnchorState.SEALED,
                detail=f"head {head.tree_size}",
            )
        logger.info("anchor of head %s: sealed (extends %s)", head.tree_size, anchored)
        _fault("sealed")
        return f"sealed head {head.tree_size}"

    # -- sealed -> signed ---------------------------------------------------------------------

    def _sign(self, anchor: Anchor) -> str | None:
        anchor = self._reseal(anchor)
        size, previous = anchor.tree_size, anchor.previous_size
        proof = self.registry.consistency_proof(previous, size) if previous else []
        # The contract must be where we think it is, or the proof would not verify.
        on_chain, _ = self.chain.last_anchored()
        if on_chain != previous:
            raise ReceiptMismatch(
                f"the contract's last head is {on_chain}, the database's is {previous}"
            )
        self.chain.simulate_anchor(self.account.address, size, anchor.root, proof)
        base_fee = self.chain.base_fee()
        if base_fee + self.policy.priority_fee_per_gas > self.policy.max_fee_per_gas:
            # THREATS 23/34: above the cap nothing is signed, no nonce is spent, the head
            # stays sealed, and the next anchor covers everything that piles up meanwhile.
            detail = (
                f"max fee reached: the base fee is {base_fee} wei, the cap "
                f"{self.policy.max_fee_per_gas}; waiting for fees to drop"
            )
            if anchor.error != detail:
                self.note_error(detail, anchor)
            return None  # nothing moved: the caller waits its interval
        max_fee = min(self.policy.max_fee_per_gas, 2 * base_fee + self.policy.priority_fee_per_gas)
        with write_transaction(self.registry.engine) as conn:
            self.fence(conn)
            nonce = self.store.take_nonce(
                conn, lambda: self.chain.nonce(self.account.address, "pending")
            )
            signed = self.chain.sign_anchor(
                self.account,
                size=size,
                root=anchor.root,
                proof=proof,
                nonce=nonce,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=min(self.policy.priority_fee_per_gas, max_fee),
                gas=self.policy.gas_limit,
            )
            # NOTE: stored before it is broadcast: after a crash the same bytes go out again.
            self.store.add_attempt(conn, anchor.id, signed)
            self.store.move(conn, anchor, AnchorState.SIGNED, f"nonce {nonce}", nonce=nonce)
        _fault("signed")
        return f"signed head {size} at nonce {nonce}"

    def _reseal(self, anchor: Anchor) -> Anchor:
        """A sealed head that waited (fee cap, node down) grows to the latest signed head
        before it is signed: nothing was signed or spent yet, and one transaction then covers
        every entry that piled up meanwhile (THREATS 34)."""
        with write_transaction(self.registry.engine) as conn:
            self.fence(conn)
            head = latest_published_head(conn)
            if head is None or head.tree_size <= anchor.tree_size:
                return anchor
            self.store.reseal(conn, anchor, head.tree_size, head.root)
        logger.info("anchor of head %s: resealed at head %s", anchor.tree_size, head.tree_size)
        return dataclasses.replace(anchor, tree_size=head.tree_size, root=head.root)

    # -- signed -> broadcast ------------------------------------------------------------------

    def _broadcast(self, anchor: Anchor) -> str | None:
        with read_transaction(self.registry.engine) as conn:
            attempt = self.store.attempts(conn, anchor.id)[-1]
        try:
            self.chain.send_raw(attempt.raw)
            _fault("sent")  # sent, not yet recorded: the case THREATS 27 is about
            detail = "sent"
        except TransactionRejected as exc:
            if exc.verdict in (SendVerdict.ALREADY_KNOWN, SendVerdict.NONCE_USED):
                # Sent before a crash, or already mined: the receipt decides (THREATS 27).
                detail = f"already with the node ({exc.verdict})"
            elif exc.verdict == SendVerdict.FATAL:
                with write_transaction(self.registry.engine) as conn:
                    self.store.move(conn, anchor, AnchorState.FATAL, exc.detail)
                return f"head {anchor.tree_size}: fatal: {exc.detail}"
            elif exc.verdict == SendVerdict.UNDERPRICED:
                # Fees rose since signing: sign again at the same nonce (the next step
                # broadcasts it), or wait at the cap (THREATS 23).
                repriced = replacement.reprice(self, anchor, attempt)
                return None if repriced is None else f"repriced head {anchor.tree_size}"
            else:
                # Unfunded (or a nonce gap): stay signed, nothing lost; the caller backs off.
                self.note_error(replacement.why_waiting(exc), anchor)
                raise
        sent_block = self.chain.block_number()
        with write_transaction(self.registry.engine) as conn:
            self.store.mark_sent(conn, anchor.id, attempt.tx_hash, sent_block)
            self.store.move(conn, anchor, AnchorState.BROADCAST, detail)
        return f"broadcast head {anchor.tree_size} ({detail})"

    # -- broadcast -> mined -------------------------------------------------------------------

    def _await_receipt(self, anchor: Anchor) -> str | None:
        with read_transaction(self.registry.engine) as conn:
            attempts = self.store.attempts(conn, anchor.id)
        for attempt in attempts:
            receipt = self.chain.receipt(attempt.tx_hash)
            if receipt is None:
                continue
            try:
                mined = self.chain.verify_receipt(receipt, _signed_anchor(anchor, attempt))
            except ReceiptMismatch as exc:
                # THREATS 29/45: never an anchor. Alarm; the head is sealed again by the next
                # step (a new anchor row: this one stays on record with its reason).
                state = AnchorState.REVERTED if receipt.get("status") == 0 else AnchorState.FATAL
                logger.error("ALARM anchor of head %s %s: %s", anchor.tree_size, state, exc.detail)
                with write_transaction(self.registry.engine) as conn:
                    self.store.move(conn, anchor, state, exc.detail, error=exc.detail)
                return f"head {anchor.tree_size}: {exc.detail}"
            with write_transaction(self.registry.engine) as conn:
                self.store.move(
                    conn,
                    anchor,
                    AnchorState.MINED,
                    f"block {mined.block_number}",
                    tx_hash=mined.tx_hash,
                    block_number=mined.block_number,
                    block_hash=mined.block_hash,
                )
            _fault("mined")
            return f"mined head {anchor.tree_size} in block {mined.block_number}"
        return replacement.resend_or_replace(self, anchor)

    # -- mined -> final -----------------------------------------------------------------------

    def _await_finality(self, anchor: Anchor) -> str | None:
        block_number = anchor.block_number
        # Both are stored with the move to mined.
        assert block_number is not None and anchor.tx_hash is not None
        receipt = self.chain.receipt(anchor.tx_hash)
        if receipt is None or bytes(receipt["blockHash"]) != anchor.block_hash:
            # The block that held it is gone (a reorg): look for the receipt again.
            with write_transaction(self.registry.engine) as conn:
                self.store.move(conn, anchor, AnchorState.BROADCAST, "reorged out of its block")
            return f"head {anchor.tree_size} reorged out of block {block_number}"
        if self.policy.use_finalized_tag:
            finalized = self.chain.finalized_block()
            if finalized < block_number:
                return None
            detail = f"block {block_number} finalized (finalized head {finalized})"
        else:
            latest = self.chain.block_number()
            if latest - block_number + 1 < self.policy.confirmations:
                return None
            detail = f"{latest - block_number + 1} confirmations"
        with write_transaction(self.registry.engine) as conn:
            self.store.move(conn, anchor, AnchorState.FINAL, detail)
        return f"final head {anchor.tree_size}"


def _signed_anchor(anchor: Anchor, attempt: Attempt) -> SignedAnchor:
    """The transaction an attempt stored, as the receipt check wants it."""
    return SignedAnchor(
        raw=attempt.raw,
        tx_hash=attempt.tx_hash,
        nonce=attempt.nonce,
        size=anchor.tree_size,
        root=anchor.root,
        max_fee_per_gas=attempt.max_fee_per_gas,
        max_priority_fee_per_gas=attempt.max_priority_fee_per_gas,
    )


__all__ = ["FAULT_POINT_ENV", "AnchorPolicy", "AnchorWorker", "ChainUnavailable"]
