"""An order's money and its sale (issue 17): lines held at delivery, due when the sale stands.

An order's lines are rows of the one ledger, ``royalty_lines`` (migration 0023):

- **held** at delivery (``hold_lines``, in the delivery's transaction): the creator's royalty
  on the order's price, split by ``registry.royalty.split`` exactly as a transfer's (none on a
  first-hand sale, as a transfer owes none), and the upline rebates of the distributor chain
  (``registry.rebates``). Royalty and rebates come out of the one price: parts that would
  exceed it refuse the delivery (``LinesExceedPrice``, 409), and nothing is written;
- **due** when the sale stands (confirm, auto_confirm, release: ``settle``, in the change's
  transaction): the sale is recorded through the transfer path's writer
  (``registry.transferentry.write_transfer``: a TRANSFER entry sequenced at once, its receipt,
  the holder moved seller -> buyer) at the order's price, with the held royalty lines as the
  entry's shares (no second set is written); the lines get the transfer and ``settled_at``;
- **reversed** by a refund: kept, never deleted, with ``settled_at``; the good never moved, so
  its seller is still its holder; unless the resolution says the buyer redeemed the code
  anyway: then it is consumed the registry's one way, a final TRANSFER to the buyer (no
  price, no shares).

The change that settles is recorded once by the order's conditional UPDATE on (state,
sequence), so of two confirmations exactly one settles; the lines move by an UPDATE on
``status = 'held'``, a second pass finds none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from eth_account.signers.local import LocalAccount
from sqlalchemy import Connection, select, update

from registry import log
from registry.eip712 import Domain, address_bytes
from registry.errors import Conflict, InvalidInput
from registry.fingerprints import GoodType, Use, fingerprint_hex
from registry.holding import current_holding, order_seller_holds
from registry.orders import State
from registry.payloads import RegistrationPayload
from registry.rebates import upline_rebates
from registry.records import checksum
from registry.royalty import RoyaltyPolicy, split
from registry.transferentry import SaleTerms, write_transfer
from registry.transferpayload import TransferShare
from registry.transferrequests import DoubleSale
from registry.transfers import _good_facts, royalty_lines_t

if TYPE_CHECKING:
    from registry.checkpoints import CheckpointSigner
    from registry.statecommit import StateMapCache

#: The states in which an order's sale stands: its transfer is recorded, its lines due.
SALE_STANDS: Final = frozenset({State.CONFIRMED, State.AUTO_CONFIRMED, State.RELEASED})

HELD: Final = "held"
DUE: Final = "due"
REVERSED: Final = "reversed"


class LinesExceedPrice(Conflict):
    """The creator's royalty and the upline rebates together would take more than the order's
    price: the delivery is refused and nothing is changed."""

    code = "lines-exceed-price"
    diagnostics = "Royalties and rebates exceed the price: their policies must be lowered first."


@dataclass(frozen=True)
class Line:
    """One line an order holds: a royalty to an address or a rebate to an agent at a level."""

    kind: str
    bps: int
    amount: int
    recipient: bytes | None = None
    payee: str | None = None
    level: int | None = None


def order_lines(conn: Connection, order: Any) -> list[Line]:
    """The lines an order's price owes (royalty, then rebates); ``LinesExceedPrice`` if they
    sum past the price. Nothing is written."""
    good_type, fingerprint = int(order.good_type), bytes(order.fingerprint)
    registered, _ = _good_facts(conn, good_type, fingerprint)
    registration = RegistrationPayload.from_json(registered.payload)
    policy = registration.royalty_policy or RoyaltyPolicy.parse({"recipients": []})
    price = int(order.price)
    lines: list[Line] = []
    if order.seller_platform is not None:  # a first-hand sale owes no royalty (as transfers)
        parts = split(price, policy)
        lines += [
            Line("royalty", recipient.bps, amount, recipient=address_bytes(address))
            for (address, amount), recipient in zip(parts.royalties, policy.recipients, strict=True)
        ]
    lines += rebate_lines(conn, order, creator=bytes(registered.actor))
    total = sum(line.amount for line in lines)
    if total > price:
        raise LinesExceedPrice(
            f"royalty and rebates would take {total} of a price of {price} {order.currency}"
        )
    return lines


def rebate_lines(conn: Connection, order: Any, *, creator: bytes) -> list[Line]:
    """The upline rebates of the order's sale (issue 17 item 6): one line per level of the
    seller's chain on the order's platform that the product's policy pays
    (``registry.rebates.upline_rebates``; none first-hand, for a price of 0, with no policy
    or no upline; ``RebateRoundsToZero``, 422, refuses the delivery)."""
    parts = upline_rebates(
        conn,
        creator=creator,
        good_type=int(order.good_type),
        fingerprint=bytes(order.fingerprint),
        platform=order.platform,
        seller_ref=None if order.seller_ref is None else bytes(order.seller_ref),
        price=int(order.price),
        currency=order.currency,
    )
    return [
        Line("rebate", part.bps, part.amount, payee=part.payee, level=part.level) for part in parts
    ]


def hold_lines(conn: Connection, order: Any, *, now: int) -> list[Line]:
    """Write the order's lines ``held`` (the delivery's transaction); the lines written."""
    lines = order_lines(conn, order)
    if lines:
        conn.execute(
            royalty_lines_t.insert(),
            [
                {
                    "transfer_id": None,
                    "creator": _creator(conn, order),
                    "recipient": line.recipient,
                    "bps": line.bps,
                    "amount": str(line.amount),
                    "currency": order.currency,
                    "platform": order.platform,
                    "good_type": int(order.good_type),
                    "fingerprint": bytes(order.fingerprint),
                    "created_at": now,
                    "status": HELD,
                    "kind": line.kind,
                    "order_id": int(order.id),
                    "payee": line.payee,
                    "level": line.level,
                }
                for line in lines
            ],
        )
    return lines


def _creator(conn: Connection, order: Any) -> bytes:
    registered, _ = _good_facts(conn, int(order.good_type), bytes(order.fingerprint))
    return bytes(registered.actor)


@dataclass(frozen=True)
class Settler:
    """What recording an order's sale needs besides its row: the registry's key and domain,
    and what a published head needs (``log.publish_tree_head``)."""

    account: LocalAccount
    domain: Domain
    state_map: StateMapCache | None
    checkpoint_signer: CheckpointSigner
    #: A refund's resolution says the code was redeemed after delivery: it is consumed.
    redeemed: bool = False

    def __call__(self, conn: Connection, order: Any, target: State, now: int) -> None:
        """``orderstore``'s hook, called in the change's transaction as the order enters
        ``target``: the sale stands (record it, lines due) or is refunded (lines reversed;
        a redeemed code consumed)."""
        if target in SALE_STANDS:
            settle_sale(conn, order, settler=self, now=now)
        elif target is State.REFUNDED:
            reverse_lines(conn, int(order.id), now=now)
            if self.redeemed:
                settle_sale(conn, order, settler=self, now=now, consumed_only=True)


def sale_request_hash(order_id: int) -> bytes:
    """The transfer row's request hash for an order's sale (no platform sent a request)."""
    return hashlib.sha256(b"tracemark/order-sale/v1\0" + str(order_id).encode()).digest()


def settle_sale(
    conn: Connection, order: Any, *, settler: Settler, now: int, consumed_only: bool = False
) -> int:
    """Record the order's sale seller -> buyer and make its held lines due; the transfer id.

    ``consumed_only``: a refunded order whose code the buyer redeemed anyway. The registry's
    one way to consume a good is a final transfer, so it is recorded as one, to the buyer who
    redeemed it, with no price (the money went back) and no shares; its lines stay reversed.
    Only a single-use good is consumed (``InvalidInput`` otherwise: nothing is changed).

    NOTE: only the holder is checked here. The reservation kept every other sale off the good
    since the opening, which checked it was registered, unrevoked and unconsumed, and the
    delivery checked it again; a revocation after delivery is what a dispute is for, and the
    window to open one has passed (or the buyer confirmed, or the dispute was released), so
    the sale stands as delivered."""
    log.lock_log(conn)  # reentrant: the desk took it first (the lock order of every writer)
    good_type, fingerprint = int(order.good_type), bytes(order.fingerprint)
    good = f"{GoodType(good_type).name.lower()} {fingerprint_hex(fingerprint)}"
    registered, _ = _good_facts(conn, good_type, fingerprint)
    registration = RegistrationPayload.from_json(registered.payload)
    # ``final`` as the transfer path defines it: a single-use good (a code) delivered to its
    # buyer is consumed by the sale; a transferable one stays resellable.
    final = Use(int(registration.signed.message["use"])) is Use.SINGLE
    if consumed_only and not final:
        raise InvalidInput(f"{good} is transferable: only a single-use good is redeemed")
    holding, previous = current_holding(conn, good_type, fingerprint)
    if not order_seller_holds(order.seller_platform, order.seller_ref, holding):
        # The reservation kept every other sale off it: this is a backstop, never expected.
        raise DoubleSale(
            f"{good} is no longer held by the order's seller: the sale cannot be recorded",
            None if holding is None else {"transfer_id": int(holding.last_transfer_id)},
        )

    c = royalty_lines_t.c
    held = conn.execute(
        select(royalty_lines_t).where(c.order_id == int(order.id), c.status == HELD).order_by(c.id)
    ).all()
    price: int | None = None if consumed_only else int(order.price)
    shares = [
        TransferShare(checksum(bytes(line.recipient)), int(line.bps), int(line.amount))
        for line in held
        if line.kind == "royalty"
    ]
    seller_amount = None if price is None else price - sum(share.amount for share in shares)
    terms = SaleTerms(
        platform=order.platform,
        good_type=GoodType(good_type),
        fingerprint=fingerprint,
        creator=bytes(registered.actor),
        seller_platform=order.seller_platform,
        seller_ref=None if order.seller_ref is None else bytes(order.seller_ref),
        buyer_platform=order.buyer_platform,
        buyer_ref=bytes(order.buyer_ref),
        price=price,
        currency=None if price is None else order.currency,
        final=final,
        idempotency_key=None,
        request_hash=sale_request_hash(int(order.id)),
    )
    transfer_id, timestamp = write_transfer(
        conn,
        terms,
        holding=holding,
        previous=previous,
        shares=shares,
        seller_amount=seller_amount,
        account=settler.account,
        domain=settler.domain,
        now=now,
        state_map=settler.state_map,
        checkpoint_signer=settler.checkpoint_signer,
    )
    conn.execute(
        update(royalty_lines_t)
        .where(c.order_id == int(order.id), c.status == HELD)
        .values(status=DUE, transfer_id=transfer_id, settled_at=timestamp)
    )
    return transfer_id


def reverse_lines(conn: Connection, order_id: int, *, now: int) -> int:
    """A refund: the order's held lines are never owed (kept, ``reversed``); how many."""
    c = royalty_lines_t.c
    return int(
        conn.execute(
            update(royalty_lines_t)
            .where(c.order_id == order_id, c.status == HELD)
            .values(status=REVERSED, settled_at=now)
        ).rowcount
    )


__all__ = [
    "DUE",
    "HELD",
    "REVERSED",
    "SALE_STANDS",
    "Line",
    "LinesExceedPrice",
    "Settler",
    "hold_lines",
    "order_lines",
    "rebate_lines",
    "reverse_lines",
    "sale_request_hash",
    "settle_sale",
]
