"""Fraud signals: each rule on hand-made records (it fires on the pattern and stays quiet on
its honest twin), the anomaly score's properties, the risk index, and refused transfers
recorded for the rules on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Sequence

import pytest
from eth_account import Account
from sqlalchemy import Engine, func, select

from readmodels import rules
from readmodels import signals as S
from readmodels.anomaly import FLOORS, Scale, anomaly_score, score_population
from readmodels.market import (
    AttemptRecord,
    EntryRecord,
    ProbeFlag,
    SignalInputs,
    TransferRecord,
    VerificationEventRecord,
)
from readmodels.marketreads import read_inputs
from readmodels.riskindex import RiskIndex
from readmodels.riskworker import RiskWorker, record_probe_flags, risk_goods_t, risk_signals_t
from registry.creator import CreatorKeys, sign_revocation
from registry.db import write_transaction
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import (
    DoubleSale,
    GoodConsumed,
    GoodRevoked,
    Party,
    TransferRequest,
    attempts_t,
    transfers_t,
)
from tests.conftest import Clock
from tests.registry.helpers import counts, registration

T0 = 1_790_000_000
HOUR = 3_600
DAY = 86_400
CODE, FILE = int(GoodType.CODE), int(GoodType.FILE)
CREATOR = b"\x11" * 20
OTHER = b"\x22" * 20
_ids = itertools.count(1)


def fp() -> bytes:
    return os.urandom(32)


def register(
    fingerprint: bytes,
    *,
    good_type: int = CODE,
    batch: int = 1,
    position: int | None = 0,
    actor: bytes = CREATOR,
    kind: int = int(EntryKind.REGISTER),
    at: int = T0,
) -> EntryRecord:
    use = int(Use.SINGLE if good_type == CODE else Use.TRANSFERABLE)
    i = next(_ids)
    return EntryRecord(i, kind, good_type, fingerprint, actor, i, at, batch, position, use)


def transfer(
    fingerprint: bytes,
    seller: tuple[str, str] | None,
    buyer: tuple[str, str],
    at: int,
    *,
    price: int | None = 1_000,
    final: bool = False,
    reporter: str | None = None,
    good_type: int = CODE,
) -> TransferRecord:
    return TransferRecord(
        transfer_id=next(_ids),
        good_type=good_type,
        fingerprint=fingerprint,
        creator=CREATOR,
        platform=reporter or buyer[0],
        seller_platform=None if seller is None else seller[0],
        seller_ref=None if seller is None else seller[1].encode(),
        buyer_platform=buyer[0],
        buyer_ref=buyer[1].encode(),
        price=price,
        currency=None if price is None else "EUR",
        final=final,
        created_at=at,
    )


def attempt(
    fingerprint: bytes,
    seller: tuple[str, str] | None,
    buyer: tuple[str, str],
    at: int,
    reason: str,
    *,
    earlier: TransferRecord | None = None,
    price: int | None = 1_000,
    reporter: str | None = None,
) -> AttemptRecord:
    return AttemptRecord(
        attempt_id=next(_ids),
        at=at,
        platform=reporter or buyer[0],
        good_type=CODE,
        fingerprint=fingerprint,
        seller_platform=None if seller is None else seller[0],
        seller_ref=None if seller is None else seller[1].encode(),
        buyer_platform=buyer[0],
        buyer_ref=buyer[1].encode(),
        price=price,
        final=False,
        reason=reason,
        earlier_transfer_id=None if earlier is None else earlier.transfer_id,
    )


def verified(
    fingerprint: bytes,
    platform: str,
    at: int,
    *,
    verdict: str = "authentic",
    via: str = "code",
    good_type: int = CODE,
) -> VerificationEventRecord:
    return VerificationEventRecord(next(_ids), at, platform, good_type, fingerprint, via, verdict)


def inputs(
    entries: Iterable[EntryRecord] = (),
    transfers: Sequence[TransferRecord] = (),
    attempts: Sequence[AttemptRecord] = (),
    verifications: Sequence[VerificationEventRecord] = (),
    flags: Sequence[ProbeFlag] = (),
) -> SignalInputs:
    entries = list(entries)
    return SignalInputs(
        registrations={e.good: e for e in entries if e.kind == int(EntryKind.REGISTER)},
        conflicts=[e for e in entries if e.kind == int(EntryKind.CONFLICT)],
        transfers=transfers,
        attempts=attempts,
        verifications=verifications,
        probe_flags=flags,
    )


def fired(
    records: SignalInputs, code: str, *, now: int = T0 + 30 * DAY, th: S.Thresholds | None = None
) -> list[S.Signal]:
    return [s for s in rules.evaluate(records, th, now=now, since=T0) if s.code == code]


# -- each rule: the pattern, and its honest twin ------------------------------------------------


def test_duplicate_claim_names_both_creators_in_log_order_and_ignores_the_same_creator() -> None:
    contested, own = fp(), fp()
    first = register(contested, good_type=FILE, position=None)
    claim = register(
        contested, good_type=FILE, position=None, actor=OTHER, kind=int(EntryKind.CONFLICT)
    )
    # The honest twin: the same creator again is idempotent, no CONFLICT entry exists.
    records = inputs([first, claim, register(own, good_type=FILE, position=None)])

    [signal] = fired(records, S.DUPLICATE_CLAIM)
    assert signal.subject == S.Subject("good", f"file:0x{contested.hex()}")
    assert signal.goods == ((FILE, contested),)
    assert [e.ref for e in signal.evidence] == [
        f"leaf {first.leaf_index}",
        f"leaf {claim.leaf_index}",
    ]
    assert "REGISTER" in signal.evidence[0].detail and "CONFLICT" in signal.evidence[1].detail


def test_a_sale_by_someone_who_does_not_hold_the_code_fires_but_a_retry_does_not() -> None:
    sold, retried = fp(), fp()
    entries = [register(sold), register(retried)]
    first = transfer(sold, ("agentnet", "d"), ("keyshop", "u1"), T0 + HOUR)
    again = attempt(
        sold, ("agentnet", "d"), ("gamemart", "u2"), T0 + 2 * HOUR, "double-sale", earlier=first
    )
    accepted = transfer(retried, ("agentnet", "a"), ("keyshop", "u3"), T0 + HOUR)
    retry = attempt(
        retried,
        ("agentnet", "a"),
        ("keyshop", "u3"),
        T0 + HOUR + 30,
        "double-sale",
        earlier=accepted,
    )
    records = inputs(entries, [first, accepted], [again, retry])

    [signal] = fired(records, S.SOLD_BY_NON_HOLDER)
    assert signal.subject == S.good_subject((CODE, sold))
    assert [e.kind for e in signal.evidence] == ["transfer", "attempt"]
    assert "agentnet" in signal.detail
    # Whom a webhook tells: the platform refused, and the one whose buyer holds it.
    assert signal.platforms == ("gamemart", "keyshop")


def test_a_first_sale_claimed_by_a_platform_the_creator_did_not_name_fires() -> None:
    claimed, other = fp(), fp()
    refused = attempt(claimed, None, ("shadowkeys", "m"), T0 + HOUR, "not-a-distributor")
    records = inputs([register(claimed), register(other)], [], [refused])
    [signal] = fired(records, S.SOLD_BY_NON_HOLDER)
    assert signal.subject == S.good_subject((CODE, claimed))
    assert signal.detail == (
        "claimed first-hand from its creator by shadowkeys, not among the creator's distributors"
    )
    assert signal.platforms == ("shadowkeys",)
    # Other refusals of a first sale (revoked, consumed) are other rules' business.
    records = inputs([register(claimed)], [], [attempt(claimed, None, ("x", "y"), T0, "revoked")])
    assert fired(records, S.SOLD_BY_NON_HOLDER) == []


def test_a_code_offered_where_its_holder_is_not_fires_and_a_purchase_check_does_not() -> None:
    offered, bought, declined, used = fp(), fp(), fp(), fp()
    entries = [register(x) for x in (offered, bought, declined, used)]
    moves = [transfer(x, None, ("cardhub", "stock"), T0) for x in (offered, bought, declined)]
    final = transfer(used, None, ("keyshop", "u9"), T0, final=True)
    events = [
        # Offered on two platforms that never acquire it.
        verified(offered, "gamemart", T0 + DAY),
        verified(offered, "playmarket", T0 + DAY + 600),
        # The honest twin: a buyer checks, then records buying it within the grace.
        verified(bought, "gamemart", T0 + DAY),
        # One declined offer is not enough.
        verified(declined, "gamemart", T0 + DAY),
        # A consumed card offered again: once is enough.
        verified(used, "gamemart", T0 + DAY, verdict="consumed"),
        # Its holder's own platform and anonymous buyers are never "offering".
        verified(used, "keyshop", T0 + DAY),
        verified(used, "anonymous", T0 + DAY),
    ]
    purchase = transfer(bought, ("cardhub", "stock"), ("gamemart", "u1"), T0 + DAY + 900)
    records = inputs(entries, [*moves, final, purchase], verifications=events)

    found = {s.subject.id: s for s in fired(records, S.OFFERED_BY_NON_HOLDER)}
    assert set(found) == {S.good_name((CODE, offered)), S.good_name((CODE, used))}
    assert "after it was consumed" in found[S.good_name((CODE, used))].detail
    # Not yet: a purchase may still be recorded within the grace.
    assert fired(records, S.OFFERED_BY_NON_HOLDER, now=T0 + DAY + 1_800)[0].subject.id == (
        S.good_name((CODE, used))
    )


def test_a_transfer_of_a_revoked_or_consumed_good_fires_but_a_retried_final_sale_does_not() -> None:
    revoked, consumed, retried = fp(), fp(), fp()
    entries = [register(x) for x in (revoked, consumed, retried)]
    sale = transfer(consumed, None, ("keyshop", "u1"), T0, final=True)
    final = transfer(retried, None, ("keyshop", "u2"), T0, final=True)
    records = inputs(
        entries,
        [sale, final],
        [
            attempt(revoked, ("pirate", "stock"), ("pirate", "u"), T0 + DAY, "revoked"),
            attempt(
                consumed, ("keyshop", "u1"), ("gamemart", "u3"), T0 + DAY, "consumed", earlier=sale
            ),
            attempt(retried, None, ("keyshop", "u2"), T0 + 20, "consumed", earlier=final),
        ],
    )

    assert {s.subject.id for s in fired(records, S.DEAD_GOOD_TRANSFER)} == {
        S.good_name((CODE, revoked)),
        S.good_name((CODE, consumed)),
    }


def test_a_burst_of_failed_code_lookups_fires_but_a_busy_platform_with_typos_does_not() -> None:
    events = [
        verified(fp(), "rogue", T0 + 30 * i, verdict="unknown") for i in range(60)
    ]  # 60 failures in half an hour
    hit = fp()
    events.append(verified(hit, "rogue", T0 + 600))
    # Launch day: 3,000 lookups in an hour, 2% typos = 60 failures, but a 2% failure rate.
    for i in range(3_000):
        events.append(
            verified(
                fp(), "gamemart", T0 + DAY + i, verdict="unknown" if i % 50 == 0 else "authentic"
            )
        )
    flags = [
        ProbeFlag("ip:203.0.113.7", T0, T0 + 60, 30, 5),
        ProbeFlag("ip:10.0.0.1", T0, T0, 2, 0),
    ]
    records = inputs([register(hit)], verifications=events, flags=flags)

    found = {s.subject.id: s for s in fired(records, S.PROBE_BURST)}
    assert set(found) == {"platform:rogue", "ip:203.0.113.7"}
    assert found["platform:rogue"].goods == ((CODE, hit),)  # the code it drained
    assert "60 failed code lookups of 61" in found["platform:rogue"].detail


def test_one_code_on_three_platforms_within_the_window_fires_but_an_agent_chain_does_not() -> None:
    listed, chained, item = fp(), fp(), fp()
    entries = [register(listed), register(chained), register(item, good_type=FILE, position=None)]
    events = [
        verified(listed, "agentnet", T0),
        verified(listed, "keyshop", T0 + 900),
        verified(listed, "gamemart", T0 + 1_800),
        # Honest: the same three platforms, days apart, as the code goes down the agent levels.
        verified(chained, "cardhub", T0),
        verified(chained, "agentnet", T0 + DAY),
        verified(chained, "keyshop", T0 + 3 * DAY),
        # A transferable good may be checked anywhere.
        *(
            verified(item, p, T0 + 60 * i, via="file", good_type=FILE)
            for i, p in enumerate(("a", "b", "c", "d"))
        ),
    ]

    [signal] = fired(inputs(entries, verifications=events), S.CODE_VELOCITY)
    assert signal.subject == S.good_subject((CODE, listed))
    assert len(signal.evidence) == 3


def leak(
    batch: int, platform: str, codes: int, start: int
) -> tuple[list[EntryRecord], list[VerificationEventRecord]]:
    entries = [register(fp(), batch=batch, position=i) for i in range(codes)]
    events = [verified(e.fingerprint, platform, start + 240 * i) for i, e in enumerate(entries)]
    return entries, events


def launch_day(
    batch: int, platform: str, codes: int, start: int
) -> tuple[list[EntryRecord], list[TransferRecord], list[VerificationEventRecord]]:
    entries = [register(fp(), batch=batch, position=i) for i in range(codes)]
    events, sales = [], []
    for i, e in enumerate(entries):
        events.append(verified(e.fingerprint, platform, start + 40 * i))
        if i % 50:  # 2% abandoned carts: checked, never bought
            sales.append(
                transfer(e.fingerprint, None, (platform, f"u{i}"), start + 40 * i + 60, final=True)
            )
    return entries, sales, events


def test_a_leaked_batch_fires_per_batch_and_per_platform_but_a_launch_day_sale_does_not() -> None:
    leaked, leak_events = leak(7, "shadowkeys", 60, T0 + 5 * DAY)
    launch, sales, launch_events = launch_day(8, "gamemart", 1_000, T0 + 6 * DAY)
    records = inputs([*leaked, *launch], sales, verifications=[*leak_events, *launch_events])

    [batch] = fired(records, S.BATCH_VELOCITY)
    assert batch.subject == S.Subject("batch", "batch:7")
    assert len(batch.goods) == 60 and "positions 0-59" in batch.detail
    assert len(batch.evidence) == S.MAX_EVIDENCE
    [platform] = fired(records, S.PLATFORM_VELOCITY)
    assert platform.subject == S.Subject("platform", "shadowkeys")
    assert batch.platforms == platform.platforms == ("shadowkeys",)


def test_platform_velocity_measures_a_platform_against_its_own_usual_rate() -> None:
    # A redemption service checks shop-bought codes it never acquires, every hour of a month;
    # a burst at its usual rate is not a leak. A new platform doing the same at once is.
    entries, events = [], []
    for hour in range(30 * 24):
        for k in range(8):
            e = register(fp(), batch=100 + k, position=hour)
            entries.append(e)
            events.append(verified(e.fingerprint, "redeemer", T0 + hour * HOUR + 400 * k))
    # A new platform listing 40 codes of 20 batches (2 each: not one batch's leak) at once.
    pirate_entries = [register(fp(), batch=300 + i % 20, position=i) for i in range(40)]
    pirate_events = [
        verified(e.fingerprint, "newpirate", T0 + 10 * DAY + 240 * i)
        for i, e in enumerate(pirate_entries)
    ]
    records = inputs([*entries, *pirate_entries], verifications=[*events, *pirate_events])

    assert {s.subject.id for s in fired(records, S.PLATFORM_VELOCITY)} == {"newpirate"}
    assert fired(records, S.BATCH_VELOCITY) == []


def test_a_good_going_round_a_few_parties_at_rising_prices_fires_but_resales_do_not() -> None:
    ring, refund, markup, buyback = fp(), fp(), fp(), fp()
    entries = [register(x) for x in (ring, refund, markup, buyback)]
    parties = [("agentnet", "r0"), ("keyshop", "r1"), ("agentnet", "r2")]
    chain = [transfer(ring, None, parties[0], T0, price=1_000)]
    price = 1_000
    for hop in range(1, 8):
        price = int(price * 1.2)
        chain.append(
            transfer(ring, parties[(hop - 1) % 3], parties[hop % 3], T0 + hop * HOUR, price=price)
        )
    honest = [
        # A refund: back to the seller at the same price, then sold on.
        transfer(refund, None, ("cardhub", "stock"), T0),
        transfer(refund, ("cardhub", "stock"), ("keyshop", "a"), T0 + HOUR, price=1_050),
        transfer(refund, ("keyshop", "a"), ("cardhub", "stock"), T0 + 2 * HOUR, price=1_050),
        transfer(refund, ("cardhub", "stock"), ("agentnet", "b"), T0 + DAY, price=1_100),
        # Agent levels: rising prices, never back.
        *(
            transfer(
                markup,
                (("cardhub", "stock") if i else None),
                (f"p{i}", f"x{i}"),
                T0 + i * DAY,
                price=1_000 + 50 * i,
            )
            for i in range(5)
        ),
        # A collector buys back once, dearer.
        transfer(buyback, None, ("artmarket", "c1"), T0, price=1_000),
        transfer(buyback, ("artmarket", "c1"), ("artmarket", "c2"), T0 + DAY, price=1_400),
        transfer(buyback, ("artmarket", "c2"), ("artmarket", "c1"), T0 + 2 * DAY, price=1_900),
    ]
    records = inputs(entries, [*chain, *honest])

    [signal] = fired(records, S.LAUNDERING_RING)
    assert signal.subject == S.good_subject((CODE, ring))
    assert "3 parties" in signal.detail and "1200 -> " in signal.detail


def test_every_signal_has_a_subject_evidence_a_weight_and_a_stable_id() -> None:
    leaked, events = leak(7, "shadowkeys", 30, T0)
    found = rules.evaluate(inputs(leaked, verifications=events), now=T0 + DAY, since=T0)
    for signal in found:
        assert signal.evidence and signal.subject.id and 0 < signal.weight < 1
        assert len(signal.evidence) <= S.MAX_EVIDENCE
    # The same rule about the same subject is the same signal, evaluation after evaluation.
    again = rules.evaluate(inputs(leaked, verifications=events[:25]), now=T0 + DAY, since=T0)
    assert {s.signal_id for s in again} <= {s.signal_id for s in found}
    assert len({s.signal_id for s in found}) == len(found) == 2


def test_the_rules_and_their_records_are_pure() -> None:
    # A fresh interpreter: in this one, other tests may already have imported anything.
    program = (
        "import json, sys, readmodels.rules, readmodels.market\n"
        "print(json.dumps(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'web3', 'fastapi', 'api')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=True, capture_output=True, text=True
    )
    assert json.loads(result.stdout) == []


# -- the anomaly score ----------------------------------------------------------------------------


def _population(outlier: float, *, n: int = 200) -> dict[str, dict[str, float]]:
    members = {f"g{i}": {"verification_rate": 1.0 + (i % 7) * 0.3} for i in range(n)}
    members["target"] = {"verification_rate": outlier}
    return members


def test_the_score_is_monotone_in_the_outliers_distance_and_bounded() -> None:
    scores = [score_population(_population(x))["target"][0] for x in (2, 4, 8, 16, 64, 10**6)]
    assert scores == sorted(scores) and len(set(scores)) == len(scores)
    assert all(0.0 <= s < 1.0 for s in scores)
    assert score_population(_population(1.0))["target"][0] == 0.0  # below the median: nothing
    assert anomaly_score([]) == 0.0 and anomaly_score([-5.0, -1.0]) == 0.0
    assert 0.49 < anomaly_score([6.0]) < 0.51


def test_the_score_is_robust_to_one_outlier_in_the_reference() -> None:
    clean = score_population(_population(6.0))["target"][0]
    polluted = _population(6.0)
    polluted["g0"] = {"verification_rate": 10.0**9}
    assert abs(score_population(polluted)["target"][0] - clean) < 0.02
    assert Scale.fit([1.0] * 99 + [10.0**9], 1.0).median == 1.0


def test_a_population_without_spread_falls_back_to_its_tail_and_a_floor() -> None:
    values = [0.0] * 80 + [3.0] * 20  # MAD = 0: most goods are never verified
    scale = Scale.fit(values, FLOORS["verification_rate"])
    assert scale.median == 0.0 and scale.scale == pytest.approx(3.0 / 1.2816)
    assert Scale.fit([2.0] * 50, 0.5).scale == 0.5


# -- the risk index --------------------------------------------------------------------------------


def test_the_risk_index_answers_per_good_with_its_signals_and_zero_for_clean_goods() -> None:
    leaked, events = leak(7, "shadowkeys", 40, T0)
    clean = register(fp(), batch=9)
    flag = ProbeFlag("key:9", T0, T0 + 1, 40, 3)
    index = RiskIndex.from_inputs(
        inputs([*leaked, clean], verifications=events, flags=[flag]),
        now=T0 + DAY,
        since=T0,
    )

    score, signals = index.risk(GoodType.CODE, leaked[0].fingerprint)
    assert score == pytest.approx(1 - (1 - 0.7) * (1 - 0.6), abs=0.005)  # batch, platform
    assert {s.code for s in signals} >= {S.BATCH_VELOCITY, S.PLATFORM_VELOCITY}
    assert index.risk(CODE, clean.fingerprint) == (0.0, [])
    assert index.risk(CODE, fp()) == (0.0, [])
    platform_score, platform_signals = index.platform_risk("shadowkeys")
    assert platform_score > 0.5 and platform_signals
    assert any(s.subject.id == "key:9" for s in index.signals)


# -- refused transfers, recorded and read back (SQLite and PostgreSQL) ----------------------------


@pytest.fixture
def market(engine: Engine, clock: Clock) -> Registry:
    """A registry on the ``engine`` fixture (both databases; this package's ``registry``
    fixture is the anchoring tests' SQLite one)."""
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def _sale(
    fingerprint: bytes, seller: Party, buyer: Party, *, final: bool = False
) -> TransferRequest:
    return TransferRequest(
        platform=buyer.platform or "cardhub",
        good_type=GoodType.CODE,
        fingerprint=fingerprint,
        seller=seller,
        buyer=buyer,
        price=1_000,
        currency="EUR",
        final=final,
    )


def test_refused_transfers_are_recorded_apart_and_feed_the_signals(
    market: Registry, engine: Engine, creator: CreatorKeys, clock: Clock
) -> None:
    codes = [os.urandom(32) for _ in range(3)]
    for code in codes:
        market.register(
            registration(
                creator,
                clock(),
                fingerprint=code,
                good_type=GoodType.CODE,
                product="card",
                use=Use.SINGLE,
                new_product=code == codes[0],
            )
        )
    market.sequence_all()
    creator_party, agent = Party(None, None), Party("agentnet", "agent-d")
    first = market.transfer(_sale(codes[0], creator_party, agent))
    clock.advance(60)
    before = counts(engine)

    with pytest.raises(DoubleSale):  # the creator no longer holds it
        market.transfer(_sale(codes[0], creator_party, Party("gamemart", "u1")))
    # Nothing of the refused transfer itself was written: only the attempt.
    assert counts(engine) == before
    final = market.transfer(_sale(codes[1], creator_party, Party("keyshop", "u2"), final=True))
    with pytest.raises(GoodConsumed):
        market.transfer(_sale(codes[1], Party("keyshop", "u2"), Party("keyshop", "u3")))
    market.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=codes[2],
            reason="leaked",
            now=clock(),
        )
    )
    with pytest.raises(GoodRevoked):
        market.transfer(_sale(codes[2], creator_party, Party("shadowkeys", "u4")))

    with engine.connect() as conn:
        rows = conn.execute(select(attempts_t).order_by(attempts_t.c.id)).all()
        assert conn.execute(select(func.count()).select_from(transfers_t)).scalar_one() == 2
    assert [r.reason for r in rows] == ["double-sale", "consumed", "revoked"]
    assert [r.earlier_transfer_id for r in rows] == [first.transfer_id, final.transfer_id, None]
    assert rows[0].seller_platform is None and rows[0].buyer_platform == "gamemart"
    assert rows[1].seller_platform == "keyshop" and bytes(rows[1].buyer_ref) != b""

    records, marks = read_inputs(engine)
    assert [a.reason for a in records.attempts] == ["double-sale", "consumed", "revoked"]
    assert marks.attempt == rows[-1].id and records.registrations.keys() >= {
        (CODE, c) for c in codes
    }
    now = clock() + DAY
    found = {(s.code, s.subject.id) for s in rules.evaluate(records, now=now)}
    assert (S.SOLD_BY_NON_HOLDER, S.good_name((CODE, codes[0]))) in found
    assert (S.DEAD_GOOD_TRANSFER, S.good_name((CODE, codes[1]))) in found
    assert (S.DEAD_GOOD_TRANSFER, S.good_name((CODE, codes[2]))) in found

    index = RiskIndex.build(engine, now)
    assert index.risk(GoodType.CODE, codes[0])[0] >= 0.7
    # A refresh reads only what is new: the rate limiter's flag and a new probing platform.
    market.record_verifications(
        [Telemetry(now + i, "rogue", CODE, os.urandom(32), "code", "unknown") for i in range(60)]
    )
    raised: list[S.Signal] = []
    worker = RiskWorker(
        engine, clock=lambda: now + 100, publish=lambda conn, found, at: raised.extend(found)
    )
    with write_transaction(engine) as conn:
        record_probe_flags(conn, [ProbeFlag("ip:203.0.113.7", now, now, 30, 0)])
    report = worker.run_once()
    assert report.raised == report.signals == len(raised) > 0  # all new to the tables
    with engine.connect() as conn:
        stored = conn.execute(
            select(risk_goods_t.c.score).where(risk_goods_t.c.fingerprint == codes[0])
        ).scalar_one()
        assert stored >= 0.7
        probing = set(
            conn.execute(
                select(risk_signals_t.c.subject_id).where(risk_signals_t.c.code == S.PROBE_BURST)
            ).scalars()
        )
    assert probing == {"platform:rogue", "ip:203.0.113.7"}
    raised.clear()
    assert worker.run_once().raised == 0 and raised == []  # standing: not announced again
    market.record_verifications(
        [Telemetry(now + 50, "gamemart", CODE, codes[0], "code", "authentic")]
        + [Telemetry(now + 60, p, CODE, codes[0], "code", "authentic") for p in ("a1", "a2")]
    )
    worker.run_once()
    assert [(s.code, s.subject.id) for s in raised] == [
        (S.CODE_VELOCITY, S.good_name((CODE, codes[0])))
    ]
    # New evidence for a standing signal rewrites its row, and raises nothing.
    with pytest.raises(DoubleSale):
        market.transfer(_sale(codes[0], creator_party, Party("keyshop", "u9")))
    raised.clear()
    assert worker.run_once().raised == 0 and raised == []
    with engine.connect() as conn:
        documents = conn.execute(
            select(risk_signals_t.c.document).where(risk_signals_t.c.code == S.SOLD_BY_NON_HOLDER)
        ).scalars()
        (stored_signal,) = [json.loads(d) for d in documents]
    assert [e["kind"] for e in stored_signal["evidence"]] == ["transfer", "attempt", "attempt"]
    assert index.refreshed(now + 200) is not index
    assert index.risk(GoodType.CODE, codes[0])[0] >= 0.7  # an index never changes once built
