"""A refused fake delivery, kept (issue 18 item 1): the refusal rolled back, so without this
nothing would say a seller's platform tried to deliver a code that is not the reserved good.

Kept as a refused transfer is (``registry.transfers.record_refused``): a ``transfer_attempts``
row in a short transaction of its own, about the order's reserved good, with the order's
parties (already keyed hashes) and terms, reason ``not-the-reserved-good``. Credit reads it
as a fake delivery refused (``registry.creditfacts``); the trace shows it as a refusal.
Nothing of the delivered code is kept (the refusal's message names it; the row does not).
"""

from __future__ import annotations

from sqlalchemy import Connection

from registry.delivery import NotTheReservedGood
from registry.orderviews import order_row
from registry.transfers import attempts_t


def record_refused_delivery(conn: Connection, order_id: int, *, platform: str, now: int) -> bool:
    """Keep a refused delivery of ``platform``'s order; False when it is no order of its."""
    row = order_row(conn, order_id)
    if row is None or row.platform != platform:
        return False
    conn.execute(
        attempts_t.insert().values(
            at=now,
            platform=row.platform,
            good_type=int(row.good_type),
            fingerprint=bytes(row.fingerprint),
            seller_platform=row.seller_platform,
            seller_ref=None if row.seller_ref is None else bytes(row.seller_ref),
            buyer_platform=row.buyer_platform,
            buyer_ref=bytes(row.buyer_ref),
            price=row.price,
            currency=row.currency,
            final=False,
            reason=NotTheReservedGood.code,
            earlier_transfer_id=None,
        )
    )
    return True


__all__ = ["record_refused_delivery"]
