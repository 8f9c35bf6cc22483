"""Upline rebates (返点), pure: a policy's levels and the integer-exact split of a price.

A rebate policy names, for a product, the basis points of the sale price each level of the
distributor chain above the final seller earns: level 1 is the seller's direct upline,
level 2 its upline, and so on. The seller is a part too: it keeps what the levels do not
take. No database here (``registry.rebates`` stores policies and the tree).

The split (``split_rebates``) is the largest-remainder (Hamilton) rule over the parties
``seller, level 1, ..., level n`` with shares ``10,000 - sum(levels), levels[0], ...``:

1. each party gets ``floor(price * bps / 10,000)``;
2. the units left over (fewer than the number of parties: the remainders sum to a whole
   multiple of 10,000 below ``10,000 * (n + 1)``) go one each to the parties with the largest
   remainders ``price * bps mod 10,000``;
3. a tie in remainder goes to the party first in the order seller, level 1, level 2, ...
   (the seller first, then the nearest upline): fixed, so every implementation agrees.

So the parts sum exactly to the price, and each is its exact share rounded down or up. A
level whose part is 0 is refused (``RebateRoundsToZero``, 422): a policy that pays a level
nothing on this price is a policy that does not work at this price, and is said so, never a
silent zero line. ``min_price`` is the smallest price at which no level can round to zero.

NOTE: like every largest-remainder rule it is not monotone in the price step by step (the
"Alabama paradox"): price 1,454 under levels (1,991, 31) pays level 2 five units, 1,455 pays
it four. What holds (and is tested): each part is within one unit of its exact share, so a
level's part never falls by more than one as the price rises; adding 10,000 to the price adds
exactly ``bps`` to each part; a level with more bps never gets less than one with fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from registry.errors import InvalidInput
from registry.royalty import BPS_DENOMINATOR, MAX_PRICE

#: Most levels a policy may pay, and the deepest a distributor tree may be (an agent has at
#: most this many uplines): bounds the work and lines of one sale (THREATS 40).
MAX_LEVELS: Final = 16


class InvalidRebatePolicy(InvalidInput):
    """A rebate policy that cannot be applied: no levels, too many, a level out of range,
    or levels taking more than the whole price (422)."""

    code = "invalid-rebate-policy"
    http_status = 422
    diagnostics = "Give 1-16 levels of 1-10,000 bps each, together at most 10,000."


class RebateRoundsToZero(InvalidInput):
    """At this price a level's part rounds to zero: the policy is refused for this sale (422)."""

    code = "rebate-rounds-to-zero"
    http_status = 422
    diagnostics = "Raise the price to the policy's min_price, or raise that level's bps."


def check_levels(levels: Sequence[object]) -> tuple[int, ...]:
    """The levels' bps as a tuple, or ``InvalidRebatePolicy``."""
    if isinstance(levels, str | bytes) or not isinstance(levels, Sequence):
        raise InvalidRebatePolicy("levels must be a list of integers (bps per level)")
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise InvalidRebatePolicy(f"a rebate policy has 1 to {MAX_LEVELS} levels")
    checked: list[int] = []
    for number, bps in enumerate(levels, start=1):
        if type(bps) is not int or not 1 <= bps <= BPS_DENOMINATOR:
            raise InvalidRebatePolicy(
                f"level {number}: bps must be an integer from 1 to {BPS_DENOMINATOR}"
            )
        checked.append(bps)
    if sum(checked) > BPS_DENOMINATOR:
        raise InvalidRebatePolicy(
            f"levels sum to {sum(checked)} bps, more than {BPS_DENOMINATOR} (the whole price)"
        )
    return tuple(checked)


def min_price(levels: Sequence[int]) -> int:
    """The smallest price at which every level's floor share is at least one unit.

    Below it a level may still get a unit from the remainders, so a split may succeed, but at
    and above it no level ever rounds to zero.
    """
    smallest = min(check_levels(levels))
    return -(-BPS_DENOMINATOR // smallest)


@dataclass(frozen=True, slots=True)
class RebateSplit:
    """One price divided: ``levels[i]`` is level ``i + 1``'s part; ``seller`` keeps the rest."""

    price: int
    bps: tuple[int, ...]
    levels: tuple[int, ...]
    seller: int

    def __post_init__(self) -> None:
        if self.seller < 0 or self.seller + sum(self.levels) != self.price:
            raise InvalidInput("the levels' parts and the seller's must sum to the price")


def split_rebates(price: int, levels: Sequence[int]) -> RebateSplit:
    """Split ``price`` (integer minor units) among the seller and ``levels`` (bps each).

    The rule is the module's docstring; ``RebateRoundsToZero`` if a level's part is 0.
    """
    if type(price) is not int:
        raise InvalidInput("a price must be an integer amount of the currency's smallest unit")
    if not 0 <= price <= MAX_PRICE:
        raise InvalidInput(f"a price must be from 0 to {MAX_PRICE}")
    bps = check_levels(levels)
    shares = (BPS_DENOMINATOR - sum(bps), *bps)  # party 0 is the seller
    parts = [price * share // BPS_DENOMINATOR for share in shares]
    remainders = [price * share % BPS_DENOMINATOR for share in shares]
    left_over = price - sum(parts)
    # Largest remainder first; on a tie the party first in (seller, level 1, level 2, ...).
    for party in sorted(range(len(shares)), key=lambda i: (-remainders[i], i))[:left_over]:
        parts[party] += 1
    for level, part in enumerate(parts[1:], start=1):
        if part == 0:
            raise RebateRoundsToZero(
                f"at price {price} the rebate of level {level} ({bps[level - 1]} bps) rounds "
                f"to zero; this policy pays every level from price {min_price(bps)}"
            )
    return RebateSplit(price=price, bps=bps, levels=tuple(parts[1:]), seller=parts[0])


__all__ = [
    "MAX_LEVELS",
    "InvalidRebatePolicy",
    "RebateRoundsToZero",
    "RebateSplit",
    "check_levels",
    "min_price",
    "split_rebates",
]
