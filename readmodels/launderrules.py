"""The laundering red flags (issue 18 item 2): seven named rules over the market's records.

Laundering through point cards turns dirty money into cards and cards back into clean money:
cards bought in many small purchases or by many mule accounts, passed on fast, sold far
below what they are worth, cashed out on another platform. Each rule looks for one of those
shapes in accepted transfers (``readmodels.market``) and raises a ``Signal`` with the records
as its evidence. Five are about one good (here), two about one buyer party (a holder: platform
and reference hash; ``readmodels.launderrulesbuyers``), so the risk engine
(``readmodels.riskstate``) runs them per good and, through ``readmodels.launderrulesparties``,
per party; ``red_flags`` runs all seven over one period's records for
``readmodels.rules.evaluate``. The thresholds are ``Thresholds``' (frozen).

======================  ==================================================================  =====
code                    fires when                                                          about
======================  ==================================================================  =====
``below-face-value``    a resale (seller not the creator) priced below ``face_min_ratio``   good
                        of its product's face value in force when it was made, in that
                        face value's currency
``fast-cash-out``       registration (its leaf's time) to the consuming final transfer      good
                        within ``cash_out_window``, with a resale between
``fan-in``              ``fan_in_min_sources`` distinct first holders (who bought from the  party
                        creator) selling to one buyer party within ``fan_in_window``
``buyer-daily-amount``  one buyer party paying more than its currency's ``per_code`` for a  party
                        code, or more than ``per_day`` within ``amount_window``
``round-trip``          a single-use code back at a party that held it before (a refund,    good
                        the sale just before undone at its price, is not), at least
                        ``round_trip_min_returns`` times, unless it is a laundering ring
``verify-per-purchase`` at least ``verify_min_events`` verifications that found the good,   good
                        ``verify_min_per_purchase`` or more per accepted transfer of it
``redeemed-elsewhere``  the consuming final transfer of a code held on one platform         good
                        recorded by, or to a buyer on, another platform, for no price or
                        for less than its seller paid
======================  ==================================================================  =====

``round-trip`` and ``laundering-ring`` (``readmodels.holderrules``): a ring is a round trip
that went round at least ``ring_min_returns`` times among at most ``ring_max_parties`` parties
at rising prices. A good that is a ring raises ``laundering-ring`` only: the one case is not
reported twice; a good that came back without being a ring raises ``round-trip``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

from readmodels.holderrules import Ring, ring_of
from readmodels.launderrulesbuyers import (
    Bought,
    Party,
    party_red_flags,
    party_subject,
    platforms_of,
    purchases,
    seller_of,
)
from readmodels.launderruleslimits import money_code
from readmodels.market import (
    ANONYMOUS,
    Chains,
    EntryRecord,
    FaceSetting,
    GoodKey,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
    face_in_force,
)
from readmodels.signals import (
    BELOW_FACE_VALUE,
    FAST_CASH_OUT,
    REDEEMED_ELSEWHERE,
    ROUND_TRIP,
    VERIFY_PER_PURCHASE,
    Evidence,
    Signal,
    Thresholds,
    good_signal,
    party_name,
    says,
    transfer_evidence,
    verification_evidence,
)
from registry.eip712 import checksum_address as checksum
from registry.fingerprints import Use

_SINGLE: Final = int(Use.SINGLE)


# -- about one good ----------------------------------------------------------------------------


def below_face_value(
    good: GoodKey, chain: Sequence[TransferRecord], entry: EntryRecord | None, th: Thresholds
) -> Signal | None:
    """Resales far below the face value: a card worth 100 sold for 30 is money being moved
    (or a stolen card dumped), not a discount. The creator's own first sales are left out
    (wholesale below face value is the trade), and prices in another currency (no rate).

    Each sale is judged by the face value in force when it was made (``face_in_force``): a
    sale made while none was set is not judged, and a face value set (or raised) later never
    judges the sales before it (a creator cannot defame its resellers retroactively)."""
    if entry is None or not entry.faces:
        return None
    cheap: list[tuple[TransferRecord, int, FaceSetting]] = []
    for t in chain:
        if seller_of(t) is None or t.price is None:
            continue
        face = face_in_force(entry.faces, t.created_at)
        if face is None or face.value is None or face.value <= 0:
            continue
        if money_code(t.currency) == money_code(face.currency) and t.price < (
            th.face_min_ratio * face.value
        ):
            cheap.append((t, t.price, face))
    if not cheap:
        return None
    _, lowest, face = min(cheap, key=lambda c: c[1] / (c[2].value or 1))
    assert face.value is not None
    share = f"{lowest / face.value:.0%}"
    ratio = f"{th.face_min_ratio:.0%}"
    one_face = len({(f.value, f.currency) for _, _, f in cheap}) == 1
    if one_face:
        said = f"its face value {face.value} {face.currency}: lowest {lowest} ({share})"
    else:
        said = (
            f"the face value in force at each sale: lowest {lowest} against "
            f"{face.value} {face.currency} ({share})"
        )
    sold = [t for t, _, _ in cheap]
    return good_signal(
        BELOW_FACE_VALUE,
        f"resold {len(cheap)} time(s) below {th.face_min_ratio:.0%} of {said}",
        (transfer_evidence(t) for t in sold),
        good,
        platforms_of(sold),
        says(
            BELOW_FACE_VALUE,
            times=len(cheap),
            ratio=ratio,
            face=face.value,
            currency=f"{face.currency}",
            lowest=lowest,
            share=share,
        )
        if one_face
        else says(
            BELOW_FACE_VALUE,
            "in-force",
            times=len(cheap),
            ratio=ratio,
            face=face.value,
            currency=f"{face.currency}",
            lowest=lowest,
            share=share,
        ),
    )


def fast_cash_out(
    good: GoodKey, chain: Sequence[TransferRecord], entry: EntryRecord | None, th: Thresholds
) -> Signal | None:
    """Registered, resold and consumed within minutes: a code bought to be turned straight
    back into money, not stock waiting for a buyer. The registration's time is its leaf's
    (the sequencer's clock, in the log), so a registration not yet sequenced is not judged."""
    if entry is None or entry.timestamp is None:
        return None
    final = next((i for i, t in enumerate(chain) if t.final), None)
    if final is None:
        return None
    before = chain[:final]
    resales = [t for t in before if seller_of(t) is not None]
    elapsed = max(0, chain[final].created_at - entry.timestamp)
    if not resales or elapsed > th.cash_out_window:
        return None
    registered = Evidence(
        "entry", f"leaf {entry.leaf_index}", entry.timestamp, f"REGISTER by {checksum(entry.actor)}"
    )
    return good_signal(
        FAST_CASH_OUT,
        f"registered, resold {len(resales)} time(s) and consumed by a final transfer within "
        f"{elapsed // 60} min",
        [registered, *(transfer_evidence(t) for t in chain[: final + 1])],
        good,
        platforms_of(chain[: final + 1]),
        says(FAST_CASH_OUT, resales=len(resales), minutes=elapsed // 60),
    )


def round_trip(
    good: GoodKey,
    chain: Sequence[TransferRecord],
    entry: EntryRecord | None,
    ring: Ring | None,
    th: Thresholds,
) -> Signal | None:
    """A single-use code coming back to a party that held it before: value moved while the
    code only went round. ``ring``: the good's laundering ring (``holderrules.ring_of``),
    which reports the same case more precisely, so none is raised then. A transferable good
    (an item, a file) is left out: a collector buying one back is the trade, and one going
    round at rising prices is a ring."""
    if ring is not None or len(chain) < 2 or entry is None or entry.use != _SINGLE:
        return None
    # Where each party's holding starts, as ``ring_of`` counts it: a seller from its sale on
    # (it held it before we saw it), a buyer from the next transfer.
    held: dict[Party, int] = {}
    returns: list[int] = []
    start: int | None = None
    for i, t in enumerate(chain):
        seller = seller_of(t)
        if seller is not None:
            held.setdefault(seller, i)
        buyer = (t.buyer_platform, t.buyer_ref)
        # A transfer to itself is no trip; nor is a refund: the sale just before undone,
        # straight back to its seller at the price paid (or none).
        undone = i > 0 and _refund(chain[i - 1], t)
        if buyer in held and buyer != seller and not undone:
            returns.append(i)
            if start is None:
                start = held[buyer]
        held.setdefault(buyer, i + 1)
    if len(returns) < th.round_trip_min_returns or start is None:
        return None
    trip = chain[start : returns[-1] + 1]
    back = sorted({party_name(chain[i].buyer_platform, chain[i].buyer_ref) for i in returns})
    return good_signal(
        ROUND_TRIP,
        f"came back {len(returns)} time(s) to an earlier holder ({', '.join(back)}) "
        f"over {len(trip)} transfer(s)",
        (transfer_evidence(t) for t in trip),
        good,
        platforms_of(trip),
        says(ROUND_TRIP, returns=len(returns), holders=", ".join(back), transfers=len(trip)),
    )


def _refund(sale: TransferRecord, back: TransferRecord) -> bool:
    return (
        seller_of(back) == (sale.buyer_platform, sale.buyer_ref)
        and seller_of(sale) == (back.buyer_platform, back.buyer_ref)
        and back.price in (None, sale.price)
    )


def verify_per_purchase(
    good: GoodKey,
    chain: Sequence[TransferRecord],
    events: Iterable[VerificationEventRecord],
    th: Thresholds,
) -> Signal | None:
    """Verified many times per purchase: an honest sale is checked once or twice by its
    buyer; a card checked over and over between few sales is being shown around as a store
    of value. A good never transferred is the offer and velocity rules' matter."""
    if not chain:
        return None
    found = sorted((v for v in events if v.verdict != "unknown"), key=lambda v: (v.at, v.event_id))
    if len(found) < th.verify_min_events or len(found) < th.verify_min_per_purchase * len(chain):
        return None
    platforms = platforms_of(chain) | {v.platform for v in found if v.platform != ANONYMOUS}
    return good_signal(
        VERIFY_PER_PURCHASE,
        f"verified {len(found)} time(s) for {len(chain)} transfer(s): "
        f"{len(found) / len(chain):.1f} per purchase",
        [*(transfer_evidence(t) for t in chain[:5]), *(verification_evidence(v) for v in found)],
        good,
        platforms,
        says(
            VERIFY_PER_PURCHASE,
            verifications=len(found),
            transfers=len(chain),
            per_purchase=f"{len(found) / len(chain):.1f}",
        ),
    )


def _bought_byseller_of(chain: Sequence[TransferRecord], i: int) -> TransferRecord | None:
    """The transfer that gave ``chain[i]``'s seller the good (None: before the chain)."""
    seller = seller_of(chain[i])
    return next((u for u in reversed(chain[:i]) if (u.buyer_platform, u.buyer_ref) == seller), None)


def _cashed_out(t: TransferRecord, bought: TransferRecord | None) -> bool:
    """Consumed for no price, or for less than its seller paid (same currency): cashed out
    at a loss, as a card recycler pays; an honest retailer sells at a markup."""
    if t.price is None:
        return True
    return (
        bought is not None
        and bought.price is not None
        and money_code(bought.currency) == money_code(t.currency)
        and t.price < bought.price
    )


def redeemed_elsewhere(good: GoodKey, chain: Sequence[TransferRecord]) -> Signal | None:
    """Bought on one platform, cashed out through another: the final transfer of a code its
    seller held on platform A is recorded by, or goes to a buyer on, platform B, for no price
    or for less than the seller paid. A final sale within the holder's own platform, the
    creator's own first sale, or another platform's retail sale at a markup (with the holding
    platform's consent) is the ordinary case."""
    elsewhere = []
    for i, t in enumerate(chain):
        if not t.final or t.seller_platform is None:
            continue
        if t.platform == t.seller_platform and t.buyer_platform == t.seller_platform:
            continue
        bought = _bought_byseller_of(chain, i)
        if _cashed_out(t, bought):
            elsewhere.append((t, bought))
    if not elsewhere:
        return None
    evidence: list[TransferRecord] = []
    for t, bought in elsewhere:
        evidence += [*([bought] if bought is not None else []), t]
    t, _ = elsewhere[0]
    where = sorted({t.platform, t.buyer_platform} - {t.seller_platform})
    holder = party_name(t.seller_platform, t.seller_ref)
    on = ", ".join(where)
    return good_signal(
        REDEEMED_ELSEWHERE,
        f"held on {t.seller_platform} by {party_name(t.seller_platform, t.seller_ref)}, "
        f"consumed by a final transfer on {', '.join(where)}"
        + (" for no price" if t.price is None else f" for {t.price}, less than it paid"),
        (transfer_evidence(u) for u in evidence),
        good,
        platforms_of(evidence),
        says(
            REDEEMED_ELSEWHERE, "no-price", platform=f"{t.seller_platform}", holder=holder, where=on
        )
        if t.price is None
        else says(
            REDEEMED_ELSEWHERE,
            platform=f"{t.seller_platform}",
            holder=holder,
            where=on,
            price=t.price,
        ),
    )


def good_red_flags(
    good: GoodKey,
    chain: Sequence[TransferRecord],
    entry: EntryRecord | None,
    events: Iterable[VerificationEventRecord],
    ring: Ring | None,
    th: Thresholds,
) -> list[Signal]:
    """The five rules about one good, on its transfers in order (``Chains.by_good``), its
    REGISTER entry, its verifications and its ring (``ring_of``)."""
    if not chain:  # every one of them is about transfers (most goods have none)
        return []
    found = (
        below_face_value(good, chain, entry, th),
        fast_cash_out(good, chain, entry, th),
        round_trip(good, chain, entry, ring, th),
        verify_per_purchase(good, chain, events, th),
        redeemed_elsewhere(good, chain),
    )
    return [s for s in found if s is not None]


# -- all of them ---------------------------------------------------------------------------------


def red_flags(inputs: SignalInputs, chains: Chains, th: Thresholds) -> list[Signal]:
    """Every laundering rule over one period's records (``readmodels.rules.evaluate``)."""
    events: dict[GoodKey, list[VerificationEventRecord]] = defaultdict(list)
    for v in inputs.verifications:
        if v.good in chains.by_good:
            events[v.good].append(v)
    signals: list[Signal] = []
    bought: dict[Party, list[Bought]] = defaultdict(list)
    for good, chain in chains.by_good.items():
        entry = inputs.registrations.get(good)
        ring = ring_of(chain, th)
        signals += good_red_flags(good, chain, entry, events.get(good, ()), ring, th)
        for party, t, from_first in purchases(chain):
            bought[party].append((t, from_first))
    for party, items in bought.items():
        signals += party_red_flags(party, items, th)
    return signals


__all__ = [
    "Bought",
    "Party",
    "below_face_value",
    "fast_cash_out",
    "good_red_flags",
    "party_subject",
    "red_flags",
    "redeemed_elsewhere",
    "round_trip",
    "verify_per_purchase",
]
