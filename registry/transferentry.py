"""A checked transfer written: its TRANSFER entry, the receipt's signature, its row, the holder.

``registry.transfers`` checks a platform's report and calls ``write_transfer``; an order's
settlement (``registry.settlement``, issue 17) calls it for the sale an order made, whose
parties it knows only as stored (keyed reference hashes). One path, so both kinds of sale are
the same TRANSFER entry, receipt and holder move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table

from registry.eip712 import Domain, address_bytes
from registry.fingerprints import GoodType, fingerprint_hex
from registry.holding import move_holder
from registry.leaf import EntryKind
from registry.models import Transfer
from registry.receipts import PRIMARY_TYPE, party_document, receipt_message
from registry.records import checksum, log_registry_record_at_once
from registry.signatures import sign
from registry.transferpayload import TransferPayload, TransferShare

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

transfers_t: Table = Transfer.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SaleTerms:
    """A checked transfer as it is written: the parties as stored (keyed reference hashes),
    the price and finality. ``record_transfer`` builds one from a platform's report; an
    order's settlement (``registry.settlement``) from the order, whose references it never had.
    """

    platform: str
    good_type: GoodType
    fingerprint: bytes
    creator: bytes
    seller_platform: str | None
    seller_ref: bytes | None
    buyer_platform: str
    buyer_ref: bytes
    price: int | None
    currency: str | None
    final: bool
    idempotency_key: str | None
    request_hash: bytes


def write_transfer(
    conn: Connection,
    terms: SaleTerms,
    *,
    holding: Any,
    previous: Any,
    shares: list[TransferShare],
    seller_amount: int | None,
    account: LocalAccount,
    domain: Domain,
    now: int,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
) -> tuple[int, int]:
    """Log a checked transfer (its TRANSFER entry sequenced at once, the head published), sign
    its receipt, store it and move the holder; its (transfer id, timestamp). The caller holds
    the log's lock and has checked the seller holds the good (``holding``, ``previous``: the
    holding row and the transfer that made it, as read under that lock)."""
    good = f"{terms.good_type.name.lower()} {fingerprint_hex(terms.fingerprint)}"
    registry = address_bytes(account.address)
    payload = TransferPayload(
        good_type=terms.good_type,
        fingerprint=terms.fingerprint,
        creator=checksum(terms.creator),
        platform=terms.platform,
        seller=party_document(terms.seller_platform, terms.seller_ref),
        buyer=party_document(terms.buyer_platform, terms.buyer_ref),
        price=terms.price,
        currency=terms.currency,
        final=terms.final,
        previous_transfer=None if previous is None else int(previous.id),
        shares=tuple(shares),
        seller_amount=seller_amount,
        registry=checksum(registry),
        domain=domain,
    )
    entry_id, leaf_index, timestamp, digest = log_registry_record_at_once(
        conn,
        payload,
        primary_type="Transfer",
        kind=EntryKind.TRANSFER,
        good_type=int(terms.good_type),
        fingerprint=terms.fingerprint,
        account=account,
        domain=domain,
        now=now,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )

    message = receipt_message(terms.good_type, terms.fingerprint, leaf_index, digest, timestamp)
    signature = sign(PRIMARY_TYPE, message, domain, account.key)
    transfer_id = conn.execute(
        transfers_t.insert()
        .values(
            entry_id=entry_id,
            good_type=int(terms.good_type),
            fingerprint=terms.fingerprint,
            creator=terms.creator,
            platform=terms.platform,
            seller_platform=terms.seller_platform,
            seller_ref=terms.seller_ref,
            buyer_platform=terms.buyer_platform,
            buyer_ref=terms.buyer_ref,
            price=None if terms.price is None else str(terms.price),
            currency=terms.currency,
            final=terms.final,
            royalty_total=str(sum(s.amount for s in shares)) if shares else None,
            idempotency_key=terms.idempotency_key,
            request_hash=terms.request_hash,
            receipt_signature=signature,
            leaf_index=leaf_index,
            created_at=timestamp,
        )
        .returning(transfers_t.c.id)
    ).scalar_one()
    move_holder(
        conn,
        good_type=int(terms.good_type),
        fingerprint=terms.fingerprint,
        buyer=(terms.buyer_platform, terms.buyer_ref),
        final=terms.final,
        holding=holding,
        transfer_id=int(transfer_id),
        good=good,
    )
    return int(transfer_id), timestamp


__all__ = ["SaleTerms", "transfers_t", "write_transfer"]
