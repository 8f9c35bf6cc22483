"""Rebate policies per product, and the rebates a sale pays up its seller's chain.

**Product.** A policy is for a product as DESIGN defines it: ``(creator, slug)``, the product
a creator's signed registration names (a game's "30-day card"); it covers every good
registered under that product, single or in a batch (the REGISTER entry's ``product_id``).
That is what a creator and a card platform price by: the same card at the same face value,
whatever its batch. A good registered without a product has no rebates.

**Who sets it, and which wins.** The product's creator (for sales in every platform's tree)
or a platform (for sales in its own tree only). When both have set one for a product, **the
creator's wins**, whole (levels are never mixed from two policies): the goods and their terms
are the creator's, as their royalty policy is, and a platform must not be able to rewrite
what a creator pays its distribution chain; a platform's policy fills in where the creator
has none.

**The rebates of a sale** (``upline_rebates``): on the sale's platform, the seller's uplines
nearest first are levels 1, 2, ...; a policy's level with no agent at it (a chain shorter
than the policy) pays nothing and its share stays with the seller. The split is
``registry.rebatesplit.split_rebates`` over the levels that have an agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from registry.agents import payee_of, uplines
from registry.errors import InvalidInput, UnknownProduct
from registry.leaf import EntryKind
from registry.log import entries_t
from registry.models import RebatePolicy as RebatePolicyRow
from registry.parties import check_platform_id
from registry.rebatesplit import check_levels, min_price, split_rebates
from registry.records import checksum
from registry.registration import products_t

policies_t: Table = RebatePolicyRow.__table__  # type: ignore[attr-defined]

#: The setter of a creator's own policy; a platform's is ``platform:<id>``.
CREATOR_SETTER: Final = "creator"


def platform_setter(platform: str) -> str:
    return "platform:" + check_platform_id(platform)


@dataclass(frozen=True, slots=True)
class RebatePart:
    """One level's rebate on one sale: what H1's settlement writes as a ``rebate`` line."""

    level: int
    payee: str
    bps: int
    amount: int


@dataclass(frozen=True, slots=True)
class RebatePolicyView:
    creator: bytes
    product: str
    setter: str
    levels: tuple[int, ...]
    updated_at: int

    def as_dict(self) -> dict[str, object]:
        return {
            "creator": checksum(self.creator),
            "product": self.product,
            "setter": self.setter,
            "levels": list(self.levels),
            "total_bps": sum(self.levels),
            "min_price": str(min_price(self.levels)),
            "updated_at": self.updated_at,
        }


def product_id(conn: Connection, creator: bytes, slug: str) -> int:
    """The id of the creator's product ``slug``; ``UnknownProduct`` (404) if it has none."""
    c = products_t.c
    found = conn.execute(
        select(c.id).where(c.creator == creator, c.slug == slug)
    ).scalar_one_or_none()
    if found is None:
        raise UnknownProduct(f"{checksum(creator)} has no product {slug!r}")
    return int(found)


def _levels(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split())


def set_policy(
    conn: Connection, *, creator: bytes, product: str, setter: str, levels: object, now: int
) -> RebatePolicyView:
    """Replace ``setter``'s policy for the product (``InvalidRebatePolicy``, 422, if bad)."""
    checked = check_levels(levels)  # type: ignore[arg-type]
    if setter != CREATOR_SETTER and not setter.startswith("platform:"):
        raise InvalidInput("a policy's setter is 'creator' or 'platform:<id>'")
    values = {
        "product_id": product_id(conn, creator, product),
        "setter": setter,
        "levels": " ".join(str(bps) for bps in checked),
        "updated_at": now,
    }
    insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(policies_t)
    statement = insert.values(values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["product_id", "setter"],
            set_={k: statement.excluded[k] for k in ("levels", "updated_at")},
        )
    )
    return RebatePolicyView(creator, product, setter, checked, now)


def remove_policy(conn: Connection, *, creator: bytes, product: str, setter: str) -> bool:
    """Remove ``setter``'s policy for the product; whether there was one."""
    c = policies_t.c
    result = conn.execute(
        policies_t.delete().where(
            c.product_id == product_id(conn, creator, product), c.setter == setter
        )
    )
    return bool(result.rowcount)


def policies(
    conn: Connection, *, creator: bytes, product: str, setters: tuple[str, ...]
) -> dict[str, RebatePolicyView]:
    """The product's policies by these setters (absent ones left out)."""
    c = policies_t.c
    rows = conn.execute(
        select(c.setter, c.levels, c.updated_at).where(
            c.product_id == product_id(conn, creator, product), c.setter.in_(setters)
        )
    ).all()
    return {
        r.setter: RebatePolicyView(creator, product, r.setter, _levels(r.levels), int(r.updated_at))
        for r in rows
    }


def applicable_levels(
    conn: Connection, *, product: int, platform: str
) -> tuple[str, tuple[int, ...]] | None:
    """``(setter, levels)`` of the policy that applies to a sale of ``product`` on
    ``platform``: the creator's if it set one, else the platform's, else None."""
    c = policies_t.c
    rows = conn.execute(
        select(c.setter, c.levels).where(
            c.product_id == product, c.setter.in_((CREATOR_SETTER, platform_setter(platform)))
        )
    ).all()
    by_setter = {r.setter: _levels(r.levels) for r in rows}
    for setter in (CREATOR_SETTER, platform_setter(platform)):
        if setter in by_setter:
            return setter, by_setter[setter]
    return None


def good_product(
    conn: Connection, creator: bytes, good_type: int, fingerprint: bytes
) -> int | None:
    """The product the creator registered the good under (None: none, or not its good)."""
    c = entries_t.c
    row = conn.execute(
        select(c.product_id, c.actor).where(
            c.kind == int(EntryKind.REGISTER),
            c.good_type == good_type,
            c.fingerprint == fingerprint,
        )
    ).first()
    if row is None or row.product_id is None or bytes(row.actor) != creator:
        return None
    return int(row.product_id)


def upline_rebates(
    conn: Connection,
    *,
    creator: bytes,
    good_type: int,
    fingerprint: bytes,
    platform: str,
    seller_ref: bytes | None,
    price: int,
    currency: str,
) -> list[RebatePart]:
    """The rebates a sale of the good by ``seller_ref`` on ``platform`` at ``price`` pays.

    ``[]`` when none applies: a first-hand sale by the creator (``seller_ref`` None), a price
    of 0 (nothing to share), a good with no product, no policy for its product, or a seller
    who is not in the platform's tree or has no upline. Otherwise one part per level that has
    an agent, nearest first; ``RebateRoundsToZero`` (422) if a level's part would be 0.
    ``currency`` is not used by the split (all amounts are in its minor units); it is taken
    so the caller states what it writes.
    """
    if seller_ref is None or price == 0:
        return []
    if not currency:
        raise InvalidInput("a rebate needs the sale's currency")
    product = good_product(conn, creator, good_type, fingerprint)
    if product is None:
        return []
    policy = applicable_levels(conn, product=product, platform=platform)
    if policy is None:
        return []
    _, levels = policy
    chain = uplines(conn, platform, seller_ref, len(levels))
    if not chain:
        return []
    paid = levels[: len(chain)]
    split = split_rebates(price, paid)
    return [
        RebatePart(level=level, payee=payee_of(platform, agent), bps=bps, amount=amount)
        for level, (agent, bps, amount) in enumerate(zip(chain, paid, split.levels, strict=True), 1)
    ]


__all__ = [
    "CREATOR_SETTER",
    "RebatePart",
    "RebatePolicyView",
    "applicable_levels",
    "good_product",
    "platform_setter",
    "policies",
    "policies_t",
    "product_id",
    "remove_policy",
    "set_policy",
    "upline_rebates",
]
