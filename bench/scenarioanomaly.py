"""The anomaly score and the combined risk judged on the scenario's goods, by the full
recompute and by the incremental engine."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from bench.scenarioworld import ScenarioRun
from readmodels import market
from readmodels import signals as S
from readmodels.anomaly import good_features, platform_features, score_population
from readmodels.market import SignalInputs
from readmodels.riskindex import RiskIndex
from readmodels.riskstate import RiskState


def _auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """ROC AUC: the chance a positive outranks a negative (ties count half)."""
    if not positives or not negatives:
        return None
    ordered = sorted(negatives)
    wins = 0.0
    for v in positives:
        below, upto = bisect.bisect_left(ordered, v), bisect.bisect_right(ordered, v)
        wins += below + 0.5 * (upto - below)
    return round(wins / (len(positives) * len(negatives)), 3)


def incremental_state(run: ScenarioRun, thresholds: S.Thresholds, step: int = 3_600) -> RiskState:
    """The incremental engine (``readmodels.riskstate``, its default refit schedule) fed the
    run's records ``step`` seconds at a time, as the risk worker reads them, refreshed at the
    end of each step (the goods they name with their registrations and final holdings)."""
    state = RiskState(thresholds, lookback=run.now - run.since)
    x = run.inputs
    timed: list[tuple[int, int, Any]] = [
        *((c.timestamp or run.since, c.entry_id, c) for c in x.conflicts),
        *((t.created_at, t.transfer_id, t) for t in x.transfers),
        *((a.at, a.attempt_id, a) for a in x.attempts),
        *((v.at, v.event_id, v) for v in x.verifications),
    ]
    timed.sort(key=lambda item: (item[0], item[1]))
    start = 0
    for end in [*range(run.since + step, run.now, step), run.now]:
        stop = bisect.bisect_right(timed, end, key=lambda item: item[0])
        part = [record for _, _, record in timed[start:stop]]
        start = stop
        named = {r.good for r in part}
        new = SignalInputs(
            registrations={g: x.registrations[g] for g in named if g in x.registrations},
            conflicts=[r for r in part if isinstance(r, market.EntryRecord)],
            transfers=[r for r in part if isinstance(r, market.TransferRecord)],
            attempts=[r for r in part if isinstance(r, market.AttemptRecord)],
            holdings={g: x.holdings[g] for g in named if g in x.holdings},
            verifications=[r for r in part if isinstance(r, market.VerificationEventRecord)],
        )
        state.refresh(new, now=end, probe_flags=x.probe_flags if end == run.now else ())
    return state


def anomaly_report(run: ScenarioRun, thresholds: S.Thresholds | None = None) -> dict[str, Any]:
    """The anomaly score alone: how it ranks injected goods above honest active goods (ROC
    AUC, overall and per pattern) and injected platforms above honest ones; and the combined
    risk (rules and score) on goods at 0.5: precision and recall."""
    th = thresholds or S.Thresholds()
    pattern_of = {g: i.pattern for i in run.injections for g in i.goods}
    scores: dict[str, list[float]] = defaultdict(list)
    features = good_features(
        run.inputs, run.chains, now=run.now, since=run.since, grace=th.offer_grace
    )
    for members in features.values():
        for good, (value, _) in score_population(members).items():
            scores[pattern_of.get(good, "honest")].append(value)
    honest = scores.pop("honest", [])
    injected = [v for values in scores.values() for v in values]
    fraud_platforms = {
        s.id.removeprefix("platform:")
        for i in run.injections
        for s in i.subjects
        if s.kind == "platform" or (s.kind == "key" and s.id.startswith("platform:"))
    }
    platforms = score_population(
        platform_features(
            run.inputs, run.chains, now=run.now, since=run.since, grace=th.offer_grace
        )
    )
    index = RiskIndex.from_inputs(run.inputs, now=run.now, since=run.since, thresholds=th)
    fraud_goods = set(pattern_of)
    risky = [g for g in run.inputs.registrations if index.risk(*g)[0] >= 0.5]
    tp = sum(1 for g in risky if g in fraud_goods)
    state = incremental_state(run, th)
    risky_now = [
        g for g in run.inputs.registrations if (r := state.risk(g)) is not None and r.score >= 0.5
    ]
    tp_now = sum(1 for g in risky_now if g in fraud_goods)
    return {
        "active_goods": len(honest) + len(injected),
        "injected_goods": len(fraud_goods),
        "goods_auc": _auc(injected, honest),
        "goods_auc_per_pattern": {p: _auc(v, honest) for p, v in sorted(scores.items())},
        "platforms_auc": _auc(
            [v for p, (v, _) in platforms.items() if p in fraud_platforms],
            [v for p, (v, _) in platforms.items() if p not in fraud_platforms],
        ),
        "platforms_ranked": [p for p, _ in sorted(platforms.items(), key=lambda item: -item[1][0])][
            :5
        ],
        "risk_at_0_5": {
            "flagged": len(risky),
            "precision": None if not risky else round(tp / len(risky), 3),
            "recall": None if not fraud_goods else round(tp / len(fraud_goods), 3),
        },
        # The same, from the incremental engine fed the run an hour at a time.
        "risk_at_0_5_incremental": {
            "flagged": len(risky_now),
            "precision": None if not risky_now else round(tp_now / len(risky_now), 3),
            "recall": None if not fraud_goods else round(tp_now / len(fraud_goods), 3),
            "same_signals_as_full": [s.signal_id for s in state.all_signals()]
            == [s.signal_id for s in index.signals],
        },
    }
