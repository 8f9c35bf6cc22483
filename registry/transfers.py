"""Transfers: a platform reports that a good changed hands; the registry checks, logs, receipts.

Rules (DESIGN.md "Holders, transfers, royalties"):

- the holder of a good is a ``(platform, reference)`` pair, of which only a hash of the
  reference is stored, keyed per platform (``registry.parties``); the first holder is the
  creator;
- a good held on a platform moves only with that platform's consent: it reports the sale
  itself, or the buying platform presents a one-time hand-over authorization the holding
  platform issued (``registry.handover``); anyone else naming it as the seller is refused
  (``NotTheHolder``, 403) before the holder is even looked at, so the answer is no oracle
  for guessing references;
- a transfer is accepted only if its seller is the current holder; otherwise it is the
  double-sale signal, refused with the transfer that made the real holder;
- ``final`` on a single-use good consumes it; every later transfer is refused;
- a priced transfer whose seller is not the creator owes royalties, split integer-exactly by
  the policy the creator signed at registration (``registry.royalty.split``);
- each accepted transfer is a TRANSFER entry (actor: the registry), sequenced at once so that
  the registry can sign a ``TransferReceipt`` naming its log index (``registry.receipts``).

The request and its refusals are ``registry.transferrequests``; who holds a good and how it
moves, ``registry.holding``. Races: the whole check-and-write runs under the log's lock
(``lock_log``: one writer at a time on PostgreSQL, BEGIN IMMEDIATE on SQLite), and the holder
moves by a conditional UPDATE or an INSERT under the primary key, so a lost race can never
move a good twice (THREATS 46).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, Table, select

from registry import handover, log
from registry.distribution import check_first_sale
from registry.distribution_policy import NotADistributor
from registry.eip712 import Domain, address_bytes
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, Use, fingerprint_hex
from registry.handover import AuthorizationRefused, NotTheHolder
from registry.holding import authorized_seller, check_seller, current_holding, holdings_t
from registry.idempotentwrites import earlier_write
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models import RoyaltyLine, Transfer, TransferAttempt
from registry.orders import GoodReserved
from registry.parties import (
    MAX_PLATFORM_LENGTH,
    MAX_REFERENCE_LENGTH,
    ReferenceKeys,
    legacy_reference_hash,
)
from registry.payloads import RegistrationPayload
from registry.receipts import (
    RoyaltyShare,
    TransferReceipt,
    party_document,
)
from registry.records import checksum, records_t
from registry.reservations import refuse_if_reserved
from registry.royalty import RoyaltyPolicy, split
from registry.transferentry import SaleTerms, write_transfer
from registry.transferpayload import TransferPayload, TransferShare
from registry.transferrequests import (
    DoubleSale,
    GoodConsumed,
    GoodRevoked,
    IdempotencyKeyReused,
    Party,
    TransferRequest,
)

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

transfers_t: Table = Transfer.__table__  # type: ignore[attr-defined]
royalty_lines_t: Table = RoyaltyLine.__table__  # type: ignore[attr-defined]
attempts_t: Table = TransferAttempt.__table__  # type: ignore[attr-defined]


def _good_facts(conn: Connection, good_type: int, fingerprint: bytes) -> tuple[Any, Any]:
    """The REGISTER entry (with its record's payload) and the first REVOKE entry, if any."""
    c = entries_t.c
    registered = conn.execute(
        select(c.id, c.actor, c.record_id, records_t.c.payload)
        .join(records_t, records_t.c.id == c.record_id)
        .where(
            c.kind == int(EntryKind.REGISTER),
            c.good_type == good_type,
            c.fingerprint == fingerprint,
        )
    ).first()
    revoked = conn.execute(
        select(c.id).where(
            c.kind == int(EntryKind.REVOKE), c.good_type == good_type, c.fingerprint == fingerprint
        )
    ).first()
    return registered, revoked


def record_transfer(
    conn: Connection,
    request: TransferRequest,
    *,
    account: LocalAccount,
    domain: Domain,
    keys: ReferenceKeys,
    now: int,
    state_map: StateMapCache | None,
    checkpoint_signer: CheckpointSigner,
) -> TransferReceipt:
    """Check and log one transfer, move the holder, write royalties; return the receipt.
    ``state_map``, ``checkpoint_signer``: see ``log.publish_tree_head``."""
    log.lock_log(conn)
    replay = earlier_write(conn, transfers_t, request, "transfer")
    if replay is not None:
        receipt = load_receipt(conn, replay, domain)
        return receipt.model_copy(update={"replayed": True})
    seller = request.seller
    good_type, fingerprint = int(request.good_type), request.fingerprint
    good = f"{request.good_type.name.lower()} {fingerprint_hex(fingerprint)}"
    registered, revoked = _good_facts(conn, good_type, fingerprint)
    if registered is None:
        raise NotFound(f"no {good} is registered")
    if revoked is not None:
        raise GoodRevoked(f"{good} was revoked by its creator; it may not change hands")
    creator = bytes(registered.actor)
    registration = RegistrationPayload.from_json(registered.payload)
    use = Use(int(registration.signed.message["use"]))
    policy = registration.royalty_policy
    if policy is None:  # a registration without a policy (record_payload allowed it) has none
        policy = RoyaltyPolicy.parse({"recipients": []})

    holding, previous = current_holding(conn, good_type, fingerprint)
    if holding is not None and holding.consumed:
        raise GoodConsumed(f"{good} was consumed by a final sale; it may not change hands")
    # Issue 17: a good reserved for an open order is sold by nobody (public, as revoked is).
    refuse_if_reserved(conn, good_type, fingerprint, now, good)
    if not seller.is_creator and seller.platform != request.platform and not request.authorization:
        # NOTE: before the holder's reference is compared with anything: a 409 (wrong
        # reference) against a 201 (right one) would let any platform test guesses of
        # another's references. A revoked or consumed good is refused first: that much is
        # public (any verify answer says it), and it is the fact a risk signal needs.
        raise NotTheHolder(
            f"the seller is a party on {seller.platform}, not on your platform: only "
            f"{seller.platform} may report its sale, or give you a hand-over authorization"
        )
    seller_ref: bytes | None
    authorization_id = None
    if request.authorization is not None:
        seller_ref, authorization_id = authorized_seller(
            conn, request, holding, previous, keys, good, now
        )
    else:
        check_seller(request, holding, previous, keys, good)
        seller_ref = seller.ref_hash(keys.reference_hash)
    buyer_ref = request.buyer.ref_hash(keys.reference_hash)
    assert buyer_ref is not None and request.buyer.platform is not None
    if request.seller.is_creator:
        check_first_sale(conn, creator, request.platform, good)
    if request.final and use is not Use.SINGLE:
        raise InvalidInput("final applies to single-use goods (codes); this good is transferable")

    shares: list[TransferShare] = []
    seller_amount = None
    if request.price is not None and not request.seller.is_creator:
        parts = split(request.price, policy)
        shares = [
            TransferShare(address, recipient.bps, amount)
            for (address, amount), recipient in zip(parts.royalties, policy.recipients, strict=True)
        ]
        seller_amount = parts.seller_amount
    elif request.price is not None:
        seller_amount = request.price

    terms = SaleTerms(
        platform=request.platform,
        good_type=request.good_type,
        fingerprint=fingerprint,
        creator=creator,
        seller_platform=seller.platform,
        seller_ref=seller_ref,
        buyer_platform=request.buyer.platform,
        buyer_ref=buyer_ref,
        price=request.price,
        currency=request.currency,
        final=request.final,
        idempotency_key=request.idempotency_key,
        request_hash=request.request_hash(),
    )
    transfer_id, timestamp = write_transfer(
        conn,
        terms,
        holding=holding,
        previous=previous,
        shares=shares,
        seller_amount=seller_amount,
        account=account,
        domain=domain,
        now=now,
        state_map=state_map,
        checkpoint_signer=checkpoint_signer,
    )
    if authorization_id is not None:
        handover.link_transfer(conn, authorization_id, transfer_id)
    if shares:
        assert request.currency is not None
        conn.execute(
            royalty_lines_t.insert(),
            [
                {
                    "transfer_id": transfer_id,
                    "creator": creator,
                    "recipient": address_bytes(s.recipient),
                    "bps": s.bps,
                    "amount": str(s.amount),
                    "currency": request.currency,
                    "platform": request.platform,
                    "good_type": good_type,
                    "fingerprint": fingerprint,
                    "created_at": timestamp,
                }
                for s in shares
            ],
        )
    return load_receipt(conn, transfer_id, domain)


def load_receipt(conn: Connection, transfer_id: int, domain: Domain) -> TransferReceipt:
    """A stored transfer as its receipt (the signature was made when it was recorded)."""
    t = transfers_t.c
    row = conn.execute(
        select(transfers_t, records_t.c.payload, records_t.c.payload_hash, records_t.c.signer)
        .join(entries_t, entries_t.c.id == t.entry_id)
        .join(records_t, records_t.c.id == entries_t.c.record_id)
        .where(t.id == transfer_id)
    ).first()
    if row is None:
        raise NotFound(f"no transfer {transfer_id}")
    payload = TransferPayload.from_json(row.payload)
    return TransferReceipt(
        transfer_id=int(row.id),
        good_type=GoodType(int(row.good_type)),
        fingerprint=bytes(row.fingerprint),
        leaf_index=int(row.leaf_index),
        transfer_hash=bytes(row.payload_hash),
        timestamp=int(row.created_at),
        signature=bytes(row.receipt_signature),
        signer=checksum(bytes(row.signer)),
        domain=payload.domain,
        platform=row.platform,
        seller=dict(payload.seller),
        buyer=dict(payload.buyer),
        price=None if row.price is None else int(row.price),
        currency=row.currency,
        final=bool(row.final),
        creator=checksum(bytes(row.creator)),
        royalties=[
            RoyaltyShare(recipient=s.recipient, bps=s.bps, amount=s.amount) for s in payload.shares
        ],
        seller_amount=payload.seller_amount,
    )


#: The refusals worth keeping for fraud signals: someone tried to move what they could not.
Refusal = DoubleSale | GoodConsumed | GoodRevoked | GoodReserved | NotADistributor | NotTheHolder


def record_refused(
    conn: Connection,
    request: TransferRequest,
    refusal: Refusal,
    *,
    keys: ReferenceKeys,
    now: int,
) -> int:
    """Keep a refused transfer (the signals' evidence of a double sale, or of a revoked or
    consumed good offered again). Called in its own transaction after the refused one rolled
    back: nothing of the refused transfer itself is written."""
    earlier = refusal.earlier if isinstance(refusal, DoubleSale) else None
    if isinstance(refusal, GoodConsumed):
        holding = conn.execute(
            select(holdings_t.c.last_transfer_id).where(
                holdings_t.c.good_type == int(request.good_type),
                holdings_t.c.fingerprint == request.fingerprint,
            )
        ).first()
        earlier = None if holding is None else {"transfer_id": int(holding.last_transfer_id)}
    return int(
        conn.execute(
            attempts_t.insert()
            .values(
                at=now,
                platform=request.platform,
                good_type=int(request.good_type),
                fingerprint=request.fingerprint,
                seller_platform=request.seller.platform,
                seller_ref=request.seller.ref_hash(keys.reference_hash),
                buyer_platform=request.buyer.platform,
                buyer_ref=request.buyer.ref_hash(keys.reference_hash),
                price=None if request.price is None else str(request.price),
                currency=request.currency,
                final=request.final,
                reason=refusal.code,
                earlier_transfer_id=None if earlier is None else earlier["transfer_id"],
            )
            .returning(attempts_t.c.id)
        ).scalar_one()
    )


__all__ = [
    "MAX_PLATFORM_LENGTH",
    "MAX_REFERENCE_LENGTH",
    "AuthorizationRefused",
    "DoubleSale",
    "GoodConsumed",
    "GoodRevoked",
    "IdempotencyKeyReused",
    "NotTheHolder",
    "Party",
    "RoyaltyShare",
    "SaleTerms",
    "TransferReceipt",
    "TransferRequest",
    "legacy_reference_hash",
    "load_receipt",
    "party_document",
    "record_refused",
    "record_transfer",
    "write_transfer",
]
