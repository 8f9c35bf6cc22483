"""The holder of a good: whether the seller holds it, and moving it to the buyer.

A good's holder is a ``(platform, reference hash)`` row in ``holdings`` (none: its creator
holds it). A seller holds the good when it names that row, or presents a hand-over
authorization the holding platform issued for it (``registry.handover``); otherwise the
transfer is the double-sale signal. The holder moves by a conditional UPDATE, or an INSERT
under the primary key for a first sale, so a lost race never moves a good twice (THREATS 46).
Called by ``registry.transfers`` under the log's lock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.exc import IntegrityError

from registry import handover
from registry.handover import AuthorizationRefused
from registry.models import Holding, Transfer
from registry.parties import ReferenceKeys, ReferenceScheme
from registry.transferrequests import DoubleSale, TransferRequest

holdings_t: Table = Holding.__table__  # type: ignore[attr-defined]
_transfers_t: Table = Transfer.__table__  # type: ignore[attr-defined]


def current_holding(conn: Connection, good_type: int, fingerprint: bytes) -> tuple[Any, Any]:
    """The good's holding row (None: its creator still holds it) and the transfer that made
    it (None with it): what every check of a seller reads first (transfers, an order's
    opening, delivery and sale)."""
    h = holdings_t.c
    holding = conn.execute(
        select(holdings_t).where(h.good_type == good_type, h.fingerprint == fingerprint)
    ).first()
    if holding is None:
        return None, None
    previous = conn.execute(
        select(_transfers_t).where(_transfers_t.c.id == holding.last_transfer_id)
    ).first()
    return holding, previous


def transfer_summary(row: Any) -> dict[str, Any]:
    """What a double-sale answer shows of the transfer that made the real holder."""
    # NOTE: "log_index" is the answer's published JSON key (the TRANSFER entry's leaf index).
    return {
        "transfer_id": int(row.id),
        "log_index": int(row.leaf_index),
        "platform": row.platform,
        "buyer_platform": row.buyer_platform,
        "at": int(row.created_at),
        "final": bool(row.final),
    }


def check_seller(
    request: TransferRequest, holding: Any, previous: Any, keys: ReferenceKeys, good: str
) -> None:
    seller = request.seller
    if holding is None:
        if seller.is_creator:
            return
        raise DoubleSale(f"the seller does not hold {good}: its creator still does", earlier=None)
    # Compared under the row's own scheme: a holding written before keyed references still
    # moves when its platform sends the reference again (registry.parties).
    holds = (
        seller.platform is not None
        and seller.reference is not None
        and seller.platform == holding.holder_platform
        and keys.matches(
            bytes(holding.holder_ref), holding.holder_ref_scheme, seller.platform, seller.reference
        )
    )
    if not holds:
        raise DoubleSale(
            f"the seller does not hold {good}: it was transferred to another party",
            earlier=transfer_summary(previous) if previous is not None else None,
        )


def order_seller_holds(seller_platform: str | None, seller_ref: bytes | None, holding: Any) -> bool:
    """Whether an order's seller (as the order stored it: None for the creator, else its
    platform and keyed reference hash) still holds the good, unconsumed (issue 17: checked at
    delivery and when the sale is recorded). A holder hashed by the legacy scheme 1 is
    compared by platform only: the order has only the keyed hash to compare."""
    if holding is None:
        return seller_ref is None  # first-hand: the creator holds it until a first sale
    if seller_ref is None or holding.consumed or holding.holder_platform != seller_platform:
        return False
    return int(holding.holder_ref_scheme) != 2 or bytes(holding.holder_ref) == bytes(seller_ref)


def authorized_seller(
    conn: Connection,
    request: TransferRequest,
    holding: Any,
    previous: Any,
    keys: ReferenceKeys,
    good: str,
    now: int,
) -> tuple[bytes, int]:
    """Check and consume the hand-over authorization; the seller's stored reference hash.

    The authorization names the holder as it was when issued (its platform, the keyed hash of
    its reference, the holding's last transfer): if the good moved since, the holder sold it
    twice and the buyer gets the double-sale answer. A seller the body names must be that one.
    Returns the seller's stored reference hash and the authorization's id.
    """
    assert request.authorization is not None
    row = handover.find_authorization(
        conn,
        request.authorization,
        buyer_platform=request.platform,
        good_type=request.good_type,
        fingerprint=request.fingerprint,
        now=now,
    )
    seller = request.seller
    holder_ref = bytes(row.holder_ref)
    if seller.platform != row.holder_platform or (
        seller.reference is not None
        and not keys.matches(
            holder_ref, ReferenceScheme.KEYED, row.holder_platform, seller.reference
        )
    ):
        raise AuthorizationRefused("this authorization was issued by another seller")
    if (
        holding is None
        or holding.holder_platform != row.holder_platform
        or int(holding.last_transfer_id) != int(row.holding_transfer_id)
    ):
        raise DoubleSale(
            f"the seller does not hold {good} any more: it moved after the authorization",
            earlier=transfer_summary(previous) if previous is not None else None,
        )
    handover.consume_authorization(conn, int(row.id), now=now)
    return holder_ref, int(row.id)


def move_holder(
    conn: Connection,
    *,
    good_type: int,
    fingerprint: bytes,
    buyer: tuple[str, bytes],
    final: bool,
    holding: Any,
    transfer_id: int,
    good: str,
) -> None:
    """Make ``buyer`` (its platform and stored reference hash) the holder; ``final`` consumes."""
    values = {
        "holder_platform": buyer[0],
        "holder_ref": buyer[1],
        "holder_ref_scheme": int(ReferenceScheme.KEYED),
        "consumed": final,
        "last_transfer_id": transfer_id,
    }
    if holding is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    holdings_t.insert().values(
                        good_type=good_type, fingerprint=fingerprint, **values
                    )
                )
        except IntegrityError as exc:  # a racing first transfer committed first
            raise DoubleSale(
                f"the seller does not hold {good}: it was just transferred", earlier=None
            ) from exc
        return
    h = holdings_t.c
    moved = conn.execute(
        update(holdings_t)
        .where(
            h.good_type == good_type,
            h.fingerprint == fingerprint,
            h.last_transfer_id == holding.last_transfer_id,
            h.consumed.is_(False),
        )
        .values(**values)
    ).rowcount
    if moved != 1:  # the backstop: somebody moved it between our read and our write
        raise DoubleSale(f"the seller does not hold {good}: it was just transferred", None)


__all__ = [
    "authorized_seller",
    "check_seller",
    "current_holding",
    "holdings_t",
    "move_holder",
    "order_seller_holds",
    "transfer_summary",
]
