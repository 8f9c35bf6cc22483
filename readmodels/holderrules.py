"""The rules about who holds a good: duplicate claims, sales and offers by a non-holder,
transfers of a dead good, and laundering rings (``readmodels.rules`` runs them)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping

from readmodels.market import (
    REFUSED_CONSUMED,
    REFUSED_DOUBLE_SALE,
    REFUSED_NOT_DISTRIBUTOR,
    REFUSED_NOT_THE_HOLDER,
    REFUSED_REVOKED,
    AttemptRecord,
    Chains,
    EntryRecord,
    GoodKey,
    TransferRecord,
    VerificationEventRecord,
    single_use_verifications,
)
from readmodels.signals import (
    DEAD_GOOD_TRANSFER,
    DUPLICATE_CLAIM,
    LAUNDERING_RING,
    OFFERED_BY_NON_HOLDER,
    SOLD_BY_NON_HOLDER,
    Evidence,
    Signal,
    Thresholds,
    attempt_evidence,
    good_signal,
    party_name,
    says,
    transfer_evidence,
    verification_evidence,
)
from registry.eip712 import checksum_address as checksum
from registry.leaf import EntryKind


def _is_retry(attempt: AttemptRecord, accepted: TransferRecord | None, th: Thresholds) -> bool:
    """A refused report repeating the accepted one: the platform retried without a key."""
    return (
        accepted is not None
        and accepted.platform == attempt.platform
        and accepted.seller_platform == attempt.seller_platform
        and accepted.seller_ref == attempt.seller_ref
        and accepted.buyer_platform == attempt.buyer_platform
        and accepted.buyer_ref == attempt.buyer_ref
        and accepted.price == attempt.price
        and 0 <= attempt.at - accepted.created_at <= th.retry_window
    )


def duplicate_claims(
    registrations: Mapping[GoodKey, EntryRecord], conflicts: Iterable[EntryRecord]
) -> list[Signal]:
    """Duplicate content claimed by different creators: one signal per contested good."""
    by_good: dict[GoodKey, list[EntryRecord]] = defaultdict(list)
    for entry in conflicts:
        if entry.kind == int(EntryKind.CONFLICT):
            by_good[entry.good].append(entry)
    signals = []
    for good, claims in by_good.items():
        claims.sort(key=lambda e: (e.leaf_index is None, e.leaf_index or 0, e.entry_id))
        first = registrations.get(good)
        evidence = []
        if first is not None:
            evidence.append(
                Evidence(
                    "entry",
                    f"leaf {first.leaf_index}",
                    first.timestamp,
                    f"REGISTER by {checksum(first.actor)}",
                )
            )
        evidence += [
            Evidence(
                "entry", f"leaf {c.leaf_index}", c.timestamp, f"CONFLICT by {checksum(c.actor)}"
            )
            for c in claims
        ]
        owner = "its creator" if first is None else checksum(first.actor)
        claimants = sorted({checksum(c.actor) for c in claims})
        named = ", ".join(claimants)
        signals.append(
            good_signal(
                DUPLICATE_CLAIM,
                f"registered first by {owner}; later claimed by {', '.join(claimants)}"
                f" ({len(claims)} claim(s), log order proves who was first)",
                evidence,
                good,
                (),
                says(DUPLICATE_CLAIM, "unregistered", claimants=named, claims=len(claims))
                if first is None
                else says(DUPLICATE_CLAIM, owner=owner, claimants=named, claims=len(claims)),
            )
        )
    return signals


def sold_by_non_holder(
    attempts: Iterable[AttemptRecord], chains: Chains, th: Thresholds
) -> list[Signal]:
    """Refused double sales (the seller did not hold the good), retries left out, first
    sales claimed by a platform the creator did not name as a distributor, and goods another
    platform holds claimed without its consent (``not-the-holder``)."""
    by_good: dict[GoodKey, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        if a.reason not in (REFUSED_DOUBLE_SALE, REFUSED_NOT_DISTRIBUTOR, REFUSED_NOT_THE_HOLDER):
            continue
        if _is_retry(a, chains.transfer(a.earlier_transfer_id), th):
            continue
        by_good[a.good].append(a)
    signals = []
    for good, found in by_good.items():
        found.sort(key=lambda a: (a.at, a.attempt_id))
        evidence = [attempt_evidence(a) for a in found]
        earlier = next(
            (
                chains.transfer(a.earlier_transfer_id)
                for a in found
                if a.earlier_transfer_id is not None
            ),
            None,
        )
        if earlier is not None:
            evidence.insert(0, transfer_evidence(earlier))
        doubles = [a for a in found if a.reason == REFUSED_DOUBLE_SALE]
        unnamed = sorted({a.platform for a in found if a.reason == REFUSED_NOT_DISTRIBUTOR})
        unasked = sorted({a.platform for a in found if a.reason == REFUSED_NOT_THE_HOLDER})
        sellers = sorted({party_name(a.seller_platform, a.seller_ref) for a in doubles})
        said = []
        parts = []
        if doubles:
            said.append(f"sold {len(doubles)} time(s) by {', '.join(sellers)}, who did not hold it")
            parts.append(
                says(SOLD_BY_NON_HOLDER, "sold", times=len(doubles), sellers=", ".join(sellers))
            )
        if unnamed:
            said.append(
                f"claimed first-hand from its creator by {', '.join(unnamed)}, "
                "not among the creator's distributors"
            )
            parts.append(says(SOLD_BY_NON_HOLDER, "first-hand", platforms=", ".join(unnamed)))
        if unasked:
            said.append(
                f"claimed from another platform's holder by {', '.join(unasked)}, "
                "without that platform's consent"
            )
            parts.append(says(SOLD_BY_NON_HOLDER, "from-holder", platforms=", ".join(unasked)))
        concerned = {a.platform for a in found} | ({earlier.buyer_platform} if earlier else set())
        signals.append(
            good_signal(SOLD_BY_NON_HOLDER, "; ".join(said), evidence, good, concerned, *parts)
        )
    return signals


def dead_good_transfers(
    attempts: Iterable[AttemptRecord], chains: Chains, th: Thresholds
) -> list[Signal]:
    """Refused transfers of revoked or consumed goods, retries of the final sale left out."""
    by_good: dict[GoodKey, list[AttemptRecord]] = defaultdict(list)
    for a in attempts:
        if a.reason == REFUSED_REVOKED or (
            a.reason == REFUSED_CONSUMED
            and not _is_retry(a, chains.transfer(a.earlier_transfer_id), th)
        ):
            by_good[a.good].append(a)
    signals = []
    for good, found in by_good.items():
        found.sort(key=lambda a: (a.at, a.attempt_id))
        reasons = sorted({a.reason for a in found})
        # The reasons are words a page translates: each set of them is a variant.
        n = len(found)
        if len(reasons) > 1:
            says_it = says(DEAD_GOOD_TRANSFER, "consumed-revoked", attempts=n)
        elif reasons == [REFUSED_REVOKED]:
            says_it = says(DEAD_GOOD_TRANSFER, "revoked", attempts=n)
        else:
            says_it = says(DEAD_GOOD_TRANSFER, "consumed", attempts=n)
        signals.append(
            good_signal(
                DEAD_GOOD_TRANSFER,
                f"{len(found)} transfer attempt(s) of a {' and '.join(reasons)} good",
                (attempt_evidence(a) for a in found),
                good,
                {a.platform for a in found},
                says_it,
            )
        )
    return signals


def offered_by_non_holder(
    verifications: Iterable[VerificationEventRecord],
    chains: Chains,
    registrations: Mapping[GoodKey, EntryRecord],
    th: Thresholds,
    *,
    now: int,
) -> list[Signal]:
    """A single-use code, after it moved, verified on platforms that are not its holder's and
    that do not acquire it within ``offer_grace``: someone is offering what they do not hold.

    Fires at once for a consumed code (a used card offered again); otherwise when
    ``offer_min_platforms`` such platforms saw it, since one platform checking a code and not
    buying it is an honest declined offer.
    """
    foreign: dict[GoodKey, dict[str, VerificationEventRecord]] = defaultdict(dict)
    consumed_offer: set[GoodKey] = set()
    for v in single_use_verifications(verifications, registrations):
        moved, holder, consumed = chains.state_at(v.good, v.at)
        if not moved or v.platform == holder or chains.dealt_by(v.good, v.platform, v.at):
            continue
        if not consumed:
            if v.at + th.offer_grace > now:
                continue  # it may still record buying it
            if chains.dealt_by(v.good, v.platform, v.at + th.offer_grace):
                continue
        else:
            consumed_offer.add(v.good)
        foreign[v.good].setdefault(v.platform, v)
    signals = []
    for good, seen in foreign.items():
        if good not in consumed_offer and len(seen) < th.offer_min_platforms:
            continue
        found = sorted(seen.values(), key=lambda v: (v.at, v.event_id))
        state = "after it was consumed" if good in consumed_offer else "while another party held it"
        where = ", ".join(seen)
        signals.append(
            good_signal(
                OFFERED_BY_NON_HOLDER,
                f"offered on {len(found)} platform(s) that never held it ({', '.join(seen)}) "
                f"{state}",
                (verification_evidence(v) for v in found),
                good,
                seen,
                says(OFFERED_BY_NON_HOLDER, "consumed", count=len(found), platforms=where)
                if good in consumed_offer
                else says(OFFERED_BY_NON_HOLDER, "held", count=len(found), platforms=where),
            )
        )
    return signals


#: A good's ring, as ``ring_of`` finds it: the cycle's transfers, its parties, its returns.
Ring = tuple[list[TransferRecord], frozenset[tuple[str, bytes]], int]


def ring_of(chain: list[TransferRecord], th: Thresholds) -> Ring | None:
    """The ring one good's chain (in order) went round, if it did: ``laundering_rings``'s
    test for one good (the risk engine, ``readmodels.riskstate``, asks it per good)."""
    if len(chain) < th.ring_min_returns + 2:
        return None
    # Where each party's holding starts: a seller held it from its sale's index on (it
    # held it before we saw it), a buyer from the next transfer.
    held: dict[tuple[str, bytes], int] = {}
    returns, start = 0, None
    for i, t in enumerate(chain):
        if t.seller_platform is not None and t.seller_ref is not None:
            held.setdefault((t.seller_platform, t.seller_ref), i)
        buyer = (t.buyer_platform, t.buyer_ref)
        if buyer in held:
            returns += 1
            if start is None:
                start = held[buyer]
        held.setdefault(buyer, i + 1)
    if returns < th.ring_min_returns or start is None:
        return None
    cycle = chain[start:]
    narrowed: set[tuple[str, bytes]] = set()
    for t in cycle:
        narrowed.add((t.buyer_platform, t.buyer_ref))
        if t.seller_platform is not None and t.seller_ref is not None:
            narrowed.add((t.seller_platform, t.seller_ref))
    prices = [t.price for t in cycle if t.price is not None]
    if len(narrowed) > th.ring_max_parties or len(prices) < 2 or prices[0] <= 0:
        return None
    rising = all(b > a for a, b in itertools.pairwise(prices))
    if not rising or prices[-1] < th.ring_min_growth * prices[0]:
        return None
    return cycle, frozenset(narrowed), returns


def ring_signal(good: GoodKey, ring: Ring, others: int) -> Signal:
    """The signal of one good's ring; ``others``: goods the same parties went round."""
    cycle, parties, returns = ring
    prices = [t.price for t in cycle if t.price is not None]
    names = ", ".join(sorted(party_name(p, r) for p, r in parties))
    went = says(
        LAUNDERING_RING,
        parties=len(parties),
        names=names,
        returns=returns,
        first_price=prices[0],
        last_price=prices[-1],
    )
    return good_signal(
        LAUNDERING_RING,
        f"went round {len(parties)} parties ({names}) {returns} time(s) back to an "
        f"earlier holder, price {prices[0]} -> {prices[-1]}"
        + (f"; the same parties did this with {others} other good(s)" if others else ""),
        (transfer_evidence(t) for t in cycle),
        good,
        {p for p, _ in parties},
        *((went, says(LAUNDERING_RING, "others", others=others)) if others else (went,)),
    )


def laundering_rings(chains: Chains, th: Thresholds) -> list[Signal]:
    """A good passed around the same few parties, returning to earlier holders, at rising
    prices: the value moves, the good only goes round (laundering through game cards)."""
    rings: dict[frozenset[tuple[str, bytes]], list[GoodKey]] = defaultdict(list)
    found: list[tuple[GoodKey, Ring]] = []
    for good, chain in chains.by_good.items():
        ring = ring_of(chain, th)
        if ring is not None:
            rings[ring[1]].append(good)
            found.append((good, ring))
    return [ring_signal(good, ring, len(rings[ring[1]]) - 1) for good, ring in found]


__all__ = [
    "Ring",
    "dead_good_transfers",
    "duplicate_claims",
    "laundering_rings",
    "offered_by_non_holder",
    "ring_of",
    "ring_signal",
    "sold_by_non_holder",
]
