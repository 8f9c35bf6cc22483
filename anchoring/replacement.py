"""A broadcast anchor without a receipt: re-sent as is, replaced at its nonce, or re-anchored.

A dropped transaction goes out again with the same bytes; one stuck for some blocks or
evicted for its fees is replaced at the same nonce with higher fees (THREATS 22), up to the
cap (THREATS 23); a nonce taken by a foreign transaction sends the head back to sealed
(THREATS 32). Every replacement is stored before it is sent, and old hashes stay on file.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from anchoring.chain import SignedAnchor
from anchoring.classify import SendVerdict
from anchoring.errors import TransactionRejected
from anchoring.states import AnchorState
from anchoring.store import Anchor, Attempt
from registry.db import read_transaction, write_transaction

if TYPE_CHECKING:
    from anchoring.worker import AnchorWorker

logger = logging.getLogger("tracemark.anchoring")


def resend_or_replace(worker: AnchorWorker, anchor: Anchor) -> str | None:
    """No receipt yet for any attempt. A transaction the node forgot (dropped) goes out
    again, same bytes; one stuck for ``stuck_blocks`` is replaced."""
    with read_transaction(worker.registry.engine) as conn:
        latest = worker.store.attempts(conn, anchor.id)[-1]
    rebroadcast = None
    if not worker.chain.transaction_known(latest.tx_hash):
        try:
            worker.chain.send_raw(latest.raw)
        except TransactionRejected as exc:
            if exc.verdict == SendVerdict.UNDERPRICED:
                # Evicted because fees rose past it: replace at the same nonce.
                return replace(worker, anchor, latest)
            if exc.verdict == SendVerdict.NONCE_USED:
                return _nonce_taken(worker, anchor, latest.nonce)
            if exc.verdict != SendVerdict.ALREADY_KNOWN:
                worker.note_error(why_waiting(exc), anchor)
                raise
        rebroadcast = f"rebroadcast head {anchor.tree_size}"
    # Stuck (dropped or not) for K blocks: replace it, or at the fee cap wait (None: the
    # caller pauses; a node that keeps evicting it is not re-sent in a tight loop).
    sent_block = latest.sent_block
    if (
        sent_block is not None
        and worker.chain.block_number() - sent_block >= worker.policy.stuck_blocks
    ):
        return replace(worker, anchor, latest)
    return rebroadcast


def _nonce_taken(worker: AnchorWorker, anchor: Anchor, nonce: int) -> str | None:
    """Our nonce is used but none of our transactions has a receipt: a foreign transaction
    signed with our key took it (THREATS 32). Alarm, and anchor again at a fresh nonce."""
    with read_transaction(worker.registry.engine) as conn:
        attempts = worker.store.attempts(conn, anchor.id)
    if any(worker.chain.receipt(a.tx_hash) for a in attempts):
        return None  # ours was mined meanwhile: the next step records it
    detail = f"nonce {nonce} was used by a foreign transaction from the anchoring key"
    logger.error("ALARM anchor of head %s: %s; anchoring again", anchor.tree_size, detail)
    with write_transaction(worker.registry.engine) as conn:
        worker.fence(conn)
        worker.store.move(conn, anchor, AnchorState.SEALED, detail, nonce=None, error=detail)
        worker.store.set_next_nonce(conn, None)  # re-seed from the chain
    return f"head {anchor.tree_size}: {detail}"


def replace(worker: AnchorWorker, anchor: Anchor, stuck: Attempt) -> str | None:
    """Replace a stuck transaction at the same nonce with higher fees (THREATS 22); the
    old hashes stay on file, since any of them may still be the one mined.

    A nonce above the account's (a gap: THREATS 26) can never be mined: the lowest free
    nonce is filled instead."""
    chain_nonce = worker.chain.nonce(worker.account.address, "latest")
    nonce = stuck.nonce
    if nonce > chain_nonce:
        logger.error(
            "anchor of head %s: nonce %s leaves a gap at %s; filling it",
            anchor.tree_size,
            nonce,
            chain_nonce,
        )
        with write_transaction(worker.registry.engine) as conn:
            worker.fence(conn)
            worker.store.set_next_nonce(conn, chain_nonce + 1)
            worker.store.event(
                conn,
                anchor.id,
                AnchorState.BROADCAST,
                AnchorState.BROADCAST,
                f"nonce gap: {nonce} -> {chain_nonce}",
            )
        nonce = chain_nonce
    signed = reprice(worker, anchor, dataclasses.replace(stuck, nonce=nonce))
    if signed is None:
        return None
    try:
        worker.chain.send_raw(signed.raw)
    except TransactionRejected as exc:
        if exc.verdict not in (SendVerdict.ALREADY_KNOWN, SendVerdict.NONCE_USED):
            raise
    sent_block = worker.chain.block_number()
    with write_transaction(worker.registry.engine) as conn:
        worker.fence(conn)
        worker.store.mark_sent(conn, anchor.id, signed.tx_hash, sent_block)
    return f"replaced head {anchor.tree_size} at max fee {signed.max_fee_per_gas}"


def reprice(worker: AnchorWorker, anchor: Anchor, previous: Attempt) -> SignedAnchor | None:
    """Sign and store a new attempt at the same nonce with fees raised enough to replace
    the previous one and to be included now; None at the fee cap (nothing signed)."""
    policy = worker.policy
    base_fee = worker.chain.base_fee()
    # Nodes want both fees raised by at least 10% to replace; and enough for the chain now.
    tip = max(previous.max_priority_fee_per_gas * 9 // 8 + 1, policy.priority_fee_per_gas)
    max_fee = max(previous.max_fee_per_gas * 9 // 8 + 1, 2 * base_fee + tip)
    if max_fee > policy.max_fee_per_gas:
        detail = (
            f"max fee reached: the anchor needs {max_fee} wei per gas now, the cap is "
            f"{policy.max_fee_per_gas}; waiting for fees to drop"
        )
        if anchor.error != detail:
            worker.note_error(detail, anchor)
        return None
    size, previous_size = anchor.tree_size, anchor.previous_size
    proof = worker.registry.consistency_proof(previous_size, size) if previous_size else []
    with write_transaction(worker.registry.engine) as conn:
        worker.fence(conn)
        signed = worker.chain.sign_anchor(
            worker.account,
            size=size,
            root=anchor.root,
            proof=proof,
            nonce=previous.nonce,
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=tip,
            gas=policy.gas_limit,
        )
        worker.store.add_attempt(conn, anchor.id, signed)
        worker.store.event(conn, anchor.id, anchor.state, anchor.state, f"repriced to {max_fee}")
        # Whatever made it wait (the cap) is over.
        worker.store.set_error(conn, anchor.id, None)
    logger.info("anchor of head %s: repriced to max fee %s wei", size, max_fee)
    return signed


def why_waiting(exc: TransactionRejected) -> str:
    """What the anchor's row says while a refusal that loses nothing makes it wait."""
    if exc.verdict == SendVerdict.INSUFFICIENT_FUNDS:
        return f"anchoring key unfunded: {exc.detail}; waiting for funds, nothing is lost"
    return exc.detail


__all__ = ["replace", "reprice", "resend_or_replace", "why_waiting"]
