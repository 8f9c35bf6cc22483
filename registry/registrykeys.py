"""The registry's signing keys over time: which key signs heads of which size, and hand-overs.

A hand-over at size N is one transaction under the log's lock: the queue is integrated and
its head signed by the outgoing key (ending with its own state commitment, issue 14); the
outgoing key signs EIP-712 ``KeyHandover(newKey, treeSize=N)``; that statement is logged as a
KEY_HANDOVER entry (leaf N - 2, so the first head the new key signs holds it; leaf N - 1 is
that head's state commitment, which the new key's address is the actor of); the outgoing
key's row ends at N and the new key's starts there; and the new key signs head N. Heads below
N verify under the old key, heads from N on only under the new one: the served trust root
lists both, with the hand-over signature that chains them. (Without the state map, the
benchmark's peer only, the hand-over is leaf N - 1.)

NOTE: these keys sign tree heads, TRANSFER attestations, receipts and creator identities.
The anchor contract's *operators* (the accounts allowed to send ``anchor``) are a separate
set, managed on chain by the contract's owner: a leaked signing key cannot anchor, and a
leaked anchoring key cannot sign a head (docs/ARCHITECTURE.md, "Trust roots").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, insert, select, update

from registry import log
from registry.eip712 import Domain, checksum_address
from registry.errors import Conflict, InvalidInput
from registry.leaf import NO_GOOD, EntryKind, subject_fingerprint
from registry.models import RegistryKey
from registry.payloads import KeyHandoverPayload
from registry.records import log_registry_record
from registry.signatures import sign

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

registry_keys_t: Table = RegistryKey.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyPeriod:
    """One signing key and the head sizes it signs (``from_size <= size < until_size``)."""

    address: bytes
    from_size: int
    until_size: int | None
    handover_signature: bytes | None

    def signs(self, tree_size: int) -> bool:
        return self.from_size <= tree_size and (
            self.until_size is None or tree_size < self.until_size
        )

    def as_document(self) -> dict[str, object]:
        return {
            "address": checksum_address(self.address),
            "from_size": self.from_size,
            "until_size": self.until_size,
            "handover_signature": None
            if self.handover_signature is None
            else "0x" + self.handover_signature.hex(),
        }


def key_periods(conn: Connection) -> list[KeyPeriod]:
    """Every key the registry has signed with, oldest first."""
    c = registry_keys_t.c
    rows = conn.execute(
        select(c.address, c.from_size, c.until_size, c.handover_signature).order_by(c.from_size)
    ).all()
    return [
        KeyPeriod(
            bytes(row.address),
            int(row.from_size),
            None if row.until_size is None else int(row.until_size),
            None if row.handover_signature is None else bytes(row.handover_signature),
        )
        for row in rows
    ]


def current_key(conn: Connection) -> bytes | None:
    """The address of the key that signs new heads (None before the first start)."""
    c = registry_keys_t.c
    value = conn.execute(select(c.address).where(c.until_size.is_(None))).scalar_one_or_none()
    return None if value is None else bytes(value)


def key_for(periods: list[KeyPeriod], tree_size: int) -> bytes | None:
    """The key that signs heads of ``tree_size`` (None when no period covers it)."""
    for period in periods:
        if period.signs(tree_size):
            return period.address
    return None


def adopt_first_key(conn: Connection, address: bytes, *, now: datetime | None = None) -> None:
    """Record the registry's first key (from size 1), once; a later start changes nothing."""
    if conn.execute(select(registry_keys_t.c.id).limit(1)).first() is not None:
        return
    conn.execute(
        insert(registry_keys_t).values(
            address=address,
            from_size=1,
            until_size=None,
            handover_signature=None,
            created_at=now or datetime.now(UTC),
        )
    )


@dataclass(frozen=True)
class Handover:
    """A completed hand-over: the KEY_HANDOVER entry's leaf index, the size the new key
    starts at, and the head it signed there."""

    old_key: str
    new_key: str
    leaf_index: int
    tree_size: int
    head: log.TreeHead


def hand_over(
    conn: Connection,
    *,
    old: LocalAccount,
    new: LocalAccount,
    domain: Domain,
    now: int,
    batch_size: int = 1000,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
) -> Handover:
    """Hand the signing key over from ``old`` to ``new`` (see the module docstring); the
    caller owns the transaction, which must be a write transaction. ``state_map``,
    ``checkpoint_signer``: see ``log.publish_tree_head``."""
    old_address = bytes.fromhex(old.address[2:])
    new_address = bytes.fromhex(new.address[2:])
    if current_key(conn) != old_address:
        raise Conflict(f"{old.address} is not the registry's current signing key")
    if old_address == new_address:
        raise InvalidInput("the new key is the current key")
    known = conn.execute(
        select(registry_keys_t.c.id).where(registry_keys_t.c.address == new_address)
    ).first()
    if known is not None:
        raise Conflict(f"{new.address} has signed for this registry before: use a fresh key")
    # 1. Everything queued is integrated and signed by the outgoing key.
    now = log.sequencer_time(conn, now)
    while log.integrate_queue(conn, limit=batch_size, now=now):
        pass
    if log.tree_size(conn) == 0:
        raise InvalidInput(
            "the log is empty: no head was ever signed, so there is nothing to hand over "
            "(start the registry with the key you want instead)"
        )
    log.publish_tree_head(
        conn,
        account=old,
        domain=domain,
        now=now,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )
    # The outgoing key's last head: it ends with its commitment (appended just now, or
    # already there when nothing was sequenced since).
    size = log.tree_size(conn)
    # 2. The outgoing key signs the hand-over at the size of the first head the new key
    # signs: the hand-over entry, then (with the map) that head's commitment.
    starts_at = size + (2 if state_map is not None else 1)
    message = {"newKey": new.address, "treeSize": starts_at}
    signature = sign("KeyHandover", message, domain, old.key)
    payload = KeyHandoverPayload(old.address, new.address, starts_at, signature, domain)
    # 3. Logged as leaf ``size``, inside the new key's first head; the record's nonce is the
    # size of the first head the new key signs.
    log_registry_record(
        conn,
        payload,
        primary_type="KeyHandover",
        kind=EntryKind.KEY_HANDOVER,
        good_type=NO_GOOD,
        fingerprint=subject_fingerprint(EntryKind.KEY_HANDOVER, new_address),
        signer=old_address,
        now=now,
        nonce=starts_at,
    )
    if log.integrate_queue(conn, limit=1, now=now) != 1:  # pragma: no cover - queue drained
        raise Conflict("the hand-over entry was not integrated")
    # 4. The periods: the old key ends where the new one starts.
    conn.execute(
        update(registry_keys_t)
        .where(registry_keys_t.c.address == old_address)
        .values(until_size=starts_at)
    )
    conn.execute(
        insert(registry_keys_t).values(
            address=new_address,
            from_size=starts_at,
            until_size=None,
            handover_signature=signature,
            created_at=datetime.now(UTC),
        )
    )
    # 5. The new key signs its first head, which holds the hand-over and ends with the
    # commitment of the map over everything before it.
    head = log.publish_tree_head(
        conn,
        account=new,
        domain=domain,
        now=now,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )
    assert head is not None and head.tree_size == starts_at
    return Handover(old.address, new.address, size, starts_at, head)


__all__ = [
    "Handover",
    "KeyPeriod",
    "adopt_first_key",
    "current_key",
    "hand_over",
    "key_for",
    "key_periods",
]
