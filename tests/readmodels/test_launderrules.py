"""The laundering red flags (issue 18 item 2), each on hand-made records: the pattern fires,
its near miss (the honest look-alike just the other side of a threshold) stays quiet."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from pydantic import ValidationError

from readmodels import rules
from readmodels import signals as S
from readmodels.launderrules import party_subject
from readmodels.launderruleslimits import (
    DEFAULT_AMOUNT_LIMITS_TEXT,
    AmountLimit,
    parse_amount_limits,
)
from readmodels.market import (
    EntryRecord,
    FaceSetting,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
)
from registry.fingerprints import Use
from registry.settings import Settings
from tests.readmodels.test_signals import CODE, CREATOR, DAY, HOUR, T0, fp, inputs, register

_ids = itertools.count(10**6)
MIN = 60


def product(
    fingerprint: bytes, face: int | None = None, currency: str | None = None, *, at: int | None = T0
) -> EntryRecord:
    """The good's REGISTER entry; ``face``: its product's face value (minor units), set a day
    before the registration (in force for every sale of these tests)."""
    entry = register(fingerprint, at=T0 if at is None else at)
    faces = () if face is None else (FaceSetting(T0 - DAY, face, currency),)
    return dataclasses.replace(entry, faces=faces, timestamp=at)


def sale(
    fingerprint: bytes,
    seller: tuple[str, str] | None,
    buyer: tuple[str, str],
    at: int,
    *,
    price: int | None = 1_000,
    currency: str = "CNY",
    final: bool = False,
    reporter: str | None = None,
) -> TransferRecord:
    return TransferRecord(
        transfer_id=next(_ids),
        good_type=CODE,
        fingerprint=fingerprint,
        creator=CREATOR,
        platform=reporter or (seller[0] if seller is not None else buyer[0]),
        seller_platform=None if seller is None else seller[0],
        seller_ref=None if seller is None else seller[1].encode(),
        buyer_platform=buyer[0],
        buyer_ref=buyer[1].encode(),
        price=price,
        currency=None if price is None else currency,
        final=final,
        created_at=at,
    )


def check(
    fingerprint: bytes, at: int, platform: str = "cardhub", verdict: str = "authentic"
) -> VerificationEventRecord:
    return VerificationEventRecord(next(_ids), at, platform, CODE, fingerprint, "code", verdict)


def fired(records: SignalInputs, code: str, th: S.Thresholds | None = None) -> list[S.Signal]:
    return [s for s in rules.evaluate(records, th, now=T0 + 3 * DAY, since=0) if s.code == code]


def about(signal: S.Signal) -> bytes:
    (good,) = signal.goods
    return good[1]


# -- below-face-value ------------------------------------------------------------------------


def test_below_face_value_fires_on_a_resale_far_below_face_in_the_same_currency() -> None:
    dumped, fair, wholesale, dollars, faceless = fp(), fp(), fp(), fp(), fp()
    entries = [
        product(dumped, 10_000, "CNY"),
        product(fair, 10_000, "CNY"),
        product(wholesale, 10_000, "CNY"),
        product(dollars, 10_000, "CNY"),
        product(faceless),
    ]
    transfers = [
        sale(dumped, None, ("cardhub", "a"), T0, price=9_000),
        sale(dumped, ("cardhub", "a"), ("cardhub", "b"), T0 + HOUR, price=4_999),
        # Near misses: exactly half the face; the creator's own first sale far below face
        # (wholesale); a price in another currency; a product without a face value.
        sale(fair, None, ("cardhub", "a"), T0, price=9_000),
        sale(fair, ("cardhub", "a"), ("cardhub", "c"), T0 + HOUR, price=5_000),
        sale(wholesale, None, ("cardhub", "a"), T0, price=3_000),
        sale(dollars, None, ("cardhub", "a"), T0, price=9_000),
        sale(dollars, ("cardhub", "a"), ("cardhub", "d"), T0 + HOUR, price=100, currency="USD"),
        sale(faceless, None, ("cardhub", "a"), T0, price=9_000),
        sale(faceless, ("cardhub", "a"), ("cardhub", "e"), T0 + HOUR, price=1),
    ]
    [signal] = fired(inputs(entries, transfers), S.BELOW_FACE_VALUE)
    assert about(signal) == dumped
    assert "face value 10000 CNY" in signal.detail and "lowest 4999 (50%)" in signal.detail
    assert [e.ref for e in signal.evidence] == [f"transfer {transfers[1].transfer_id}"]


def test_below_face_value_judges_each_sale_by_the_face_value_in_force_when_it_was_made() -> None:
    # A creator setting (or raising) a face value cannot make earlier resales "below face
    # value": each sale meets the setting made before its second, none if there was none.
    good = fp()
    a, b = ("cardhub", "a"), ("cardhub", "b")
    faces = (
        FaceSetting(T0 + HOUR, 10_000, "CNY"),  # set after the first resale
        FaceSetting(T0 + 3 * HOUR, 1_000, "CNY"),  # lowered
        FaceSetting(T0 + 5 * HOUR, 100_000, "CNY"),  # raised a hundredfold
        FaceSetting(T0 + 7 * HOUR, None, None),  # cleared
    )
    entry = dataclasses.replace(register(good, at=T0), faces=faces)
    resales = [
        (T0 + HOUR - 1, 1),  # before any face value: not judged
        (T0 + HOUR, 2),  # the setting's own second: it may have come first, not judged
        (T0 + HOUR + 1, 4_999),  # below half of 10,000
        (T0 + 3 * HOUR + 1, 4_999),  # fair against 1,000
        (T0 + 5 * HOUR + 1, 40_000),  # below half of 100,000
        (T0 + 7 * HOUR + 1, 1),  # cleared: not judged
    ]
    transfers = [sale(good, None, a, T0, price=9_000)]
    for at, price in resales:
        transfers.append(sale(good, a, b, at, price=price))
        a, b = b, a
    [signal] = fired(inputs([entry], transfers), S.BELOW_FACE_VALUE)
    cheap = [transfers[3], transfers[5]]
    assert [e.ref for e in signal.evidence] == [f"transfer {t.transfer_id}" for t in cheap]
    assert "of the face value in force at each sale: lowest 40000 against 100000 CNY (40%)" in (
        signal.detail
    )


# -- fast-cash-out ---------------------------------------------------------------------------


def test_fast_cash_out_fires_on_registration_resale_and_redemption_within_minutes() -> None:
    fast, slow, direct, queued = fp(), fp(), fp(), fp()
    entries = [product(fast), product(slow), product(direct), product(queued, at=None)]
    entries[-1] = dataclasses.replace(entries[-1], timestamp=None, leaf_index=None)

    def flow(good: bytes, final_at: int) -> list[TransferRecord]:
        return [
            sale(good, None, ("cardhub", "mule"), T0 + 2 * MIN),
            sale(good, ("cardhub", "mule"), ("cardhub", "boss"), T0 + 5 * MIN),
            sale(good, ("cardhub", "boss"), ("cardhub", "end"), final_at, final=True),
        ]

    transfers = [
        *flow(fast, T0 + 30 * MIN),
        # Near misses: consumed a second past the window; sold by its creator's distributor
        # straight to the end user in a minute (no resale); a registration not yet sequenced.
        *flow(slow, T0 + 30 * MIN + 1),
        sale(direct, None, ("cardhub", "end"), T0 + MIN, final=True),
        *flow(queued, T0 + 10 * MIN),
    ]
    [signal] = fired(inputs(entries, transfers), S.FAST_CASH_OUT)
    assert about(signal) == fast
    assert "resold 1 time(s)" in signal.detail and "within 30 min" in signal.detail
    assert signal.evidence[0].kind == "entry" and len(signal.evidence) == 4


# -- fan-in ----------------------------------------------------------------------------------


def _mules(
    n: int, collector: tuple[str, str], start: int, gap: int, tag: str
) -> tuple[list[EntryRecord], list[TransferRecord]]:
    """``n`` accounts each buying a card from the creator and selling it on to ``collector``."""
    entries, transfers = [], []
    for i in range(n):
        good, mule = fp(), (f"site{i % 3}", f"{tag}{i}")
        entries.append(product(good))
        transfers.append(sale(good, None, mule, start + i * gap))
        transfers.append(sale(good, mule, collector, start + i * gap + MIN))
    return entries, transfers


def test_fan_in_fires_when_many_first_holders_feed_one_buyer_within_the_window() -> None:
    th = S.Thresholds()
    boss = ("cardhub", "boss")
    e1, t1 = _mules(th.fan_in_min_sources, boss, T0, 2 * HOUR, "m")
    # Near misses: one source fewer; as many sources over three days; as many sellers who
    # bought from a reseller, not from the creator (a trader's suppliers).
    few, far, traded = ("cardhub", "few"), ("cardhub", "far"), ("cardhub", "trader")
    e2, t2 = _mules(th.fan_in_min_sources - 1, few, T0, HOUR, "f")
    e3, t3 = _mules(th.fan_in_min_sources, far, T0, 8 * HOUR, "s")
    e4, t4 = [], []
    for i in range(th.fan_in_min_sources):
        good = fp()
        e4.append(product(good))
        t4 += [
            sale(good, None, ("keyshop", "stock"), T0),
            sale(good, ("keyshop", "stock"), ("keyshop", f"r{i}"), T0 + i * MIN),
            sale(good, ("keyshop", f"r{i}"), traded, T0 + HOUR + i * MIN),
        ]
    records = inputs([*e1, *e2, *e3, *e4], [*t1, *t2, *t3, *t4])
    [signal] = fired(records, S.FAN_IN)
    assert signal.subject == party_subject(("cardhub", boss[1].encode()))
    assert signal.subject.kind == "party" and len(signal.goods) == th.fan_in_min_sources
    assert f"from {th.fan_in_min_sources} distinct first holders" in signal.detail
    assert signal.platforms == ("cardhub", "site0", "site1", "site2")


# -- buyer-daily-amount ----------------------------------------------------------------------


def _buys(
    buyer: tuple[str, str], prices: list[int], gap: int, currency: str = "CNY", start: int = T0
) -> tuple[list[EntryRecord], list[TransferRecord]]:
    entries, transfers = [], []
    for i, price in enumerate(prices):
        good = fp()
        entries.append(product(good))
        transfers.append(sale(good, None, buyer, start + i * gap, price=price, currency=currency))
    return entries, transfers


def test_buyer_daily_amount_fires_per_code_and_per_day_by_currency() -> None:
    dear, many = ("cardhub", "dear"), ("keyshop", "many")
    parts = [
        _buys(dear, [100_001], HOUR),  # one card above 1,000 yuan
        _buys(many, [100_000] * 10, HOUR),  # 10,000 yuan within a day: real-name from there
        # Near misses: a card at exactly 1,000 yuan; 9,999.99 yuan in a day; 10,000 yuan
        # over 25 hours; dearer cards in a currency with no configured limit; EUR has no
        # daily limit.
        _buys(("cardhub", "edge"), [100_000], HOUR),
        _buys(("cardhub", "under"), [100_000] * 9 + [99_999], HOUR),
        _buys(("cardhub", "under"), [50_000], HOUR, start=T0 + 2 * DAY),  # another day
        _buys(("cardhub", "slow"), [100_000] * 10, 25 * HOUR // 9),
        _buys(("cardhub", "pounds"), [10**7], HOUR, "GBP"),
        _buys(("cardhub", "euros"), [15_000] * 100, MIN, "EUR"),
    ]
    records = inputs([e for p in parts for e in p[0]], [t for p in parts for t in p[1]])
    found = {s.subject.id: s for s in fired(records, S.BUYER_DAILY_AMOUNT)}
    assert set(found) == {
        party_subject(("cardhub", b"dear")).id,
        party_subject(("keyshop", b"many")).id,
    }
    assert "1 code(s) above 100000 CNY each" in found[party_subject(("cardhub", b"dear")).id].detail
    daily = found[party_subject(("keyshop", b"many")).id]
    assert "1000000 CNY within 24 h (limit 999999)" in daily.detail and len(daily.goods) == 10
    # Configurable per currency: a limit for GBP makes the pound buyer's card count.
    th = S.Thresholds(amount_limits=(AmountLimit("GBP", 5_000_000, None, "an operator's"),))
    [pounds] = fired(records, S.BUYER_DAILY_AMOUNT, th)
    assert pounds.subject == party_subject(("cardhub", b"pounds"))


def test_yuan_under_another_spelling_is_judged_as_yuan() -> None:
    # The red team dodged every amount rule by reporting yuan as RMB or CNH (a transfer's
    # currency is the platform's free text): those, lower case and full-width letters are
    # CNY to the rules; a real other currency is not.
    spellings = ["RMB", "cnh", " rmb", "\uff23\uff2e\uff39"]
    parts = [_buys(("cardhub", f"alias{i}"), [100_001], HOUR, c) for i, c in enumerate(spellings)]
    parts.append(_buys(("cardhub", "yen"), [100_001], HOUR, "JPY"))
    dumped = fp()
    entries = [product(dumped, 10_000, "CNY")]
    transfers = [
        sale(dumped, None, ("cardhub", "a"), T0, price=9_000),
        sale(dumped, ("cardhub", "a"), ("cardhub", "b"), T0 + HOUR, price=100, currency="RMB"),
    ]
    records = inputs(
        entries + [e for p in parts for e in p[0]], transfers + [t for p in parts for t in p[1]]
    )
    found = {s.subject.id for s in fired(records, S.BUYER_DAILY_AMOUNT)}
    assert found == {party_subject(("cardhub", f"alias{i}".encode())).id for i in range(4)}
    [cheap] = fired(records, S.BELOW_FACE_VALUE)
    assert about(cheap) == dumped


# -- round-trip ------------------------------------------------------------------------------


def test_round_trip_fires_when_a_good_comes_back_and_a_ring_is_reported_once() -> None:
    back, refund, relabel, ring, bought_back = fp(), fp(), fp(), fp(), fp()
    a, b, c = ("cardhub", "a"), ("keyshop", "b"), ("gamemart", "c")
    transfers = [
        sale(back, None, a, T0),
        sale(back, a, b, T0 + HOUR, price=1_000),
        sale(back, b, a, T0 + 2 * HOUR, price=900),
        # Near misses: a refund (the sale undone at its price); back on the same platform
        # but to another account.
        sale(refund, None, a, T0),
        sale(refund, a, b, T0 + HOUR, price=1_000),
        sale(refund, b, a, T0 + 2 * HOUR, price=1_000),
        sale(relabel, None, a, T0),
        sale(relabel, a, b, T0 + HOUR),
        sale(relabel, b, ("cardhub", "a2"), T0 + 2 * HOUR),
        # ... and a transferable good (an item) bought back by its first holder.
        sale(bought_back, None, a, T0),
        sale(bought_back, a, b, T0 + HOUR, price=1_000),
        sale(bought_back, b, a, T0 + 2 * HOUR, price=900),
    ]
    # A laundering ring (three returns among three parties, rising prices): that one only.
    price = 1_000
    transfers.append(sale(ring, None, a, T0, price=price))
    for hop in range(1, 8):
        price = int(price * 1.2)
        seller, buyer = (a, b, c)[(hop - 1) % 3], (a, b, c)[hop % 3]
        transfers.append(sale(ring, seller, buyer, T0 + hop * HOUR, price=price))
    item = dataclasses.replace(product(bought_back), use=int(Use.TRANSFERABLE))
    records = inputs([*(product(g) for g in (back, refund, relabel, ring)), item], transfers)
    [signal] = fired(records, S.ROUND_TRIP)
    assert about(signal) == back and "came back 1 time(s)" in signal.detail
    assert [about(s) for s in fired(records, S.LAUNDERING_RING)] == [ring]


# -- verify-per-purchase ---------------------------------------------------------------------


def test_verify_per_purchase_fires_on_many_verifications_for_few_transfers() -> None:
    th = S.Thresholds()
    shown, busy, unsold, probed = fp(), fp(), fp(), fp()
    n = th.verify_min_events
    transfers = [
        sale(shown, None, ("cardhub", "a"), T0),
        sale(shown, ("cardhub", "a"), ("cardhub", "b"), T0 + DAY),
        *(sale(busy, None, ("cardhub", f"x{i}"), T0 + i * HOUR) for i in range(1)),
        *(
            sale(busy, ("cardhub", f"x{i}"), ("cardhub", f"x{i + 1}"), T0 + (i + 1) * HOUR)
            for i in range(2)
        ),
        sale(probed, None, ("cardhub", "a"), T0),
    ]
    events = [
        *(check(shown, T0 + i * MIN) for i in range(2 * int(th.verify_min_per_purchase))),
        # Near misses: the same count over three transfers (below the ratio); a good never
        # transferred (the offer rules' matter); lookups that did not find it.
        *(check(busy, T0 + i * MIN) for i in range(2 * int(th.verify_min_per_purchase))),
        *(check(unsold, T0 + i * MIN) for i in range(3 * n)),
        *(check(probed, T0 + i * MIN, verdict="unknown") for i in range(3 * n)),
        *(check(probed, T0 + i * MIN) for i in range(n - 1)),
    ]
    records = inputs([product(g) for g in (shown, busy, unsold, probed)], transfers, [], events)
    [signal] = fired(records, S.VERIFY_PER_PURCHASE)
    assert about(signal) == shown and "8.0 per purchase" in signal.detail
    assert [e.kind for e in signal.evidence[:3]] == ["transfer", "transfer", "verification"]


# -- redeemed-elsewhere ----------------------------------------------------------------------


def test_redeemed_elsewhere_fires_when_a_code_bought_on_one_platform_is_spent_on_another() -> None:
    cashed, pushed, retail, local, direct, restocked = fp(), fp(), fp(), fp(), fp(), fp()
    transfers = [
        sale(cashed, None, ("gamemart", "u"), T0),
        # Bought on gamemart, consumed through cashpoint for no price (it presents
        # gamemart's hand-over) ...
        sale(
            cashed,
            ("gamemart", "u"),
            ("cashpoint", "v"),
            T0 + HOUR,
            price=None,
            final=True,
            reporter="cashpoint",
        ),
        # ... or gamemart reports the final sale to a recycler on cashpoint, below the price.
        sale(pushed, None, ("gamemart", "u"), T0),
        sale(pushed, ("gamemart", "u"), ("cashpoint", "v"), T0 + HOUR, price=999, final=True),
        # Near misses: sold to a buyer on another platform at the price it was bought for (a
        # retailer's consented sale); consumed on the platform it was bought on; the
        # creator's distributor selling it to its end user; another platform buys it into
        # stock, then sells it on.
        sale(retail, None, ("gamemart", "u"), T0),
        sale(retail, ("gamemart", "u"), ("cashpoint", "v"), T0 + HOUR, final=True),
        sale(local, None, ("gamemart", "u"), T0),
        sale(local, ("gamemart", "u"), ("gamemart", "w"), T0 + HOUR, final=True),
        sale(direct, None, ("cashpoint", "v"), T0, final=True, reporter="cashpoint"),
        sale(restocked, None, ("gamemart", "u"), T0),
        sale(restocked, ("gamemart", "u"), ("keyshop", "stock"), T0 + HOUR, reporter="keyshop"),
        sale(restocked, ("keyshop", "stock"), ("keyshop", "end"), T0 + 2 * HOUR, final=True),
    ]
    goods = (cashed, pushed, retail, local, direct, restocked)
    records = inputs([product(g) for g in goods], transfers)
    found = {about(s): s for s in fired(records, S.REDEEMED_ELSEWHERE)}
    assert set(found) == {cashed, pushed}
    signal = found[cashed]
    assert "held on gamemart" in signal.detail
    assert "final transfer on cashpoint for no price" in signal.detail
    assert "for 999, less than it paid" in found[pushed].detail
    assert [e.ref for e in signal.evidence] == [
        f"transfer {transfers[0].transfer_id}",
        f"transfer {transfers[1].transfer_id}",
    ]
    assert signal.platforms == ("cashpoint", "gamemart")


@pytest.mark.parametrize("code", sorted(S.WEIGHTS))
def test_every_code_has_a_weight_between_zero_and_one(code: str) -> None:
    assert 0 <= S.WEIGHTS[code] < 1


# -- the amount limits' settings -------------------------------------------------------------


def test_the_amount_limits_setting_reads_as_the_published_defaults_and_refuses_garbage() -> None:
    assert Settings().amount_limits == DEFAULT_AMOUNT_LIMITS_TEXT
    assert parse_amount_limits(DEFAULT_AMOUNT_LIMITS_TEXT) == S.Thresholds().amount_limits
    own = parse_amount_limits("HKD=80000:-, CNY=50000:500000")
    assert [(a.currency, a.per_code, a.per_day) for a in own] == [
        ("HKD", 80_000, None),
        ("CNY", 50_000, 500_000),
    ]
    assert own[1].source == "TRACEMARK_AMOUNT_LIMITS"  # not the PBOC's numbers any more
    assert parse_amount_limits("") == ()  # nothing judged
    for bad in ("CNY=1", "cny=1:2", "CNY=1:x", "CNY=-1:2", "CNY=1:2,CNY=3:4", "=1:2"):
        with pytest.raises(ValueError):
            parse_amount_limits(bad)
    with pytest.raises(ValidationError):
        Settings(amount_limits="CNY=1")
