"""The laundering red flags about one buyer party (issue 18 item 2): ``fan-in`` and
``buyer-daily-amount``, on the transfers a party bought (``readmodels.launderrules`` has the
table of all seven and runs them; the incremental engine keeps each party's purchases in
``readmodels.launderrulesparties``). A party is a holder: a platform and the keyed hash of its
reference."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence

from readmodels.launderruleslimits import limit_for, money_code
from readmodels.market import TransferRecord
from readmodels.signals import (
    BUYER_DAILY_AMOUNT,
    FAN_IN,
    DetailPart,
    Signal,
    Subject,
    Thresholds,
    capped,
    party_name,
    says,
    transfer_evidence,
)

#: A holder as the rules key it: (platform, reference hash).
Party = tuple[str, bytes]
#: A party's purchase: the transfer, and whether its seller bought the good from the creator.
Bought = tuple[TransferRecord, bool]


def party_subject(party: Party) -> Subject:
    """A party's subject: ``platform/0x`` and its reference hash, as ``unattested-seller``'s
    (``readmodels.realnamerule``) and rebate payees name a holder (the hash is keyed per
    platform: it names the account without revealing it)."""
    return Subject("party", f"{party[0]}/0x{party[1].hex()}")


def seller_of(t: TransferRecord) -> Party | None:
    """A transfer's seller party (None: the creator)."""
    if t.seller_platform is None or t.seller_ref is None:
        return None
    return (t.seller_platform, t.seller_ref)


def platforms_of(transfers: Iterable[TransferRecord]) -> set[str]:
    """Every platform that took part in ``transfers``."""
    found: set[str] = set()
    for t in transfers:
        found |= t.platforms
    return found


def purchases(chain: Sequence[TransferRecord]) -> Iterator[tuple[Party, TransferRecord, bool]]:
    """Each transfer of one good's chain (in order) with its buyer party and whether its
    seller was a first holder: a party that bought the good from its creator before."""
    first_holders: set[Party] = set()
    for t in chain:
        seller = seller_of(t)
        buyer = (t.buyer_platform, t.buyer_ref)
        yield buyer, t, seller is not None and seller in first_holders
        if seller is None:
            first_holders.add(buyer)


def fan_in(party: Party, bought: Iterable[Bought], th: Thresholds) -> Signal | None:
    """Many first holders feeding one reseller: mule accounts each buy cards first-hand
    with dirty money and pass them to one collector. The first window holding
    ``fan_in_min_sources`` distinct sellers is the evidence."""
    fed = [t for t, from_first in bought if from_first and seller_of(t) != party]
    # Asked before sorting: the engine re-runs this for a busy buyer each time it buys.
    if len({seller_of(t) for t in fed}) < th.fan_in_min_sources:
        return None  # no window can hold enough
    fed.sort(key=lambda t: (t.created_at, t.transfer_id))
    seen: Counter[Party | None] = Counter()
    lo = 0
    for hi, t in enumerate(fed):
        seen[seller_of(t)] += 1
        while t.created_at - fed[lo].created_at > th.fan_in_window:
            gone = seller_of(fed[lo])
            seen[gone] -= 1
            if not seen[gone]:
                del seen[gone]
            lo += 1
        if len(seen) >= th.fan_in_min_sources:
            window = fed[lo : hi + 1]
            minutes = (t.created_at - fed[lo].created_at) // 60
            return Signal(
                FAN_IN,
                f"{party_name(*party)} bought from {len(seen)} distinct first holders (who "
                f"bought from the creator) within {minutes} min, {len(window)} transfer(s)",
                capped(transfer_evidence(u) for u in window),
                party_subject(party),
                tuple(dict.fromkeys(u.good for u in window)),
                tuple(sorted(platforms_of(window))),
                (
                    says(
                        FAN_IN,
                        party=party_name(*party),
                        sources=len(seen),
                        minutes=minutes,
                        transfers=len(window),
                    ),
                ),
            )
    return None


def buyer_daily_amount(party: Party, bought: Iterable[Bought], th: Thresholds) -> Signal | None:
    """One buyer above the anonymous prepaid limits of its currency: a code priced above
    ``per_code``, or more than ``per_day`` paid within ``amount_window`` (the heaviest such
    window is the evidence). Currencies without a configured limit are not judged."""
    by_currency: dict[str, list[TransferRecord]] = defaultdict(list)
    for t, _ in bought:
        code = money_code(t.currency)
        if t.price is not None and code is not None:
            by_currency[code].append(t)
    said: list[str] = []
    # NOTE: each clause a part of its own, which says the party and the unit: a page in
    # English shows ``detail`` itself, which says them once for all the clauses.
    parts: list[DetailPart] = []
    who = party_name(*party)
    flagged: dict[int, TransferRecord] = {}
    for currency in sorted(by_currency):
        limit = limit_for(th.amount_limits, currency)
        if limit is None:
            continue
        paid = by_currency[currency]
        if limit.per_code is not None:
            dear = [t for t in paid if t.price is not None and t.price > limit.per_code]
            if dear:
                said.append(f"{len(dear)} code(s) above {limit.per_code} {currency} each")
                parts.append(
                    says(
                        BUYER_DAILY_AMOUNT,
                        "per-code",
                        party=who,
                        count=len(dear),
                        limit=limit.per_code,
                        currency=currency,
                    )
                )
                flagged.update((t.transfer_id, t) for t in dear)
        # No window can hold more than all of it: most buyers stop here, unsorted.
        if limit.per_day is not None and sum(t.price or 0 for t in paid) > limit.per_day:
            paid.sort(key=lambda t: (t.created_at, t.transfer_id))
            total, start, end = _heaviest(paid, th.amount_window)
            if total > limit.per_day:
                said.append(
                    f"{total} {currency} within {th.amount_window // 3600} h "
                    f"(limit {limit.per_day})"
                )
                parts.append(
                    says(
                        BUYER_DAILY_AMOUNT,
                        "per-day",
                        party=who,
                        total=total,
                        currency=currency,
                        hours=th.amount_window // 3600,
                        limit=limit.per_day,
                    )
                )
                flagged.update((t.transfer_id, t) for t in paid[start:end])
    if not said:
        return None
    evidence = sorted(flagged.values(), key=lambda t: (t.created_at, t.transfer_id))
    return Signal(
        BUYER_DAILY_AMOUNT,
        f"{party_name(*party)} paid {'; '.join(said)} (minor units)",
        capped(transfer_evidence(t) for t in evidence),
        party_subject(party),
        tuple(dict.fromkeys(t.good for t in evidence)),
        tuple(sorted(platforms_of(evidence))),
        tuple(parts),
    )


def _heaviest(paid: Sequence[TransferRecord], window: int) -> tuple[int, int, int]:
    """The largest sum of prices of the time-sorted ``paid`` within ``window`` seconds (both
    ends included), and where it is: ``paid[start:end]`` (the first such window)."""
    best, where = 0, (0, 0)
    total, lo = 0, 0
    for hi, t in enumerate(paid):
        total += t.price or 0
        while t.created_at - paid[lo].created_at > window:
            total -= paid[lo].price or 0
            lo += 1
        if total > best:
            best, where = total, (lo, hi + 1)
    return best, *where


def party_red_flags(party: Party, bought: Iterable[Bought], th: Thresholds) -> list[Signal]:
    """The two rules about one buyer party, on the transfers it bought in the look-back."""
    items = list(bought)
    found = (fan_in(party, items, th), buyer_daily_amount(party, items, th))
    return [s for s in found if s is not None]


__all__ = [
    "Bought",
    "Party",
    "buyer_daily_amount",
    "fan_in",
    "party_red_flags",
    "party_subject",
    "platforms_of",
    "purchases",
    "seller_of",
]
