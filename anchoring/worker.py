"""The anchoring worker: a persisted state machine, never a loop of hope (DESIGN.md).

    sealed -> signed -> broadcast -> mined -> final        (and reverted, fatal)

Each ``step`` makes at most one transition, and commits it before the side effect that
follows it: the head is sealed, then the raw transaction is signed and stored with its nonce,
then it is broadcast, then its receipt is verified. A crash anywhere resumes from the stored
state: a stored raw transaction is re-sent as is ("already known" and "nonce too low" mean
"look up the receipt", never "sign again"), so no head is lost and none is anchored twice.
One anchor is in flight at a time; its consistency proof starts at the last mined head.

Not yet here (issue 3, next steps): reorg handling beyond the confirmation wait, fee bumps
of stuck transactions, foreign use of our nonce, and the PostgreSQL advisory lock.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, func, insert, select, update

from anchoring.chain import Chain, SignedAnchor
from anchoring.classify import SendVerdict
from anchoring.errors import ChainMismatch, ChainUnavailable, ReceiptMismatch, TransactionRejected
from anchoring.lease import AnchorLease
from anchoring.models import AnchorAttempt, AnchorerState, AnchorEvent, AnchorRecord
from registry import log
from registry.db import read_transaction, write_transaction
from registry.service import Registry

logger = logging.getLogger("tracemark.anchoring")

anchors_t: Table = AnchorRecord.__table__  # type: ignore[attr-defined]
attempts_t: Table = AnchorAttempt.__table__  # type: ignore[attr-defined]
events_t: Table = AnchorEvent.__table__  # type: ignore[attr-defined]
state_t: Table = AnchorerState.__table__  # type: ignore[attr-defined]

IN_FLIGHT = ("sealed", "signed", "broadcast", "mined")

#: Tests set this to a step boundary ("sealed", "signed", "sent", "mined") to have the worker
#: SIGKILL itself right there, as a crash would.
FAULT_POINT_ENV = "TRACEMARK_FAULT_POINT"


def _fault(point: str) -> None:
    if os.environ.get(FAULT_POINT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class AnchorPolicy:
    """When to anchor and what to pay (defaults that make a demo feel alive)."""

    #: Seal a head once this many entries wait ...
    max_entries: int = 1_000
    #: ... or once the oldest unanchored head is this old (seconds).
    max_age_seconds: int = 5
    #: A mined anchor is final after this many confirmations ...
    confirmations: int = 3
    #: ... or, where the network's ``finalized`` tag is meaningful, once that block is
    #: finalized (on the dev chain it lags 64 blocks: there, confirmations are the rule).
    use_finalized_tag: bool = False
    #: Fee cap (wei per gas): at the cap the worker stops and says so; nothing is lost.
    max_fee_per_gas: int = 200 * 10**9
    priority_fee_per_gas: int = 10**9
    gas_limit: int = 300_000
    #: A broadcast anchor with no receipt after this many blocks is replaced at the same
    #: nonce with higher fees (THREATS 22), up to ``max_fee_per_gas``.
    stuck_blocks: int = 5
    #: The time-to-anchor objective (seconds): a signed head still without a mined anchor
    #: after this long raises the "time-to-anchor exceeded" alert (THREATS 34).
    time_to_anchor_seconds: int = 600


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

    # -- one transition -------------------------------------------------------------------------

    def step(self) -> str | None:
        """Make at most one transition; returns what happened (None: nothing to do).

        A chain that is down changes nothing (THREATS 30): the error propagates for the
        caller's back-off, and the stored state stays as it was.
        """
        anchor = self._in_flight()
        if anchor is None:
            return self._watch_final() or self._seal()
        handler = {
            "sealed": self._sign,
            "signed": self._broadcast,
            "broadcast": self._await_receipt,
            "mined": self._await_finality,
        }[anchor["state"]]
        return handler(anchor)

    def beat(self) -> None:
        """Record that the worker is alive, with its current alerts (``/readyz`` reads both):
        once per loop."""
        alerts = self.alerts()
        text = "\n".join(alerts) or None
        with write_transaction(self.registry.engine) as conn:
            before = conn.execute(select(state_t.c.last_error).where(state_t.c.id == 1)).first()
            values = {"heartbeat": self.clock(), "last_error": text}
            if before is None:
                conn.execute(insert(state_t).values(id=1, failures=0, **values))
            else:
                conn.execute(update(state_t).values(**values))
        if text != (before.last_error if before is not None else None):
            for alert in alerts:
                logger.error("ALERT anchoring: %s", alert)

    def alerts(self) -> list[str]:
        """What a user must hear about (THREATS 23, 29, 33, 34): why the anchor in flight
        waits (an unfunded key, the fee cap), an anchor that reverted or failed with no final
        anchor since, and a head that has waited longer than the time-to-anchor objective."""
        alerts = []
        with read_transaction(self.registry.engine) as conn:
            waiting = conn.execute(
                select(anchors_t.c.tree_size, anchors_t.c.error).where(
                    anchors_t.c.state.in_(IN_FLIGHT), anchors_t.c.error.is_not(None)
                )
            ).all()
            alerts += [f"anchor of head {size}: {error}" for size, error in waiting]
            last_final = conn.execute(
                select(func.max(anchors_t.c.id)).where(anchors_t.c.state == "final")
            ).scalar()
            failed = conn.execute(
                select(anchors_t.c.tree_size, anchors_t.c.state, anchors_t.c.error)
                .where(
                    anchors_t.c.id > (last_final or 0),
                    anchors_t.c.state.in_(("reverted", "fatal", "reorged")),
                    anchors_t.c.error.is_not(None),
                )
                .order_by(anchors_t.c.id)
            ).all()
            alerts += [f"anchor of head {size} {state}: {error}" for size, state, error in failed]
            anchored = self._last_mined_size(conn)
            waiting_since = conn.execute(
                select(func.min(log.heads_t.c.timestamp)).where(log.heads_t.c.tree_size > anchored)
            ).scalar()
        if waiting_since is not None:
            waited = self.clock() - int(waiting_since)
            if waited > self.policy.time_to_anchor_seconds:
                alerts.append(
                    f"time-to-anchor exceeded: a signed head has waited {waited} s for its "
                    f"anchor (objective {self.policy.time_to_anchor_seconds} s)"
                )
        return alerts

    def run_until_idle(self, max_steps: int = 100) -> list[str]:
        """Step until nothing is left to do (tests, ``tracemark anchor --now``)."""
        done = []
        for _ in range(max_steps):
            what = self.step()
            if what is None:
                break
            done.append(what)
        return done

    # -- reconciling with the chain -------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Line the database up with the chain at start (THREATS 50, and a dev chain that
        came back shorter than the database remembers): anchors the chain no longer holds are
        marked reorged (recorded, never silently rewritten) and their heads anchored anew; with
        nothing in flight, the nonce is re-seeded from the chain."""
        on_chain, on_chain_root = self.chain.last_anchored()
        notes = []
        with write_transaction(self.registry.engine) as conn:
            ours_in_flight = conn.execute(
                select(anchors_t.c.id).where(
                    anchors_t.c.state.in_(IN_FLIGHT),
                    anchors_t.c.tree_size == on_chain,
                    anchors_t.c.root == on_chain_root,
                )
            ).first()
            # A head on chain that we have in flight is our own transaction, mined while we
            # were down: the state machine finds its receipt. Anything else is adopted.
            if on_chain > self._last_mined_size(conn) and ours_in_flight is None:
                notes.append(self._adopt(conn, on_chain, on_chain_root))
            lost = conn.execute(
                select(anchors_t).where(
                    anchors_t.c.state.in_(("mined", "final")), anchors_t.c.tree_size > on_chain
                )
            ).all()
            for row in lost:
                anchor = dict(row._mapping)
                self._move(conn, anchor, "reorged", f"the chain's last head is {on_chain}")
                notes.append(f"head {anchor['tree_size']} is no longer on chain; anchoring again")
            in_flight = conn.execute(
                select(func.count()).where(anchors_t.c.state.in_(IN_FLIGHT))
            ).scalar_one()
            if not in_flight:
                conn.execute(update(state_t).values(next_nonce=None))
        for note in notes:
            logger.error("anchoring: %s", note)
        return notes

    def _adopt(self, conn: Connection, size: int, root: bytes) -> str:
        """The chain holds a head the database does not remember (a restored backup, THREATS
        50). If the log has that head, the anchor is adopted (recorded, not re-sent); if not,
        nothing is anchored over it: the log must be restored first."""
        if log.tree_size(conn) < size or log.root_at(conn, size) != root:
            raise ChainMismatch(
                f"the chain anchored head {size} (root 0x{root.hex()}) that this database does "
                "not hold: restore the log from a newer backup; nothing will be anchored over it"
            )
        # Anything this database still had in flight below it is superseded.
        for row in conn.execute(select(anchors_t).where(anchors_t.c.state.in_(IN_FLIGHT))).all():
            self._move(conn, dict(row._mapping), "reorged", f"superseded by head {size} on chain")
        now = self.clock()
        anchor_id = conn.execute(
            insert(anchors_t)
            .values(
                tree_size=size,
                root=root,
                previous_size=self._last_mined_size(conn),
                state="final",
                created_at=now,
                updated_at=now,
                error="adopted from the chain after a restore",
            )
            .returning(anchors_t.c.id)
        ).scalar_one()
        self._event(conn, anchor_id, "-", "final", "adopted from the chain")
        return f"head {size} was anchored on chain but unknown here: adopted"

    # -- sealed ---------------------------------------------------------------------------------

    def _seal(self) -> str | None:
        """Seal the latest signed head if enough entries or time have piled up."""
        with write_transaction(self.registry.engine) as conn:
            head = log.latest_tree_head(conn)
            anchored = self._last_mined_size(conn)
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
            anchor_id = conn.execute(
                insert(anchors_t)
                .values(
                    tree_size=head.tree_size,
                    root=head.root,
                    previous_size=anchored,
                    state="sealed",
                    created_at=now,
                    updated_at=now,
                )
                .returning(anchors_t.c.id)
            ).scalar_one()
            self._event(conn, anchor_id, "-", "sealed", f"head {head.tree_size}")
        logger.info("anchor of head %s: sealed (extends %s)", head.tree_size, anchored)
        _fault("sealed")
        return f"sealed head {head.tree_size}"

    # -- sealed -> signed ---------------------------------------------------------------------

    def _sign(self, anchor: dict[str, Any]) -> str | None:
        anchor = self._reseal(anchor)
        size, previous = int(anchor["tree_size"]), int(anchor["previous_size"])
        proof = self.registry.consistency_proof(previous, size) if previous else []
        # The contract must be where we think it is, or the proof would not verify.
        on_chain, _ = self.chain.last_anchored()
        if on_chain != previous:
            raise ReceiptMismatch(
                f"the contract's last head is {on_chain}, the database's is {previous}"
            )
        self.chain.simulate_anchor(self.account.address, size, anchor["root"], proof)
        base_fee = self.chain.base_fee()
        if base_fee + self.policy.priority_fee_per_gas > self.policy.max_fee_per_gas:
            # THREATS 23/34: above the cap nothing is signed, no nonce is spent, the head
            # stays sealed, and the next anchor covers everything that piles up meanwhile.
            detail = (
                f"max fee reached: the base fee is {base_fee} wei, the cap "
                f"{self.policy.max_fee_per_gas}; waiting for fees to drop"
            )
            if anchor.get("error") != detail:
                self._note_error(detail, anchor)
            return None  # nothing moved: the caller waits its interval
        max_fee = min(self.policy.max_fee_per_gas, 2 * base_fee + self.policy.priority_fee_per_gas)
        with write_transaction(self.registry.engine) as conn:
            nonce = self._take_nonce(conn)
            signed = self.chain.sign_anchor(
                self.account,
                size=size,
                root=bytes(anchor["root"]),
                proof=proof,
                nonce=nonce,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=min(self.policy.priority_fee_per_gas, max_fee),
                gas=self.policy.gas_limit,
            )
            # NOTE: stored before it is broadcast: after a crash the same bytes go out again.
            self._store_attempt(conn, anchor["id"], signed)
            self._move(conn, anchor, "signed", f"nonce {nonce}", nonce=nonce)
        _fault("signed")
        return f"signed head {size} at nonce {nonce}"

    def _reseal(self, anchor: dict[str, Any]) -> dict[str, Any]:
        """A sealed head that waited (fee cap, node down) grows to the latest signed head
        before it is signed: nothing was signed or spent yet, and one transaction then covers
        every entry that piled up meanwhile (THREATS 34)."""
        with write_transaction(self.registry.engine) as conn:
            head = log.latest_tree_head(conn)
            if head is None or head.tree_size <= int(anchor["tree_size"]):
                return anchor
            conn.execute(
                update(anchors_t)
                .where(anchors_t.c.id == anchor["id"], anchors_t.c.state == "sealed")
                .values(tree_size=head.tree_size, root=head.root, updated_at=self.clock())
            )
            self._event(
                conn, anchor["id"], "sealed", "sealed", f"resealed at head {head.tree_size}"
            )
        logger.info("anchor of head %s: resealed at head %s", anchor["tree_size"], head.tree_size)
        return {**anchor, "tree_size": head.tree_size, "root": head.root}

    def _take_nonce(self, conn: Connection) -> int:
        """Nonces come from the database, gapless (THREATS 26), seeded once from the chain."""
        row = conn.execute(select(state_t.c.next_nonce).where(state_t.c.id == 1)).first()
        if row is None or row.next_nonce is None:
            nonce = self.chain.nonce(self.account.address, "pending")
            if row is None:
                conn.execute(
                    insert(state_t).values(id=1, next_nonce=nonce + 1, heartbeat=0, failures=0)
                )
            else:
                conn.execute(update(state_t).values(next_nonce=nonce + 1))
            return nonce
        conn.execute(update(state_t).values(next_nonce=int(row.next_nonce) + 1))
        return int(row.next_nonce)

    # -- signed -> broadcast ------------------------------------------------------------------

    def _broadcast(self, anchor: dict[str, Any]) -> str | None:
        attempt = self._latest_attempt(anchor["id"])
        try:
            self.chain.send_raw(bytes(attempt["raw"]))
            _fault("sent")  # sent, not yet recorded: the case THREATS 27 is about
            detail = "sent"
        except TransactionRejected as exc:
            if exc.verdict in (SendVerdict.ALREADY_KNOWN, SendVerdict.NONCE_USED):
                # Sent before a crash, or already mined: the receipt decides (THREATS 27).
                detail = f"already with the node ({exc.verdict})"
            elif exc.verdict == SendVerdict.FATAL:
                with write_transaction(self.registry.engine) as conn:
                    self._move(conn, anchor, "fatal", exc.detail)
                return f"head {anchor['tree_size']}: fatal: {exc.detail}"
            elif exc.verdict == SendVerdict.UNDERPRICED:
                # Fees rose since signing: sign again at the same nonce (the next step
                # broadcasts it), or wait at the cap (THREATS 23).
                repriced = self._reprice(anchor, attempt)
                return None if repriced is None else f"repriced head {anchor['tree_size']}"
            else:
                # Unfunded (or a nonce gap): stay signed, nothing lost; the caller backs off.
                self._note_error(_why_waiting(exc), anchor)
                raise
        sent_block = self.chain.block_number()
        with write_transaction(self.registry.engine) as conn:
            conn.execute(
                update(attempts_t)
                .where(attempts_t.c.id == attempt["id"])
                .values(sent_block=sent_block)
            )
            self._move(conn, anchor, "broadcast", detail)
        return f"broadcast head {anchor['tree_size']} ({detail})"

    # -- broadcast -> mined -------------------------------------------------------------------

    def _await_receipt(self, anchor: dict[str, Any]) -> str | None:
        for attempt in self._attempts(anchor["id"]):
            receipt = self.chain.receipt(bytes(attempt["tx_hash"]))
            if receipt is None:
                continue
            sealed = _sealed(anchor, attempt)
            try:
                mined = self.chain.verify_receipt(receipt, sealed)
            except ReceiptMismatch as exc:
                # THREATS 29/45: never an anchor. Alarm; the head is sealed again by the next
                # step (a new anchor row: this one stays on record with its reason).
                state = "reverted" if receipt.get("status") == 0 else "fatal"
                logger.error(
                    "ALARM anchor of head %s %s: %s", anchor["tree_size"], state, exc.detail
                )
                with write_transaction(self.registry.engine) as conn:
                    self._move(conn, anchor, state, exc.detail, error=exc.detail)
                return f"head {anchor['tree_size']}: {exc.detail}"
            with write_transaction(self.registry.engine) as conn:
                self._move(
                    conn,
                    anchor,
                    "mined",
                    f"block {mined.block_number}",
                    tx_hash=mined.tx_hash,
                    block_number=mined.block_number,
                    block_hash=mined.block_hash,
                )
            _fault("mined")
            return f"mined head {anchor['tree_size']} in block {mined.block_number}"
        # No receipt yet. A transaction the node forgot (dropped) goes out again, same bytes.
        latest = self._latest_attempt(anchor["id"])
        rebroadcast = None
        if not self.chain.transaction_known(bytes(latest["tx_hash"])):
            try:
                self.chain.send_raw(bytes(latest["raw"]))
            except TransactionRejected as exc:
                if exc.verdict == SendVerdict.UNDERPRICED:
                    # Evicted because fees rose past it: replace at the same nonce.
                    return self._replace(anchor, latest)
                if exc.verdict == SendVerdict.NONCE_USED:
                    return self._nonce_taken(anchor, int(latest["nonce"]))
                if exc.verdict != SendVerdict.ALREADY_KNOWN:
                    self._note_error(_why_waiting(exc), anchor)
                    raise
            rebroadcast = f"rebroadcast head {anchor['tree_size']}"
        # Stuck (dropped or not) for K blocks: replace it, or at the fee cap wait (None: the
        # caller pauses; a node that keeps evicting it is not re-sent in a tight loop).
        sent_block = latest["sent_block"]
        if (
            sent_block is not None
            and self.chain.block_number() - sent_block >= self.policy.stuck_blocks
        ):
            return self._replace(anchor, latest)
        return rebroadcast

    def _nonce_taken(self, anchor: dict[str, Any], nonce: int) -> str | None:
        """Our nonce is used but none of our transactions has a receipt: a foreign transaction
        signed with our key took it (THREATS 32). Alarm, and anchor again at a fresh nonce."""
        if any(self.chain.receipt(bytes(a["tx_hash"])) for a in self._attempts(anchor["id"])):
            return None  # ours was mined meanwhile: the next step records it
        detail = f"nonce {nonce} was used by a foreign transaction from the anchoring key"
        logger.error("ALARM anchor of head %s: %s; anchoring again", anchor["tree_size"], detail)
        with write_transaction(self.registry.engine) as conn:
            self._move(conn, anchor, "sealed", detail, nonce=None, error=detail)
            conn.execute(update(state_t).values(next_nonce=None))  # re-seed from the chain
        return f"head {anchor['tree_size']}: {detail}"

    def _replace(self, anchor: dict[str, Any], stuck: dict[str, Any]) -> str | None:
        """Replace a stuck transaction at the same nonce with higher fees (THREATS 22); the
        old hashes stay on file, since any of them may still be the one mined.

        A nonce above the account's (a gap: THREATS 26) can never be mined: the lowest free
        nonce is filled instead."""
        chain_nonce = self.chain.nonce(self.account.address, "latest")
        nonce = int(stuck["nonce"])
        if nonce > chain_nonce:
            logger.error(
                "anchor of head %s: nonce %s leaves a gap at %s; filling it",
                anchor["tree_size"],
                nonce,
                chain_nonce,
            )
            with write_transaction(self.registry.engine) as conn:
                conn.execute(update(state_t).values(next_nonce=chain_nonce + 1))
                self._event(
                    conn,
                    anchor["id"],
                    "broadcast",
                    "broadcast",
                    f"nonce gap: {nonce} -> {chain_nonce}",
                )
            nonce = chain_nonce
        signed = self._reprice(anchor, {**stuck, "nonce": nonce})
        if signed is None:
            return None
        try:
            self.chain.send_raw(signed.raw)
        except TransactionRejected as exc:
            if exc.verdict not in (SendVerdict.ALREADY_KNOWN, SendVerdict.NONCE_USED):
                raise
        sent_block = self.chain.block_number()
        with write_transaction(self.registry.engine) as conn:
            conn.execute(
                update(attempts_t)
                .where(
                    attempts_t.c.tx_hash == signed.tx_hash, attempts_t.c.anchor_id == anchor["id"]
                )
                .values(sent_block=sent_block)
            )
        return f"replaced head {anchor['tree_size']} at max fee {signed.max_fee_per_gas}"

    def _reprice(self, anchor: dict[str, Any], previous: dict[str, Any]) -> SignedAnchor | None:
        """Sign and store a new attempt at the same nonce with fees raised enough to replace
        the previous one and to be included now; None at the fee cap (nothing signed)."""
        base_fee = self.chain.base_fee()
        # Nodes want both fees raised by at least 10% to replace; and enough for the chain now.
        tip = max(
            previous["max_priority_fee_per_gas"] * 9 // 8 + 1, self.policy.priority_fee_per_gas
        )
        max_fee = max(previous["max_fee_per_gas"] * 9 // 8 + 1, 2 * base_fee + tip)
        if max_fee > self.policy.max_fee_per_gas:
            detail = (
                f"max fee reached: the anchor needs {max_fee} wei per gas now, the cap is "
                f"{self.policy.max_fee_per_gas}; waiting for fees to drop"
            )
            if anchor.get("error") != detail:
                self._note_error(detail, anchor)
            return None
        size = int(anchor["tree_size"])
        previous_size = int(anchor["previous_size"])
        proof = self.registry.consistency_proof(previous_size, size) if previous_size else []
        with write_transaction(self.registry.engine) as conn:
            signed = self.chain.sign_anchor(
                self.account,
                size=size,
                root=bytes(anchor["root"]),
                proof=proof,
                nonce=int(previous["nonce"]),
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=tip,
                gas=self.policy.gas_limit,
            )
            self._store_attempt(conn, anchor["id"], signed)
            self._event(
                conn, anchor["id"], anchor["state"], anchor["state"], f"repriced to {max_fee}"
            )
            # Whatever made it wait (the cap) is over.
            conn.execute(update(anchors_t).where(anchors_t.c.id == anchor["id"]).values(error=None))
        logger.info("anchor of head %s: repriced to max fee %s wei", size, max_fee)
        return signed

    # -- mined -> final -----------------------------------------------------------------------

    def _await_finality(self, anchor: dict[str, Any]) -> str | None:
        block_number = int(anchor["block_number"])
        receipt = self.chain.receipt(bytes(anchor["tx_hash"]))
        if receipt is None or bytes(receipt["blockHash"]) != bytes(anchor["block_hash"]):
            # The block that held it is gone (a reorg): look for the receipt again.
            with write_transaction(self.registry.engine) as conn:
                self._move(conn, anchor, "broadcast", "reorged out of its block")
            return f"head {anchor['tree_size']} reorged out of block {block_number}"
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
            self._move(conn, anchor, "final", detail)
        return f"final head {anchor['tree_size']}"

    def _watch_final(self) -> str | None:
        """A final anchor must stay where it was: if its block leaves the chain, finality was
        violated (THREATS 21): a critical alarm, recorded, and the head is anchored again."""
        with read_transaction(self.registry.engine) as conn:
            row = conn.execute(
                select(anchors_t)
                .where(anchors_t.c.state == "final", anchors_t.c.tx_hash.is_not(None))
                .order_by(anchors_t.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        anchor = dict(row._mapping)
        receipt = self.chain.receipt(bytes(anchor["tx_hash"]))
        if receipt is not None and bytes(receipt["blockHash"]) == bytes(anchor["block_hash"]):
            return None
        detail = f"finality violated: block {anchor['block_number']} left the chain"
        logger.critical("ALARM anchor of head %s: %s", anchor["tree_size"], detail)
        with write_transaction(self.registry.engine) as conn:
            self._move(conn, anchor, "reorged", detail, error=detail)
            # Its nonce may be free again: nothing is in flight, so re-seed from the chain.
            conn.execute(update(state_t).values(next_nonce=None))
        return f"head {anchor['tree_size']}: {detail}"

    # -- storage helpers ------------------------------------------------------------------------

    def _in_flight(self) -> dict[str, Any] | None:
        with read_transaction(self.registry.engine) as conn:
            row = conn.execute(
                select(anchors_t)
                .where(anchors_t.c.state.in_(IN_FLIGHT))
                .order_by(anchors_t.c.id)
                .limit(1)
            ).first()
        return None if row is None else dict(row._mapping)

    def _last_mined_size(self, conn: Connection) -> int:
        size = conn.execute(
            select(func.max(anchors_t.c.tree_size)).where(anchors_t.c.state.in_(("mined", "final")))
        ).scalar()
        return int(size or 0)

    def _attempts(self, anchor_id: int) -> list[dict[str, Any]]:
        with read_transaction(self.registry.engine) as conn:
            rows = conn.execute(
                select(attempts_t)
                .where(attempts_t.c.anchor_id == anchor_id)
                .order_by(attempts_t.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def _latest_attempt(self, anchor_id: int) -> dict[str, Any]:
        return self._attempts(anchor_id)[-1]

    def _store_attempt(self, conn: Connection, anchor_id: int, signed: SignedAnchor) -> None:
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

    def _move(
        self, conn: Connection, anchor: dict[str, Any], state: str, detail: str, **values: Any
    ) -> None:
        # A transition ends the wait an ``error`` explained, unless it states its own.
        values.setdefault("error", None)
        conn.execute(
            update(anchors_t)
            .where(anchors_t.c.id == anchor["id"], anchors_t.c.state == anchor["state"])
            .values(state=state, updated_at=self.clock(), **values)
        )
        self._event(conn, anchor["id"], anchor["state"], state, detail)
        logger.info(
            "anchor of head %s: %s -> %s (%s)", anchor["tree_size"], anchor["state"], state, detail
        )

    def _event(
        self, conn: Connection, anchor_id: int, from_state: str, to_state: str, detail: str
    ) -> None:
        conn.execute(
            insert(events_t).values(
                anchor_id=anchor_id,
                at=self.clock(),
                from_state=from_state,
                to_state=to_state,
                detail=detail,
            )
        )

    def _note_error(self, detail: str, anchor: dict[str, Any] | None = None) -> None:
        """Say why anchoring waits, on the anchor's row (visible in ``status``) and in the log."""
        logger.warning("anchoring paused: %s", detail)
        if anchor is not None:
            with write_transaction(self.registry.engine) as conn:
                conn.execute(
                    update(anchors_t).where(anchors_t.c.id == anchor["id"]).values(error=detail)
                )


def _why_waiting(exc: TransactionRejected) -> str:
    if exc.verdict == SendVerdict.INSUFFICIENT_FUNDS:
        return f"anchoring key unfunded: {exc.detail}; waiting for funds, nothing is lost"
    return exc.detail


def _sealed(anchor: dict[str, Any], attempt: dict[str, Any]) -> SignedAnchor:
    return SignedAnchor(
        raw=bytes(attempt["raw"]),
        tx_hash=bytes(attempt["tx_hash"]),
        nonce=int(attempt["nonce"]),
        size=int(anchor["tree_size"]),
        root=bytes(anchor["root"]),
        max_fee_per_gas=int(attempt["max_fee_per_gas"]),
        max_priority_fee_per_gas=int(attempt["max_priority_fee_per_gas"]),
    )


__all__ = ["AnchorPolicy", "AnchorWorker", "ChainUnavailable"]


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
