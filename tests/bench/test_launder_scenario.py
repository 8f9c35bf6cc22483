"""The laundering scenario's harness at a tiny size, on SQLite and PostgreSQL: the labelled
cases are injected and played out, the registry stores what the rules read, and a signal is
scored against the labels as the benchmark counts it (a test of the harness, not of the
rules' numbers: those are ``python -m bench.launder_bench``'s held-out result)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.launder_bench import (
    HELD_OUT,
    TEST_SEEDS,
    TUNING,
    LaunderRun,
    evaluate_runs,
    incremental_agrees,
    run_launder,
    score_launder,
)
from bench.launderscenario import FACES, LAUNDER_RULES, YUAN, LaunderParams
from bench.scenario import SMALL
from readmodels import signals as S
from readmodels.launderrules import party_subject
from readmodels.market import GoodKey, face_in_force

TINY = replace(
    SMALL,
    days=10,
    redeem_per_hour=0.5,
    anonymous_per_hour=0.3,
    codes=300,
    batches=3,
    files=10,
    sold_codes=20,
    launch_sales=20,
    onboarding=10,
    file_chains=3,
    leak_codes=20,
    bot_lookups=60,
    double_sold=2,
    ring_goods=2,
    pirate_files=2,
)
CASES = LaunderParams(cases=2, near_misses=2, retail_blocks=1)


def test_the_harness_labels_plays_out_and_scores(db_url: str, tmp_path: Path) -> None:
    seed = TEST_SEEDS[0]
    assert seed not in {s for s, _ in (*TUNING, *HELD_OUT)}
    run = run_launder(TINY, seed, workdir=tmp_path, launder=CASES, db_url=db_url)
    _labelled_and_played_out(run)
    _records_have_the_labelled_shape(run)
    _scored_against_the_case_it_names(run)
    # The risk worker's incremental engine, fed the run an hour at a time, ends with the same
    # laundering signals as the full recompute the benchmark scores.
    assert incremental_agrees(run)


def _signal(code: str, subject: S.Subject, goods: tuple[GoodKey, ...] = ()) -> S.Signal:
    return S.Signal(code, "made by hand", (), subject, goods)


def _labelled_and_played_out(run: LaunderRun) -> None:
    stats = run.scenario.stats
    # Every transfer of the patterns and their near misses was accepted: they are trades
    # the registry allows, only their shape is suspicious.
    assert stats["unexpected_honest_refusals"] == 0
    assert not [k for k in stats["outcomes"] if k.startswith("launder-refused")]
    assert stats["outcomes"]["launder-accepted"] > 0
    for code in LAUNDER_RULES:
        cases = [c for c in run.cases if c.code == code]
        assert sorted(c.positive for c in cases) == [False, False, True, True], code
        assert all(c.goods and len(c.names) == len(c.parties) for c in cases), code
    # The products carry their face value, read back as the rules read it: set once, by
    # each creator before any sale of its cards (a sale is judged by the face value in force
    # when it was made).
    regs = run.scenario.inputs.registrations
    faces = {(f.value, f.currency) for e in regs.values() for f in e.faces}
    assert faces <= {(f * YUAN, "CNY") for f in FACES} and len(faces) >= 3
    for t in run.scenario.inputs.transfers:
        entry = regs.get(t.good)
        if entry is not None and entry.faces:
            assert len(entry.faces) == 1 and entry.faces[0].set_at < t.created_at

    result = evaluate_runs([run])
    assert set(result["per_rule"]) == set(LAUNDER_RULES)
    for code, s in result["per_rule"].items():
        assert s["injected"] == 2, code
        assert (
            s["fired"]
            == s["on_target"] + s["on_other_fraud"] + s["on_near_miss"] + (s["on_honest"])
        )
        assert result["cases"][code] == {"injected": 2, "near_misses": 2}


def _records_have_the_labelled_shape(run: LaunderRun) -> None:
    """What the registry recorded of three patterns is what their labels say: an injected
    case crosses the line its near miss stays behind."""
    x = run.scenario.inputs
    chains = run.scenario.chains
    for case in run.cases:
        transfers = [t for g in case.goods for t in chains.by_good[g]]
        if case.code == S.BELOW_FACE_VALUE:
            faces = x.registrations[next(iter(case.goods))].faces
            resales = []
            for t in transfers:
                face = face_in_force(faces, t.created_at)
                if t.seller_platform and t.price and face is not None and face.value:
                    resales.append(t.price / face.value)
            assert (min(resales) <= 0.5) is case.positive, case
            assert min(resales) >= 0.2 and (case.positive or min(resales) >= 0.85)
        if case.code == S.BUYER_DAILY_AMOUNT:
            paid = [t.price or 0 for t in transfers if t.seller_platform is None]
            above = sum(paid) > 10_000 * YUAN or max(paid) > 1_000 * YUAN
            assert above is case.positive, case
            assert (
                max(t.created_at for t in transfers) - min(t.created_at for t in transfers)
                <= 6 * 3_600
            )
        if case.code == S.ROUND_TRIP:
            buyers = [(t.buyer_platform, t.buyer_ref) for t in transfers]
            assert (len(set(buyers)) < len(buyers)) is case.positive, case


def _scored_against_the_case_it_names(run: LaunderRun) -> None:
    fan_in = next(c for c in run.cases if c.code == S.FAN_IN and c.positive)
    near = next(c for c in run.cases if c.code == S.BELOW_FACE_VALUE and not c.positive)
    positive = next(c for c in run.cases if c.code == S.BELOW_FACE_VALUE and c.positive)
    # The reseller, named as the rules name a party: platform and keyed reference hash.
    reseller = next(
        p for p in fan_in.parties if p.reference and p.reference.startswith("collector-")
    )
    [(platform, ref)] = [n for n in fan_in.names if n[0] == reseller.platform and n[1]][:1]
    good = next(iter(near.goods))
    signals = [
        _signal(S.FAN_IN, party_subject((platform, bytes.fromhex(ref)))),
        _signal(S.BELOW_FACE_VALUE, S.good_subject(good), (good,)),
        *(_signal(S.BELOW_FACE_VALUE, S.good_subject(g), (g,)) for g in positive.goods),
        _signal(S.ROUND_TRIP, S.Subject("party", "nowhere/00000000deadbeef")),
    ]

    scores = score_launder(run, signals=signals)

    assert scores[S.FAN_IN].on_target == 1 and scores[S.FAN_IN].found == 1
    assert scores[S.FAN_IN].recall == 0.5  # one of its two injected cases named
    below = scores[S.BELOW_FACE_VALUE]
    assert below.on_target == len(positive.goods) and below.on_near_miss == 1
    assert below.fired == len(positive.goods) + 1 and below.found == 1
    assert below.false_positives and "near miss of below-face-value" in below.false_positives[0]
    trip = scores[S.ROUND_TRIP]
    assert (trip.on_honest, trip.found, trip.recall, trip.precision) == (1, 0, 0.0, 0.0)
    assert len(trip.missed) == 2
    # A rule that fired on nothing has no precision, and misses every case.
    assert scores[S.FAST_CASH_OUT].precision is None and scores[S.FAST_CASH_OUT].recall == 0.0
